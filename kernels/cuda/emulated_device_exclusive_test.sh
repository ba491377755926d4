#!/bin/bash
# The emulated CUDA device and the real CUDA runtime in one binary must abort
# at startup with a clear message (both register DeviceType::kCUDA), whether
# the libraries are linked statically or as shared libraries.
for binary in "$@"; do
  output="$("$binary" 2>&1)"
  status=$?
  if [[ $status -eq 0 ]]; then
    echo "FAIL: $binary started (exit 0); output: $output"
    exit 1
  fi
  if [[ "$output" != *"emulated_device and the real CUDA runtime"* ]]; then
    echo "FAIL: $binary exited $status without the expected message; output: $output"
    exit 1
  fi
  if [[ "$output" == *"started with both"* ]]; then
    echo "FAIL: main of $binary ran; output: $output"
    exit 1
  fi
  echo "PASS: $binary exited $status: $output"
done
