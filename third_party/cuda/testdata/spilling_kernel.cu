// Test input for ptxas_check_test: with -maxrregcount=16 the 64 live
// accumulators of this kernel cannot stay in registers, so ptxas spills.
__global__ void ManyAccumulators(const float* in, float* out, int n) {
  float acc[64];
#pragma unroll
  for (int j = 0; j < 64; ++j) acc[j] = in[j];
  for (int i = 0; i < n; ++i) {
#pragma unroll
    for (int j = 0; j < 64; ++j) acc[j] = acc[j] * in[i + j] + acc[(j + 1) % 64];
  }
#pragma unroll
  for (int j = 0; j < 64; ++j) out[threadIdx.x * 64 + j] = acc[j];
}
