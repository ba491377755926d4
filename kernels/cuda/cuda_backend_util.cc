#include "kernels/cuda/cuda_backend_util.h"

#include <climits>
#include <string>

#include "runtime/status.h"

#if !defined(LOOM_CUDA_EMULATION)
#include "runtime/cuda/device.h"
#include "runtime/cuda/stream.h"
#endif

namespace loom::LOOM_CUDA_NAMESPACE::backend_internal {

LaunchScope::LaunchScope(const char* op, std::initializer_list<const Tensor*> tensors) {
  bool first = true;
  for (const Tensor* t : tensors) {
    if (!t->defined()) continue;
    const Device d = t->device();
    LOOM_CHECK(d.is_cuda(), "%s (CUDA backend): a tensor %s is on %s, not on a CUDA device", op,
               t->ShapeString(), d.ToString());
    LOOM_CHECK(first || d == device_, "%s (CUDA backend): tensors on %s and %s", op,
               device_.ToString(), d.ToString());
    device_ = d;
    first = false;
  }
  LOOM_CHECK(!first, "%s (CUDA backend): no tensor to take the device from", op);
#if !defined(LOOM_CUDA_EMULATION)
  absl::StatusOr<cuda::DeviceGuard> guard = cuda::DeviceGuard::Switch(device_.index);
  LOOM_CHECK(guard.ok(), "%s on %s: %s", op, device_.ToString(), guard.status().ToString());
  guard_ = std::make_shared<cuda::DeviceGuard>(*std::move(guard));
  absl::StatusOr<const cuda::Stream*> stream = cuda::ComputeStream(device_.index);
  LOOM_CHECK(stream.ok(), "%s on %s: %s", op, device_.ToString(), stream.status().ToString());
  stream_ = (*stream)->get();
#endif
}

LaunchScope::~LaunchScope() = default;

void CheckOnDevice(const char* op, Device device, const Tensor& t) {
  LOOM_CHECK(t.device() == device, "%s (CUDA backend): a tensor %s is on %s, expected %s", op,
             t.ShapeString(), t.device().ToString(), device.ToString());
}

void CheckBth(const char* op, const char* name, const Tensor& t, DimsRef sizes, DType dtype) {
  LOOM_CHECK(t.dim() == 4 && Dims(sizes.begin(), sizes.end()) == t.sizes() && t.dtype() == dtype &&
                 (t.size(3) <= 1 || t.stride(3) == 1),
             "%s: %s is %s %s, expected %s %s with a contiguous last dim", op, name,
             std::string(DTypeName(t.dtype())), t.ShapeString(), std::string(DTypeName(dtype)),
             DimsString(sizes));
}

Tensor ContiguousCopy(Backend& backend, const Tensor& t) {
  Tensor c = Tensor::Empty(t.sizes(), t.dtype(), t.device());
  backend.Copy(t, c);
  return c;
}

void Check(const char* op, const absl::Status& status) {
  LOOM_CHECK(status.ok(), "%s (CUDA backend): %s", op, status.ToString());
}

Tensor Scratch(Device device, size_t bytes) {
  return Tensor::Empty({int64_t((bytes + 15) / 16) * 2}, DType::kF64, device);
}

BadRowFlag::BadRowFlag(Device device, cudaStream_t stream)
    : flag_(Tensor::Empty({1}, DType::kI32, device)) {
  const int64_t sizes[] = {1};
  Check("BadRowFlag", LaunchFill(sizes, Out(flag_), double(INT32_MAX), stream));
}

int64_t BadRowFlag::FirstBadRow() const {
  const int64_t v = int64_t(flag_.item());
  return v == INT32_MAX ? -1 : v;
}

}  // namespace loom::LOOM_CUDA_NAMESPACE::backend_internal
