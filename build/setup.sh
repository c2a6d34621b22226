#!/usr/bin/env bash
# Prepares a Debian 12 machine to build and test tsctr: Debian packages, arm64 binfmt for qemu, npm packages.
# Idempotent: every step checks first and does only what is missing. Run as root (or as a user with sudo).
# usage: build/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# The Debian packages the build and the tests use; busybox-static:arm64 is fetched by the tests themselves.
PACKAGES=(
  runc containerd docker-registry skopeo umoci busybox-static attr apache2-utils openssl curl pigz
  qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross
  clang-16 lld-16 llvm-16 strace
  containernetworking-plugins iptables iproute2
)
BINFMT=/proc/sys/fs/binfmt_misc
LOG=$(mktemp /tmp/tsctr-setup.XXXXXX.log)
trap 'rm -f "$LOG"' EXIT

say() { printf 'setup: %s\n' "$*"; }
fail() { printf 'setup: %s\n' "$*" >&2; exit 1; }
# Runs a command quietly; on failure shows its output and stops.
quietly() {
  if ! "$@" >"$LOG" 2>&1; then
    tail -n 40 "$LOG" >&2
    fail "failed: $*"
  fi
}

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  fail "run as root (or as a user with password-less sudo): apt-get and binfmt_misc need it"
fi
export DEBIAN_FRONTEND=noninteractive

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

APT_UPDATED=
apt_update() {
  [ -n "$APT_UPDATED" ] && return 0
  quietly "${SUDO[@]}" apt-get update -qq
  APT_UPDATED=1
}

# 1. arm64 as a foreign architecture, so that `apt-get download busybox-static:arm64` works in the tests.
if dpkg --print-foreign-architectures | grep -qx arm64; then
  say "dpkg architecture arm64: present"
else
  quietly "${SUDO[@]}" dpkg --add-architecture arm64
  apt_update
  say "dpkg architecture arm64: added"
fi

# 2. Debian packages; npm too when the machine has none (it only bootstraps: the project pins its own Node 24).
wanted=("${PACKAGES[@]}")
command -v npm >/dev/null || wanted+=(nodejs npm)
missing=()
for p in "${wanted[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then
  say "apt packages: all ${#wanted[@]} present"
else
  say "apt packages: installing ${missing[*]}"
  apt_update
  quietly "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! apt-cache show busybox-static:arm64 >/dev/null 2>&1; then
  apt_update
  apt-cache show busybox-static:arm64 >/dev/null 2>&1 || fail "apt knows no busybox-static:arm64; check /etc/apt/sources.list"
fi

# 3. binfmt_misc entry for aarch64, so arm64 binaries (the arm64 tsctr, arm64 containers) run under qemu.
if [ -e "$BINFMT/qemu-aarch64" ]; then
  say "binfmt qemu-aarch64: registered"
else
  [ -e "$BINFMT/register" ] || quietly "${SUDO[@]}" mount -t binfmt_misc binfmt_misc "$BINFMT"
  grep -v '^#' /usr/lib/binfmt.d/qemu-aarch64.conf | "${SUDO[@]}" tee "$BINFMT/register" >/dev/null 2>"$LOG" ||
    fail "cannot register qemu-aarch64 in $BINFMT (a container needs --privileged): $(cat "$LOG")"
  [ -e "$BINFMT/qemu-aarch64" ] || fail "binfmt qemu-aarch64 did not register"
  say "binfmt qemu-aarch64: registered now"
fi

# 4. npm packages, when node_modules is missing or older than package.json or package-lock.json.
stamp=node_modules/.package-lock.json
if [ -f "$stamp" ] && [ -x node_modules/.bin/node ] && [ ! package-lock.json -nt "$stamp" ] && [ ! package.json -nt "$stamp" ]; then
  say "npm packages: up to date"
else
  say "npm packages: npm ci"
  quietly npm ci --no-audit --no-fund --loglevel=error
fi

say "ready: node $(node_modules/.bin/node --version), $(runc --version | head -n 1)"
