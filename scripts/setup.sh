#!/usr/bin/env bash
# Installs what df11 needs to build and test on Debian 12 (run as root, or
# with sudo available). Idempotent.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
pkgs=(build-essential cmake pkg-config clang libclang-rt-dev
      libcmocka-dev libjansson-dev libxxhash-dev zlib1g-dev libzstd-dev zstd
      libhdf5-dev hdf5-tools python3 python3-pip)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Real clients used by the tests: the safetensors and h5py packages.
python3 -c 'import numpy, safetensors, h5py' 2>/dev/null ||
  python3 -m pip install -q --disable-pip-version-check numpy safetensors h5py
