#!/usr/bin/env bash
# Makes WebGPU work in Node on a machine without a GPU: Dawn (the `webgpu` npm package) needs a
# Vulkan driver, and Debian 12's own lavapipe (Mesa 22) is rejected by Dawn, so this installs Mesa
# 25's lavapipe from bookworm-backports plus the Vulkan loader. Idempotent: a machine that already
# has them is left alone. Needs root (or sudo) for apt. Machines with a real GPU and its Vulkan
# driver need none of this; Dawn then picks the GPU.
set -euo pipefail

if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

mesa_version() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true; }
have_loader() { dpkg-query -W -f='${Status}' libvulkan1 2>/dev/null | grep -q 'install ok installed'; }

major="$(mesa_version | sed -E 's/^([0-9]+).*/\1/')"
if [ -n "$major" ] && [ "$major" -ge 24 ] && have_loader; then
  echo "setup-webgpu: mesa-vulkan-drivers $(mesa_version) and libvulkan1 already installed"
  exit 0
fi

codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
if [ "$codename" != "bookworm" ]; then
  # Newer Debian releases carry a recent enough Mesa in their main suite.
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq mesa-vulkan-drivers libvulkan1
  exit 0
fi

source_file=/etc/apt/sources.list.d/bookworm-backports.sources
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "setup-webgpu: adding the bookworm-backports apt source ($source_file)"
  $sudo tee "$source_file" >/dev/null <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1
echo "setup-webgpu: installed mesa-vulkan-drivers $(mesa_version)"
