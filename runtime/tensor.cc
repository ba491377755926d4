#include "runtime/tensor.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/backend.h"
#include "runtime/device_copy.h"

namespace loom {

Dims ContiguousStrides(DimsRef sizes) {
  Dims strides(sizes.size());
  int64_t s = 1;
  for (int i = int(sizes.size()) - 1; i >= 0; --i) {
    strides[i] = s;
    s *= sizes[i];
  }
  return strides;
}

int64_t NumElements(DimsRef sizes) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  return n;
}

std::string DimsString(DimsRef dims) { return absl::StrCat("[", absl::StrJoin(dims, ", "), "]"); }

absl::StatusOr<Tensor> Tensor::TryEmpty(DimsRef sizes, DType dtype, Device device) {
  for (int64_t s : sizes) {
    if (s < 0) return absl::InvalidArgumentError(absl::StrCat("negative size in ", DimsString(sizes)));
  }
  const int64_t n = NumElements(sizes);
  LOOM_ASSIGN_OR_RETURN(std::shared_ptr<Storage> storage,
                        Storage::Allocate(size_t(n) * SizeOf(dtype), device));
  return Tensor(std::make_shared<TensorImpl>(std::move(storage), 0, Dims(sizes.begin(), sizes.end()),
                                             ContiguousStrides(sizes), dtype));
}

Tensor Tensor::Empty(DimsRef sizes, DType dtype, Device device) {
  absl::StatusOr<Tensor> t = TryEmpty(sizes, dtype, device);
  LOOM_CHECK(t.ok(), "Tensor::Empty(%s, %s, %s): %s", DimsString(sizes),
             std::string(DTypeName(dtype)), device.ToString(), t.status().ToString());
  return *std::move(t);
}

Tensor Tensor::Full(DimsRef sizes, double value, DType dtype, Device device) {
  Tensor t = Empty(sizes, dtype, device);
  if (t.numel() > 0) GetBackend(device).Fill(t, value);
  return t;
}

Tensor Tensor::Zeros(DimsRef sizes, DType dtype, Device device) { return Full(sizes, 0.0, dtype, device); }
Tensor Tensor::Ones(DimsRef sizes, DType dtype, Device device) { return Full(sizes, 1.0, dtype, device); }
Tensor Tensor::Scalar(double value, DType dtype, Device device) { return Full({}, value, dtype, device); }

Tensor Tensor::Arange(int64_t n, DType dtype, Device device) {
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = double(i);
  Tensor t = FromDoubles(v, {n}, dtype);
  if (device.is_cpu()) return t;
  absl::StatusOr<Tensor> d = t.CopyTo(device);
  LOOM_CHECK_OK(d.status());
  return *d;
}

Tensor Tensor::FromDoubles(const std::vector<double>& values, DimsRef sizes, DType dtype) {
  LOOM_CHECK(int64_t(values.size()) == NumElements(sizes), "FromDoubles: %d values for shape %s",
             values.size(), DimsString(sizes));
  Tensor t = Empty(sizes, dtype);
  DispatchDType(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(t.raw_data());
    for (size_t i = 0; i < values.size(); ++i) p[i] = FromDouble<T>(values[i]);
  });
  return t;
}

Tensor Tensor::FromStorage(std::shared_ptr<Storage> storage, int64_t offset, DimsRef sizes,
                           DimsRef strides, DType dtype) {
  LOOM_CHECK(sizes.size() == strides.size(), "FromStorage: sizes %s vs strides %s",
             DimsString(sizes), DimsString(strides));
  int64_t max_index = offset;
  for (size_t i = 0; i < sizes.size(); ++i) {
    LOOM_CHECK(sizes[i] >= 0 && strides[i] >= 0, "FromStorage: bad sizes %s / strides %s",
               DimsString(sizes), DimsString(strides));
    if (sizes[i] == 0) max_index = offset - 1;
    if (max_index >= offset) max_index += (sizes[i] - 1) * strides[i];
  }
  LOOM_CHECK(offset >= 0 && (max_index + 1) * int64_t(SizeOf(dtype)) <= int64_t(storage->nbytes()),
             "FromStorage: view %s at offset %d exceeds storage of %d bytes", DimsString(sizes),
             offset, storage->nbytes());
  return Tensor(std::make_shared<TensorImpl>(std::move(storage), offset,
                                             Dims(sizes.begin(), sizes.end()),
                                             Dims(strides.begin(), strides.end()), dtype));
}

