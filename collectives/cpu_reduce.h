// Elementwise reductions for the CPU collectives. bf16/f16 are reduced in f32: convert the
// input once (ToAccumulator), reduce f32 buffers, convert the result once (FromAccumulator),
// so a sum over n ranks rounds to 16 bits once, not n - 1 times.
//
//   std::vector<char> acc = ToAccumulator(t.dtype(), t.raw_data(), n);   // f32 for bf16/f16
//   ReduceInto(AccumulatorDType(t.dtype()), acc.data(), other.data(), n, ReduceOp::kSum);
//   FromAccumulator(t.dtype(), acc.data(), t.raw_data(), n);
#ifndef LOOM_COLLECTIVES_CPU_REDUCE_H_
#define LOOM_COLLECTIVES_CPU_REDUCE_H_

#include <cstdint>
#include <vector>

#include "collectives/communicator.h"
#include "runtime/dtype.h"

namespace loom::collectives {

// f32 for bf16/f16, else the dtype itself.
DType AccumulatorDType(DType dtype);
// A copy of n elements of `src` in AccumulatorDType(dtype).
std::vector<char> ToAccumulator(DType dtype, const void* src, int64_t n);
// Same, into `dst` (n accumulator elements).
void ToAccumulatorInto(DType dtype, const void* src, void* dst, int64_t n);
// Converts n accumulator elements back to `dtype` (round to nearest even).
void FromAccumulator(DType dtype, const void* acc, void* dst, int64_t n);
// dst[i] = dst[i] op src[i] for n elements of `acc_dtype` (avg accumulates like sum).
void ReduceInto(DType acc_dtype, void* dst, const void* src, int64_t n, ReduceOp op);
// out[i] = a[i] op b[i] (the signature Gloo's allreduce takes).
void ReduceBinary(DType acc_dtype, void* out, const void* a, const void* b, int64_t n, ReduceOp op);
// dst[i] /= divisor, for floating accumulator dtypes (the avg's last step).
void DivideInPlace(DType acc_dtype, void* dst, int64_t n, int divisor);

}  // namespace loom::collectives

#endif  // LOOM_COLLECTIVES_CPU_REDUCE_H_
