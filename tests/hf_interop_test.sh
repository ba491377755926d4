#!/usr/bin/env bash
# Runs hf_interop_test.py with Debian's python3 (torch + transformers, installed
# by `tools/setup.sh --test`).
set -euo pipefail
exec /usr/bin/python3 "$1" "$2"
