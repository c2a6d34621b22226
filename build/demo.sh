#!/usr/bin/env bash
# The offline demo on a fresh Debian 12 machine, as root: set up (Debian + npm packages, binfmt), build both
# executables, then build a busybox image from Debian's busybox-static, serve it from a local docker-registry
# on 127.0.0.1, and pull and run it with dist/tsctr-linux-<arch>. Nothing comes from the internet but packages.
# usage: bash build/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash build/setup.sh
node_modules/.bin/node build/build.ts
exec node_modules/.bin/node build/demo.ts
