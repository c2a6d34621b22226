export { MOUNT_DATA_LIMIT, mountAll, overlaySupported, unmount } from "./mount.ts";
