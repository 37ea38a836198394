#!/usr/bin/env bash
# Installs what the PyTorch twin (python/) and the PyTorch bench peers need, from Debian's archive:
# python3-torch (1.13, CPU), libopenblas0-pthread (without it torch falls back to the reference
# BLAS, ~5 GFLOP/s) and python3-pytest (`npm run test:python`). CI runs it (.ci/run).
#
# Needs root (or sudo) and Debian's package archive. Idempotent: installs only what is missing,
# and does nothing at all when everything is there.
#
# Usage: sudo bash scripts/install-python-deps.sh
set -euo pipefail

PY=/usr/bin/python3
PKGS=(python3-torch libopenblas0-pthread python3-pytest)

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
for pkg in "${PKGS[@]}"; do have_pkg "$pkg" || missing+=("$pkg"); done

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
      echo "install-python-deps: must run as root (or have sudo) to install ${missing[*]}" >&2
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update
  "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi

# Debian's alternatives pick the BLAS that libblas.so.3 resolves to: make it OpenBLAS (pthread).
arch_dir=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
for lib in libblas.so.3 liblapack.so.3; do
  cand="/usr/lib/${arch_dir}/openblas-pthread/${lib}"
  current=$(readlink -f "/usr/lib/${arch_dir}/${lib}" 2>/dev/null || true)
  if [ -e "$cand" ] && [ "$current" != "$(readlink -f "$cand")" ]; then
    SUDO=()
    [ "$(id -u)" -ne 0 ] && SUDO=(sudo)
    "${SUDO[@]}" update-alternatives --set "${lib}-${arch_dir}" "$cand" >/dev/null 2>&1 || true
  fi
done

"$PY" -c 'import torch, pytest; print("torch", torch.__version__, "· pytest", pytest.__version__)'
echo "BLAS in use: $(readlink -f "/usr/lib/${arch_dir}/libblas.so.3")"
