// Tensor: a cheap, shared handle to a strided view of device memory.
//
//   Tensor x = Tensor::Empty({2, 3}, DType::kF32);        // CPU by default
//   Tensor y = Transpose(x, 0, 1);                        // a view: no copy
//   x.data<float>()[0] = 1.0f;                            // y sees it
//
// A Tensor is a shared_ptr to a TensorImpl; copies of a handle alias the same
// impl (as a Python reference would). A TensorImpl holds storage + offset +
// sizes + strides + dtype, and the autograd metadata. Parameters keep their
// TensorImpl for life while SetData() swaps the storage underneath, which is
// how FSDP frees and re-gathers full parameters and how checkpoints load
// without the model code noticing.
//
// Differentiable functions of tensors (views, math, nn ops) are free functions
// in runtime/ops/; this class only holds data and metadata.
#ifndef LOOM_RUNTIME_TENSOR_H_
#define LOOM_RUNTIME_TENSOR_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "runtime/device.h"
#include "runtime/dtype.h"
#include "runtime/status.h"
#include "runtime/storage.h"

namespace loom {

namespace autograd {
class Node;
}

using Dims = absl::InlinedVector<int64_t, 6>;
using DimsRef = absl::Span<const int64_t>;

class Tensor;
using GradHook = std::function<void(const Tensor& leaf)>;

// Autograd state of one tensor. Kept inline (it is small) so that every
// handle to the impl sees the same grad and grad_fn.
struct AutogradMeta {
  bool requires_grad = false;
  std::shared_ptr<autograd::Node> grad_fn;  // set for non-leaf results
  int output_nr = 0;                        // which output of grad_fn
  std::weak_ptr<autograd::Node> grad_accumulator;  // leaves only
  std::shared_ptr<class TensorImpl> grad;   // accumulated gradient (leaves)
  std::optional<DType> grad_dtype;          // e.g. f32 grads for bf16 params
  std::vector<GradHook> post_accumulate_hooks;
};

class TensorImpl {
 public:
  TensorImpl(std::shared_ptr<Storage> storage, int64_t offset, Dims sizes, Dims strides,
             DType dtype)
      : storage_(std::move(storage)),
        offset_(offset),
        sizes_(std::move(sizes)),
        strides_(std::move(strides)),
        dtype_(dtype) {}

  const std::shared_ptr<Storage>& storage() const { return storage_; }
  int64_t offset() const { return offset_; }
  const Dims& sizes() const { return sizes_; }
  const Dims& strides() const { return strides_; }
  DType dtype() const { return dtype_; }
  AutogradMeta& autograd() { return autograd_; }
  const std::string& name() const { return name_; }
  void set_name(std::string n) { name_ = std::move(n); }

  // Replaces the data this impl views (see Tensor::SetData).
  void SetData(std::shared_ptr<Storage> storage, int64_t offset, Dims sizes, Dims strides,
               DType dtype) {
    storage_ = std::move(storage);
    offset_ = offset;
    sizes_ = std::move(sizes);
    strides_ = std::move(strides);
    dtype_ = dtype;
  }

 private:
  std::shared_ptr<Storage> storage_;
  int64_t offset_;  // in elements
  Dims sizes_;
  Dims strides_;  // in elements
  DType dtype_;
  AutogradMeta autograd_;
  std::string name_;
};

class Tensor {
 public:
  Tensor() = default;  // undefined
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- Creation (no autograd history). Abort on allocation failure; use
  // TryEmpty at boundaries that must report out-of-memory.
  static absl::StatusOr<Tensor> TryEmpty(DimsRef sizes, DType dtype, Device device = Device::CPU());
  static Tensor Empty(DimsRef sizes, DType dtype, Device device = Device::CPU());
  static Tensor Zeros(DimsRef sizes, DType dtype, Device device = Device::CPU());
  static Tensor Ones(DimsRef sizes, DType dtype, Device device = Device::CPU());
  static Tensor Full(DimsRef sizes, double value, DType dtype, Device device = Device::CPU());
  static Tensor Scalar(double value, DType dtype = DType::kF32, Device device = Device::CPU());
  static Tensor Arange(int64_t n, DType dtype = DType::kI64, Device device = Device::CPU());
  // Copies host values into a new CPU tensor of dtype DTypeOf<T>.
  template <typename T>
  static Tensor FromVector(const std::vector<T>& values, DimsRef sizes);
  // Same, converting doubles to `dtype`.
  static Tensor FromDoubles(const std::vector<double>& values, DimsRef sizes, DType dtype);
  // A tensor viewing `storage` (no copy).
  static Tensor FromStorage(std::shared_ptr<Storage> storage, int64_t offset, DimsRef sizes,
                            DimsRef strides, DType dtype);

