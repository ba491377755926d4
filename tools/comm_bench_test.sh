#!/usr/bin/env bash
# comm_bench starts its ranks through the launcher and prints a row per size and op.
set -euo pipefail
out=$("$1" --nproc=2 --min_bytes=1K --max_bytes=4K 2>&1)
echo "$out"
for op in all_reduce all_gather reduce_scatter broadcast; do
  grep -q "^\[rank 0\] # $op" <<<"$out" || { echo "missing $op table"; exit 1; }
done
# 3 sizes x 4 ops, each with an unchecked time.
rows=$(grep -cE '^\[rank 0\] +[0-9]+ +[0-9]+ +f32 ' <<<"$out")
[[ "$rows" == 12 ]] || { echo "expected 12 rows, got $rows"; exit 1; }
grep -q "# gloo, 2 ranks" <<<"$out"
echo "comm_bench_test: 1 passed, 0 failed"
