#!/usr/bin/env bash
# End to end: the demo must learn its task (it exits non-zero if the loss does
# not fall below half of its start).
set -euo pipefail
out=$("$1" --steps=200)
echo "$out"
grep -q "learned the rule" <<<"$out"
