#!/usr/bin/env bash
# tools/setup.sh: install what caf builds with, from Debian's packages (run as root or with sudo).
# The CUDA toolkit (nvcc, cuDNN 9, cuBLAS) is expected at /usr/local/cuda; without it caf builds
# for the CPU only.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
pkgs="cmake ninja-build g++ libstb-dev doctest-dev nlohmann-json3-dev"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "setup: installing$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
if [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "setup: CUDA toolkit found: $(/usr/local/cuda/bin/nvcc --version | tail -1)"
else
  echo "setup: no CUDA toolkit at /usr/local/cuda: caf will build for the CPU only"
fi
