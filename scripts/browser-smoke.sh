#!/usr/bin/env bash
# Browser smoke test: installs Debian's chromium if missing, then runs scripts/browser-smoke.mjs
# (which expects a built dist/: `npm run test:browser` builds first). Not part of `npm test`/CI.
set -euo pipefail
cd "$(dirname "$0")/.."

chromium_bin="${CHROMIUM:-}"
if [ -z "$chromium_bin" ]; then
  chromium_bin="$(command -v chromium || command -v chromium-browser || true)"
fi
if [ -z "$chromium_bin" ]; then
  echo "chromium not found: installing Debian's chromium package"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y chromium
  chromium_bin="$(command -v chromium)"
fi
echo "using $("$chromium_bin" --version 2>/dev/null || echo "$chromium_bin")"
exec node scripts/browser-smoke.mjs "$chromium_bin"
