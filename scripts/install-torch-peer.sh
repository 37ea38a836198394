#!/usr/bin/env bash
# Installs the PyTorch peer used by `npm run bench` (bench/torch_peer.py, bench/torch_models.py:
# the PyTorch twin in python/). Kept for the commands that name it: it is
# scripts/install-python-deps.sh, which installs python3-torch, libopenblas0-pthread and
# python3-pytest from Debian's archive (idempotent; root or sudo).
#
# Usage: bash scripts/install-torch-peer.sh
set -euo pipefail
exec bash "$(dirname "$0")/install-python-deps.sh" "$@"