int64_t Tensor::numel() const { return NumElements(sizes()); }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int i = dim() - 1; i >= 0; --i) {
    if (sizes()[i] == 1) continue;
    if (strides()[i] != expected) return false;
    expected *= sizes()[i];
  }
  return true;
}

int Tensor::WrapDim(int d) const {
  const int n = dim();
  const int w = d < 0 ? d + n : d;
  LOOM_CHECK(w >= 0 && w < n, "dim %d out of range for a %d-d tensor %s", d, n, ShapeString());
  return w;
}

void* Tensor::raw_data() const {
  return static_cast<char*>(storage()->data()) + offset() * int64_t(element_size());
}

absl::StatusOr<Tensor> Tensor::CopyTo(Device device) const {
  LOOM_ASSIGN_OR_RETURN(Tensor dst, TryEmpty(sizes(), dtype(), device));
  if (device == this->device()) {
    if (numel() > 0) GetBackend(device).Copy(*this, dst);
    return dst;
  }
  // Across devices: make the source contiguous where it lives, then move bytes.
  Tensor src = *this;
  if (!is_contiguous()) {
    src = Empty(sizes(), dtype(), this->device());
    GetBackend(this->device()).Copy(*this, src);
  }
  LOOM_RETURN_IF_ERROR(CopyBytes(dst.raw_data(), device, src.raw_data(), src.device(), nbytes()));
  return dst;
}

Tensor Tensor::Detach() const {
  return Tensor(std::make_shared<TensorImpl>(storage(), offset(), sizes(), strides(), dtype()));
}

std::vector<double> Tensor::ToDoubles() const {
  Tensor host = *this;
  if (!device().is_cpu()) {
    absl::StatusOr<Tensor> h = CopyTo(Device::CPU());
    LOOM_CHECK_OK(h.status());
    host = *h;
  }
  std::vector<double> out(size_t(host.numel()));
  if (out.empty()) return out;
  DispatchDType(dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* base = static_cast<const T*>(host.raw_data());
    const int nd = host.dim();
    Dims idx(nd, 0);
    for (size_t i = 0; i < out.size(); ++i) {
      int64_t off = 0;
      for (int d = 0; d < nd; ++d) off += idx[d] * host.strides()[d];
      out[i] = ToDouble(base[off]);
      for (int d = nd - 1; d >= 0; --d) {
        if (++idx[d] < host.sizes()[d]) break;
        idx[d] = 0;
      }
    }
  });
  return out;
}

double Tensor::item() const {
  LOOM_CHECK(numel() == 1, "item() on a tensor of shape %s", ShapeString());
  return ToDoubles()[0];
}

void Tensor::SetData(const Tensor& src) const {
  LOOM_CHECK(src.defined(), "SetData with an undefined tensor");
  impl_->SetData(src.storage(), src.offset(), src.sizes(), src.strides(), src.dtype());
}

void Tensor::ReleaseData() const {
  auto empty = Storage::Wrap(nullptr, 0, device(), nullptr);
  impl_->SetData(std::move(empty), 0, Dims{0}, Dims{1}, dtype());
}

const Tensor& Tensor::set_requires_grad(bool value) const {
  LOOM_CHECK(is_leaf(), "set_requires_grad on a non-leaf tensor; use Detach() first");
  LOOM_CHECK(!value || IsFloating(dtype()), "only floating tensors can require grad, got %s",
             std::string(DTypeName(dtype())));
  impl_->autograd().requires_grad = value;
  return *this;
}

void Tensor::AddPostAccumulateGradHook(GradHook hook) const {
  LOOM_CHECK(is_leaf() && requires_grad(), "post-accumulate-grad hooks need a leaf that requires grad");
  impl_->autograd().post_accumulate_hooks.push_back(std::move(hook));
}

std::string Tensor::ShapeString() const { return DimsString(sizes()); }

std::string Tensor::DebugString(int max_elements) const {
  if (!defined()) return "Tensor(undefined)";
  std::string s = absl::StrCat("Tensor(", DTypeName(dtype()), ShapeString(), " ", device().ToString());
  if (numel() > 0 && numel() <= max_elements) {
    absl::StrAppend(&s, " {", absl::StrJoin(ToDoubles(), ", "), "}");
  }
  absl::StrAppend(&s, ")");
  return s;
}

}  // namespace loom
