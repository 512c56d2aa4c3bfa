# Sourced by the bench scripts (from the repository root): a benchmark's model by name.
#   bench_model smollm2|gemma3|PATH  → the file or directory to load
#   bench_model_asset NAME           → scripts/setup.sh's asset name ("" for a path)
#   bench_model_tag NAME             → a short name for result folders
bench_cache="${PISSA_CACHE:-.cache/assets}"
bench_model() {
  case "$1" in
    smollm2) echo "$bench_cache/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf" ;;
    gemma3) echo "$bench_cache/gemma3-270m/gemma-3-270m-q4_k_m.gguf" ;;
    *) echo "$1" ;;
  esac
}
bench_model_asset() { case "$1" in smollm2|gemma3) echo "$1" ;; *) echo "" ;; esac; }
bench_model_tag() { case "$1" in smollm2|gemma3) echo "$1" ;; *) basename "${1%/}" | sed 's/\.gguf$//' ;; esac; }
# Records `pissa doctor --json` (CPU, BLAS build and kernels, pissa's kernel level) in DIR/doctor.json.
bench_doctor() { mkdir -p "$1" && .build/release/pissa doctor --json > "$1/doctor.json"; }
