#!/usr/bin/env bash
# `npm run test:webgpu`: the whole suite on the WebGPU backend. Installs a software Vulkan driver
# where needed (scripts/setup-webgpu.sh; root or sudo), builds, then runs every test file with the
# webgpu backend registered and selected (TITANS_TEST_BACKENDS=webgpu), closing with the
# "N passed, N failed" line. Arguments filter test files like `node scripts/run-tests.mjs`.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
bash scripts/setup-webgpu.sh
if [ ! -f node_modules/webgpu/package.json ]; then
  echo "test:webgpu: the package 'webgpu' (Dawn) is not installed: npm ci installs it (a development dependency)" >&2
  exit 1
fi
npm run build
echo "test:webgpu: setup and build took $(( $(date +%s) - started )) s"
TITANS_TEST_BACKENDS=webgpu TITANS_TEST_IMPORT=dist/test/webgpu/setup.js node scripts/run-tests.mjs "$@"
