#!/usr/bin/env bash
# Every kernel benchmark, run where there is no GPU, must print exactly one
# line saying so and exit 0 (an emulated run would not be a speed figure).
# With a GPU the test only checks that each bench lists its benchmarks.
set -uo pipefail
status=0
have_gpu=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then have_gpu=1; fi
for bench in "$@"; do
  name=$(basename "$bench")
  if [[ $have_gpu == 1 ]]; then
    if ! "$bench" --benchmark_list_tests=true >/dev/null; then
      echo "FAIL: $name --benchmark_list_tests failed"; status=1
    fi
    continue
  fi
  out=$("$bench" 2>&1); rc=$?
  lines=$(printf '%s\n' "$out" | wc -l)
  if [[ $rc != 0 ]]; then echo "FAIL: $name exited $rc: $out"; status=1; continue; fi
  if [[ $lines != 1 || "$out" != "$name: no CUDA device ("*"); nothing measured" ]]; then
    echo "FAIL: $name printed $lines line(s): $out"; status=1; continue
  fi
  echo "ok: $out"
done
exit $status
