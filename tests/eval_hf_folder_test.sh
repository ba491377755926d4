#!/usr/bin/env bash
# //tools:eval on folders that transformers wrote (tests/goldens/llama):
# the loss over pretokenized rows must equal transformers' loss on the same
# batch (relative 1e-5).
#   eval_hf_folder_test.sh EVAL GOLDEN_DIR...
set -euo pipefail
eval_tool=$1
shift
for dir in "$@"; do
  want=$(cat "$dir/loss.txt")
  got=$("$eval_tool" --model="$dir" --data="$dir/rows.jsonl" --json |
        sed -n 's/.*"loss":\([-0-9.e]*\).*/\1/p')
  awk -v a="$got" -v b="$want" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-5 * b) }' ||
    { echo "FAIL: $dir: eval loss $got, transformers $want" >&2; exit 1; }
  echo "$dir: eval loss $got, transformers $want"
done
