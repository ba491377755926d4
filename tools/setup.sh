#!/usr/bin/env bash
# Installs everything the Loom build and tests need, from Debian packages only.
# Idempotent: packages already present are skipped without touching the network.
#
#   tools/setup.sh            # build + test dependencies
#   tools/setup.sh --goldens  # also PyTorch, for regenerating golden files
set -euo pipefail

packages=(
  bazel-bootstrap bazel-platforms       # Bazel 4.2.3, WORKSPACE mode, offline
  g++ clang-format
  libabsl-dev                           # Status, StrFormat, flags, containers
  libgtest-dev libgmock-dev             # tests
  libbenchmark-dev                      # microbenchmarks
  libprotobuf-dev protobuf-compiler     # protoc through //third_party:proto.bzl
  libgloo-dev                           # CPU collectives
  libyaml-cpp-dev                       # configs
  libopenblas-dev                       # CPU GEMM
  nlohmann-json3-dev                    # config.json, safetensors headers
  libboost-context-dev                  # fibers for the CUDA emulator
)
if [[ "${1:-}" == "--goldens" ]]; then
  packages+=(python3-torch python3-numpy)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all ${#packages[@]} packages present"
fi

if [[ ! -x /usr/local/cuda/bin/nvcc && -z "${LOOM_CUDA_PATH:-}" ]]; then
  echo "setup: note: no CUDA toolkit at /usr/local/cuda; set LOOM_CUDA_PATH (see README)" >&2
fi
