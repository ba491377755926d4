#!/usr/bin/env bash
# Runs nvcc with `-Xptxas -v`, keeps ptxas's resource report next to the
# object file and fails the compile if a kernel spills registers (unless the
# first argument is 1: the target allows spills).
#
#   nvcc_ptxas_check.sh <allow_spills 0|1> <report.txt> <nvcc> <nvcc args...>
set -uo pipefail
allow="$1"; report="$2"; nvcc="$3"; shift 3
"$nvcc" -Xptxas -v "$@" 2> "$report.raw"
rc=$?
# Everything but ptxas's per-function report goes to stderr as usual.
grep -v -E "^ptxas info|bytes stack frame" "$report.raw" >&2
grep -E "Compiling entry function|Function properties|spill|Used [0-9]+ registers" "$report.raw" > "$report"
rm -f "$report.raw"
[[ $rc -eq 0 ]] || exit $rc
spills=$(awk '
  /Function properties for/ { fn = $NF }
  /bytes spill stores/ {
    for (i = 1; i <= NF; ++i) {
      if ($(i+1) == "bytes" && $(i+2) == "spill" && $i + 0 > 0) { print fn ": " $0; break }
    }
  }' "$report" | sort -u)
if [[ -n "$spills" && "$allow" != "1" ]]; then
  echo "error: register spills in CUDA kernels (ptxas -v); a hot kernel must not spill:" >&2
  echo "$spills" | sed 's/^/  /' >&2
  echo "(report: $report; allow deliberately with cuda_library(allow_spills = True))" >&2
  exit 1
fi
exit 0
