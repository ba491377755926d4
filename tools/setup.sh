#!/usr/bin/env bash
# Installs everything the Loom build and tests need, from Debian packages only.
# Idempotent: packages already present are skipped without touching the network.
#
#   tools/setup.sh          # what building and running Loom needs
#   tools/setup.sh --test   # also PyTorch and transformers (from PyPI, pinned) for
#                           # the interop tests and for regenerating golden files
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
  iproute2                              # ip netns: the two-host collectives test
)
with_python=0
if [[ "${1:-}" == "--test" || "${1:-}" == "--goldens" ]]; then
  with_python=1
  packages+=(python3-torch python3-numpy python3-pip)
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

# transformers is pinned to a release that runs on Debian's torch 1.13. Installed
# system-wide (not per user) so Bazel's test sandbox sees it.
if ((with_python)) && ! PYTHONNOUSERSITE=1 /usr/bin/python3 -c \
    'import transformers, safetensors; assert transformers.__version__ == "4.38.2"' 2>/dev/null; then
  echo "setup: installing transformers 4.38.2 and safetensors from PyPI"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  PYTHONNOUSERSITE=1 $SUDO /usr/bin/python3 -m pip install -q --break-system-packages \
    --no-warn-script-location "transformers==4.38.2" "safetensors"
fi
