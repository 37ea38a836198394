#!/usr/bin/env bash
# Makes sure Debian's headless-capable chromium is installed (idempotent: does nothing when
# /usr/bin/chromium, or $CHROMIUM, is there). Used by `npm run test:web` and `npm run test:browser`.
set -euo pipefail
chromium_bin="${CHROMIUM:-/usr/bin/chromium}"
if [ -x "$chromium_bin" ]; then
  echo "chromium: $("$chromium_bin" --version 2>/dev/null || echo "$chromium_bin")"
  exit 0
fi
echo "chromium not found at $chromium_bin: installing Debian's chromium package"
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends chromium
echo "chromium: $(/usr/bin/chromium --version)"
