#!/usr/bin/env bash
# Installs the PyTorch peer used by `npm run bench` for comparison (bench/torch_peer.py):
# Debian's python3-torch (1.13, CPU) plus libopenblas0-pthread.
#
# Without libopenblas0-pthread, Debian's torch falls back to the reference BLAS
# (~5 GFLOP/s), which would make every matmul comparison meaningless.
#
# Optional: never needed by the build, the tests or CI. Needs root (or sudo) and
# Debian's package archive. Idempotent: does nothing when torch already imports
# and OpenBLAS is already installed.
#
# Usage: bash scripts/install-torch-peer.sh
set -euo pipefail

PY=/usr/bin/python3
PKGS=(python3-torch libopenblas0-pthread)

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

if [ -x "$PY" ] && "$PY" -c 'import torch' >/dev/null 2>&1 && have_pkg libopenblas0-pthread; then
  echo "torch peer already installed: $("$PY" -c 'import torch; print(torch.__version__)')"
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
    echo "install-torch-peer: must run as root (or have sudo)" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" apt-get install -y --no-install-recommends "${PKGS[@]}"

# Debian's alternatives system picks the BLAS that libblas.so.3 resolves to; make
# sure it is OpenBLAS (pthread build) rather than the reference implementation.
arch_dir=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
for lib in libblas.so.3 liblapack.so.3; do
  cand="/usr/lib/${arch_dir}/openblas-pthread/${lib}"
  if [ -e "$cand" ]; then
    "${SUDO[@]}" update-alternatives --set "${lib}-${arch_dir}" "$cand" >/dev/null 2>&1 || true
  fi
done

"$PY" -c 'import torch; print("torch", torch.__version__, "threads", torch.get_num_threads())'
echo "BLAS in use: $(readlink -f "/usr/lib/${arch_dir}/libblas.so.3")"
