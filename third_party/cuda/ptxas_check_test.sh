#!/usr/bin/env bash
# nvcc_ptxas_check.sh must fail a compile whose kernel spills registers (naming
# the kernel) and pass it when spills are allowed or absent.
set -uo pipefail
check="$1"; nvcc="$2"; src="$3"
tmp="${TEST_TMPDIR:-/tmp}/ptxas_check_test"
mkdir -p "$tmp"
args=(-c "$src" -o "$tmp/k.o" -gencode arch=compute_80,code=sm_80)

if "$check" 0 "$tmp/r1.txt" "$nvcc" "${args[@]}" -maxrregcount=16 2> "$tmp/err1"; then
  echo "FAIL: a spilling kernel compiled"; cat "$tmp/err1"; exit 1
fi
grep -q "register spills in CUDA kernels" "$tmp/err1" || { echo "FAIL: no spill message"; cat "$tmp/err1"; exit 1; }
grep -q "ManyAccumulators" "$tmp/err1" || { echo "FAIL: the kernel is not named"; cat "$tmp/err1"; exit 1; }

"$check" 1 "$tmp/r2.txt" "$nvcc" "${args[@]}" -maxrregcount=16 2> "$tmp/err2" ||
  { echo "FAIL: allow_spills did not allow"; cat "$tmp/err2"; exit 1; }
"$check" 0 "$tmp/r3.txt" "$nvcc" "${args[@]}" 2> "$tmp/err3" ||
  { echo "FAIL: the kernel spills even with all registers"; cat "$tmp/err3"; exit 1; }
grep -q "Used [0-9]* registers" "$tmp/r3.txt" || { echo "FAIL: no register report"; exit 1; }
echo PASS
