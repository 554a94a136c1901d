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
# Real clients used by the tests: safetensors, h5py, and for the Python
# package (python/) numpy, ml_dtypes, torch, transformers, tqdm, pytest and
# its build backend, scikit-build-core; dfloat11 for the DFloat11 tests.
pip_install() {
  python3 -m pip install -q --disable-pip-version-check "$@" ||
    python3 -m pip install -q --disable-pip-version-check --break-system-packages "$@"
}
python3 -c 'import numpy, safetensors, h5py' 2>/dev/null ||
  pip_install numpy safetensors h5py
python3 -c 'import ml_dtypes, torch, transformers, tqdm, pytest, scikit_build_core' 2>/dev/null ||
  pip_install ml_dtypes torch transformers tqdm pytest scikit-build-core
# The official DFloat11 package, whose loader reads df11's DFloat11 exports
# in a test (its CUDA kernel modelled on the CPU).
python3 -c 'import dfloat11, accelerate' 2>/dev/null ||
  pip_install dfloat11==0.5.0 accelerate