  // ---- Metadata.
  bool defined() const { return impl_ != nullptr; }
  DType dtype() const { return impl_->dtype(); }
  Device device() const { return impl_->storage()->device(); }
  const Dims& sizes() const { return impl_->sizes(); }
  const Dims& strides() const { return impl_->strides(); }
  int dim() const { return int(impl_->sizes().size()); }
  int64_t size(int d) const { return impl_->sizes()[WrapDim(d)]; }
  int64_t stride(int d) const { return impl_->strides()[WrapDim(d)]; }
  int64_t numel() const;
  int64_t offset() const { return impl_->offset(); }
  size_t element_size() const { return SizeOf(dtype()); }
  size_t nbytes() const { return size_t(numel()) * element_size(); }
  bool is_contiguous() const;
  // Maps a possibly negative dim to [0, dim()); aborts if out of range.
  int WrapDim(int d) const;
  const std::string& name() const { return impl_->name(); }
  void set_name(std::string n) const { impl_->set_name(std::move(n)); }

  // ---- Data access. data<T>() checks the dtype; both return device pointers
  // for CUDA tensors (never dereference those on the host).
  void* raw_data() const;
  template <typename T>
  T* data() const {
    LOOM_CHECK(dtype() == DTypeOf<T>::value, "data<%s>() on a %s tensor",
               std::string(DTypeName(DTypeOf<T>::value)), std::string(DTypeName(dtype())));
    return static_cast<T*>(raw_data());
  }
  // Value of a one-element tensor (copied to the host if needed).
  double item() const;
  // All elements as doubles, in logical (row-major) order.
  std::vector<double> ToDoubles() const;
  template <typename T>
  std::vector<T> ToVector() const;

  // Copy of this tensor's values on `device` (contiguous). No autograd.
  absl::StatusOr<Tensor> CopyTo(Device device) const;

  // A new handle viewing the same data with no autograd history.
  Tensor Detach() const;

  // ---- Storage.
  const std::shared_ptr<Storage>& storage() const { return impl_->storage(); }
  // Makes this tensor (and every handle to its impl) view `src`'s data from
  // now on. Used by FSDP (free / re-gather) and checkpoint loading. Autograd
  // identity (grad, hooks, requires_grad) is kept.
  void SetData(const Tensor& src) const;
  // Frees the data: the tensor keeps its identity but has no storage until
  // the next SetData. Sizes become {0}.
  void ReleaseData() const;

  // ---- Autograd.
  bool requires_grad() const { return impl_->autograd().requires_grad; }
  // Only on leaves (tensors without grad_fn).
  const Tensor& set_requires_grad(bool value) const;
  bool is_leaf() const { return impl_->autograd().grad_fn == nullptr; }
  const std::shared_ptr<autograd::Node>& grad_fn() const { return impl_->autograd().grad_fn; }
  int output_nr() const { return impl_->autograd().output_nr; }
  Tensor grad() const { return Tensor(impl_->autograd().grad); }
  void set_grad(const Tensor& g) const { impl_->autograd().grad = g.impl_; }
  // dtype gradients accumulate in (default: this tensor's dtype).
  void set_grad_dtype(DType dtype) const { impl_->autograd().grad_dtype = dtype; }
  // Runs after a leaf's .grad received a contribution in a backward pass
  // (DDP bucketing, FSDP reduce-scatter hang off this).
  void AddPostAccumulateGradHook(GradHook hook) const;
  // Backpropagates from this tensor; `gradient` defaults to ones for a scalar.
  void Backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;

  std::string ShapeString() const;  // "[2, 3]"
  std::string DebugString(int max_elements = 16) const;

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Contiguous (row-major) strides for `sizes`.
Dims ContiguousStrides(DimsRef sizes);
int64_t NumElements(DimsRef sizes);
std::string DimsString(DimsRef dims);

template <typename T>
Tensor Tensor::FromVector(const std::vector<T>& values, DimsRef sizes) {
  LOOM_CHECK(int64_t(values.size()) == NumElements(sizes), "FromVector: %d values for shape %s",
             values.size(), DimsString(sizes));
  Tensor t = Empty(sizes, DTypeOf<T>::value);
  T* p = t.data<T>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  return t;
}

template <typename T>
std::vector<T> Tensor::ToVector() const {
  std::vector<double> d = ToDoubles();
  std::vector<T> out(d.size());
  for (size_t i = 0; i < d.size(); ++i) out[i] = FromDouble<T>(d[i]);
  return out;
}

}  // namespace loom

#endif  // LOOM_RUNTIME_TENSOR_H_
