// Links //kernels/cuda:emulated_device together with //runtime/cuda, which
// must never run: emulated_device_exclusive_test.sh checks that it aborts at
// startup, before main, with a message naming both libraries.
#include <cstdio>

int main() {
  std::printf("started with both the emulated and the real CUDA runtime\n");
  return 0;
}
