// Turns CUDA runtime errors into absl::Status with the failing call's text and location.
//
//   LOOM_CUDA_RETURN_IF_ERROR(cudaMemcpy(dst, src, n, cudaMemcpyDefault));
//   LOOM_CUDA_CHECK(cudaStreamDestroy(s));  // where failure cannot be reported (destructors)
//
// The status code says what the caller can do about it: ResourceExhausted for out of memory,
// FailedPrecondition when no usable device or driver exists, InvalidArgument for bad arguments,
// Internal otherwise. Header-only so that .cu files compiled by nvcc can use it too.
#ifndef LOOM_RUNTIME_CUDA_CUDA_CHECK_H_
#define LOOM_RUNTIME_CUDA_CUDA_CHECK_H_

#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace loom::cuda {

inline absl::StatusCode CudaErrorCode(cudaError_t err) {
  switch (err) {
    case cudaSuccess:
      return absl::StatusCode::kOk;
    case cudaErrorMemoryAllocation:
      return absl::StatusCode::kResourceExhausted;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInitializationError:
    case cudaErrorDevicesUnavailable:
    case cudaErrorNotPermitted:
    case cudaErrorNotSupported:
      return absl::StatusCode::kFailedPrecondition;
    case cudaErrorInvalidValue:
    case cudaErrorInvalidDevice:
    case cudaErrorInvalidDevicePointer:
    case cudaErrorInvalidMemcpyDirection:
    case cudaErrorInvalidConfiguration:
    case cudaErrorInvalidResourceHandle:
      return absl::StatusCode::kInvalidArgument;
    default:
      return absl::StatusCode::kInternal;
  }
}

// "file:line: call failed: cudaErrorName (description)"; OkStatus for cudaSuccess.
inline absl::Status CudaErrorToStatus(cudaError_t err, const char* call, const char* file,
                                      int line) {
  if (err == cudaSuccess) return absl::OkStatus();
  return absl::Status(CudaErrorCode(err),
                      absl::StrCat(file, ":", line, ": ", call, " failed: ", cudaGetErrorName(err),
                                   " (", cudaGetErrorString(err), ")"));
}

namespace internal {
[[noreturn]] inline void CudaCheckFailed(cudaError_t err, const char* call, const char* file,
                                         int line) {
  const std::string msg(CudaErrorToStatus(err, call, file, line).message());
  std::fprintf(stderr, "%s\n", msg.c_str());
  std::fflush(stderr);
  std::abort();
}
}  // namespace internal

}  // namespace loom::cuda

// The Status of a CUDA runtime call, carrying the call text and location.
#define LOOM_CUDA_STATUS(call) ::loom::cuda::CudaErrorToStatus((call), #call, __FILE__, __LINE__)

#define LOOM_CUDA_RETURN_IF_ERROR(call)                                                  \
  do {                                                                                   \
    const cudaError_t _loom_cuda_err = (call);                                           \
    if (_loom_cuda_err != cudaSuccess) [[unlikely]] {                                    \
      return ::loom::cuda::CudaErrorToStatus(_loom_cuda_err, #call, __FILE__, __LINE__); \
    }                                                                                    \
  } while (0)

// Aborts with the same message; for calls whose failure leaves nothing sensible to do.
#define LOOM_CUDA_CHECK(call)                                                             \
  do {                                                                                    \
    const cudaError_t _loom_cuda_err = (call);                                            \
    if (_loom_cuda_err != cudaSuccess) [[unlikely]] {                                     \
      ::loom::cuda::internal::CudaCheckFailed(_loom_cuda_err, #call, __FILE__, __LINE__); \
    }                                                                                     \
  } while (0)

#endif  // LOOM_RUNTIME_CUDA_CUDA_CHECK_H_
