/**
 * Store commands: `check`, `prune`, `df`, `content ls|rm`, `snapshots ls|rm|usage`, `namespaces ls|create|rm`.
 * Content and snapshots are shared by all namespaces; images and containers belong to one.
 */
import { Command } from "commander";
import process from "node:process";
import { withContext } from "../options.ts";
import { humanSize, table } from "../render.ts";
import { ErrorKinds } from "../../errdefs/mod.ts";

export function checkCommand(): Command {
  return new Command("check")
    .description("verify the store (metadata against files); exit 16 when damage is found")
    .option("--full", "also verify every blob's digest (reads all content)", false)
    .option("--repair", "remove damaged and leftover things; mark damaged images for a new pull", false)
    .action(async (opts: { full: boolean; repair: boolean }, cmd: Command) => {
      const { checkStore } = await import("../../client/check.ts");
      await withContext(cmd, async (ctx) => {
        const findings = await checkStore(ctx, opts);
        process.stdout.write(findings.map((f) => `${f.kind}: ${f.text}\n`).join(""));
        if (findings.some((f) => f.kind === "damaged")) process.exitCode = ErrorKinds.DataLoss;
      });
    });
}

export function pruneCommand(): Command {
  return new Command("prune")
    .description("remove unreferenced blobs, snapshots and leftovers (and with --all, images no container uses)")
    .option("-a, --all", "also remove this namespace's images that no container uses", false)
    .action(async (opts: { all: boolean }, cmd: Command) => {
      const { prune } = await import("../../client/store_admin.ts");
      await withContext(cmd, async (ctx) => {
        const r = await prune(ctx, opts);
        const lines = [
          ...r.images.map((i) => `image ${i}`),
          ...r.gc.blobs.map((b) => `blob ${b.digest}`),
          ...r.gc.snapshots.map((s) => `snapshot ${s.name}`),
          ...r.gc.leftovers,
        ];
        process.stdout.write(lines.map((l) => `removed ${l}\n`).join("") + `reclaimed ${humanSize(r.gc.bytes)} of blobs\n`);
      });
    });
}

export function dfCommand(): Command {
  return new Command("df")
    .description("disk used by blobs, snapshots and containers, and what GC would reclaim")
    .option("--bytes", "print sizes in bytes", false)
    .action(async (opts: { bytes: boolean }, cmd: Command) => {
      const { diskFree } = await import("../../client/store_admin.ts");
      await withContext(cmd, async (ctx) => {
        const r = await diskFree(ctx);
        const size = (n: number) => (opts.bytes ? String(n) : humanSize(n));
        process.stdout.write(
          table([
            ["TYPE", "COUNT", "SIZE"],
            ["blobs", String(r.blobs.count), size(r.blobs.size)],
            ["snapshots", String(r.snapshots.count), size(r.snapshots.size)],
            ["containers", String(r.containers.count), size(r.containers.size)],
            ["reclaimable", "", size(r.reclaimable)],
          ]),
        );
      });
    });
}

export function contentCommand(): Command {
  const c = new Command("content").description("blobs in the content store (shared by all namespaces)");
  c.command("ls")
    .alias("list")
    .description("list blobs")
    .option("-q, --quiet", "print only digests", false)
    .action(async (opts: { quiet: boolean }, cmd: Command) => {
      const { listContent } = await import("../../client/store_admin.ts");
      await withContext(cmd, async (ctx) => {
        const list = await listContent(ctx);
        if (opts.quiet) return void process.stdout.write(list.map((b) => `${b.digest}\n`).join(""));
        process.stdout.write(table([["DIGEST", "SIZE", "USED"], ...list.map((b) => [b.digest, humanSize(b.size), b.used ? "yes" : "no"])]));
      });
    });
  c.command("rm")
    .alias("delete")
    .description("remove blobs that nothing references")
    .argument("<digest...>", "blob digests")
    .action(async (digests: string[], _o: unknown, cmd: Command) => {
      const { removeContent } = await import("../../client/store_admin.ts");
      await withContext(cmd, async (ctx) => {
        await removeContent(ctx, digests);
        process.stdout.write(digests.map((d) => `${d}\n`).join(""));
      });
    });
  return c;
}

export function snapshotsCommand(): Command {
  const s = new Command("snapshots").alias("snapshot").description("snapshots (shared by all namespaces)");
  s.command("ls")
    .alias("list")
    .description("list snapshots")
    .action(async (_o: unknown, cmd: Command) => {
      const { listSnapshotsWithUse } = await import("../../client/store_admin.ts");
      await withContext(cmd, async (ctx) => {
        const list = await listSnapshotsWithUse(ctx);
        process.stdout.write(table([["KEY", "PARENT", "KIND", "USED"], ...list.map((i) => [i.name, i.parent ?? "", i.kind, i.used ? "yes" : "no"])]));
      });
    });
  s.command("rm")
    .alias("delete")
    .description("remove snapshots that nothing uses")
    .argument("<key...>", "snapshot keys")
    .action(async (keys: string[], _o: unknown, cmd: Command) => {
      const { removeSnapshots } = await import("../../client/store_admin.ts");
      await withContext(cmd, async (ctx) => {
        await removeSnapshots(ctx, keys);
        process.stdout.write(keys.map((k) => `${k}\n`).join(""));
      });
    });
  s.command("usage")
    .description("disk usage of snapshots (allocated bytes and inodes)")
    .argument("[key]", "one snapshot (default: each)")
    .option("--bytes", "print sizes in bytes", false)
    .action(async (key: string | undefined, opts: { bytes: boolean }, cmd: Command) => {
      const { snapshotUsage } = await import("../../client/store_admin.ts");
      await withContext(cmd, async (ctx) => {
        const list = await snapshotUsage(ctx, key);
        process.stdout.write(table([["KEY", "SIZE", "INODES"], ...list.map((u) => [u.name, opts.bytes ? String(u.size) : humanSize(u.size), String(u.inodes)])]));
      });
    });
  return s;
}

export function namespacesCommand(): Command {
  const n = new Command("namespaces").alias("namespace").alias("ns").description("namespaces");
  n.command("ls")
    .alias("list")
    .description("list namespaces")
    .action(async (_o: unknown, cmd: Command) => {
      const { namespaces } = await import("../../client/store_admin.ts");
      await withContext(cmd, async (ctx) => {
        process.stdout.write((await namespaces(ctx)).map((x) => `${x}\n`).join(""));
      });
    });
  n.command("create")
    .description("create namespaces")
    .argument("<name...>")
    .action(async (names: string[], _o: unknown, cmd: Command) => {
      const { createNamespaces } = await import("../../client/store_admin.ts");
      await withContext(cmd, async (ctx) => {
        await createNamespaces(ctx, names);
      });
    });
  n.command("rm")
    .alias("remove")
    .description("remove empty namespaces")
    .argument("<name...>")
    .action(async (names: string[], _o: unknown, cmd: Command) => {
      const { removeNamespaces } = await import("../../client/store_admin.ts");
      await withContext(cmd, async (ctx) => {
        await removeNamespaces(ctx, names);
        process.stdout.write(names.map((x) => `${x}\n`).join(""));
      });
    });
  return n;
}
