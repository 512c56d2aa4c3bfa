#!/usr/bin/env bash
# Builds llama.cpp's llama-bench, llama-completion and llama-quantize from the sources vendored in
# the llama-cpp-python 0.3.36 sdist (docs/INTEROP.md), for x86-64 with AVX2 and AVX-512 but not
# -march=native (GGML_NATIVE=ON builds binaries that die with SIGILL on some of these machines:
# docs/PLATFORM.md). Cached in .cache/llama; prints the bin directory. About 5–35 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=.cache/llama
src="$dir/llama_cpp_python-0.3.36/vendor/llama.cpp"
bin="$src/build/bin"
if [ ! -x "$bin/llama-bench" ] || [ ! -x "$bin/llama-quantize" ]; then
  command -v cmake >/dev/null && command -v ninja >/dev/null || {
    sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get install -y -qq cmake ninja-build >/dev/null
  }
  mkdir -p "$dir"
  [ -f "$dir/llama_cpp_python-0.3.36.tar.gz" ] || python3 -m pip download --quiet --no-deps --no-binary :all: -d "$dir" llama-cpp-python==0.3.36
  [ -d "$src" ] || tar -xzf "$dir/llama_cpp_python-0.3.36.tar.gz" -C "$dir"
  cmake -S "$src" -B "$src/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON \
    -DGGML_F16C=ON -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DLLAMA_CURL=OFF >&2
  ninja -C "$src/build" llama-bench llama-completion llama-quantize >&2
fi
echo "$bin"
