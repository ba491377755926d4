// Tensor handles: creation, views sharing storage (checked by writing through
// one handle and reading through another), copies, casts, SetData and
// ReleaseData, host access on strided views.
#include "runtime/tensor.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/allocator.h"
#include "runtime/ops/ops.h"

namespace loom {
namespace {

// Element at a multi-index, read through the tensor's own strides.
double GetAt(const Tensor& t, const Dims& idx) {
  int64_t off = 0;
  for (int d = 0; d < t.dim(); ++d) off += idx[d] * t.stride(d);
  return DispatchDType(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    return ToDouble(static_cast<const T*>(t.raw_data())[off]);
  });
}

void SetAt(const Tensor& t, const Dims& idx, double v) {
  int64_t off = 0;
  for (int d = 0; d < t.dim(); ++d) off += idx[d] * t.stride(d);
  DispatchDType(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    static_cast<T*>(t.raw_data())[off] = FromDouble<T>(v);
  });
}

Tensor ArangeF32(DimsRef sizes) {
  return Reshape(Tensor::Arange(NumElements(sizes), DType::kF32), sizes);
}

TEST(TensorTest, CreationSizesAndDtypes) {
  const size_t expected_size[] = {4, 8, 2, 2, 4, 8, 1};
  int i = 0;
  for (DType dt : kAllDTypes) {
    Tensor t = Tensor::Empty({2, 3, 4}, dt);
    EXPECT_EQ(t.dtype(), dt);
    EXPECT_EQ(t.dim(), 3);
    EXPECT_EQ(t.numel(), 24);
    EXPECT_EQ(t.element_size(), expected_size[i]);
    EXPECT_EQ(t.nbytes(), 24 * expected_size[i]);
    EXPECT_EQ(t.strides(), (Dims{12, 4, 1}));
    EXPECT_EQ(t.size(-1), 4);
    EXPECT_EQ(t.stride(-3), 12);
    EXPECT_TRUE(t.device().is_cpu());
    EXPECT_TRUE(t.is_contiguous());
    EXPECT_FALSE(t.requires_grad());
    EXPECT_TRUE(t.is_leaf());
    EXPECT_EQ(Tensor::Zeros({5}, dt).ToDoubles(), std::vector<double>(5, 0.0));
    EXPECT_EQ(Tensor::Ones({2, 2}, dt).ToDoubles(), std::vector<double>(4, 1.0));
    EXPECT_EQ(Tensor::Full({3}, dt == DType::kBool ? 1 : 3, dt).ToDoubles(),
              std::vector<double>(3, dt == DType::kBool ? 1 : 3));
    EXPECT_EQ(Tensor::Arange(4, dt == DType::kBool ? DType::kI32 : dt).ToDoubles(),
              (std::vector<double>{0, 1, 2, 3}));
    ++i;
  }
  Tensor s = Tensor::Scalar(2.5, DType::kF64);
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.item(), 2.5);
  Tensor e = Tensor::Empty({3, 0}, DType::kF32);
  EXPECT_EQ(e.numel(), 0);
  EXPECT_TRUE(e.ToDoubles().empty());
  EXPECT_FALSE(Tensor::TryEmpty({-1}, DType::kF32).ok());
  Tensor v = Tensor::FromVector<int64_t>({7, -8, 9}, {3});
  EXPECT_EQ(v.dtype(), DType::kI64);
  EXPECT_EQ(v.ToVector<int64_t>(), (std::vector<int64_t>{7, -8, 9}));
  Tensor d = Tensor::FromDoubles({0.5, -1.25}, {2, 1}, DType::kBF16);
  EXPECT_EQ(d.ToDoubles(), (std::vector<double>{0.5, -1.25}));
  EXPECT_FALSE(Tensor().defined());
}

TEST(TensorTest, ReshapeOfContiguousIsAView) {
  Tensor x = ArangeF32({2, 6});
  Tensor y = Reshape(x, {3, -1});
  EXPECT_EQ(y.sizes(), (Dims{3, 4}));
  EXPECT_EQ(y.storage(), x.storage());
  SetAt(y, {1, 2}, 100);  // element 6
  EXPECT_EQ(GetAt(x, {1, 0}), 100);
  Tensor z = Flatten(y);
  EXPECT_EQ(z.storage(), x.storage());
  EXPECT_EQ(z.ToDoubles()[6], 100);
}

TEST(TensorTest, PermuteAndTransposeAreViews) {
  Tensor x = ArangeF32({2, 3, 4});
  Tensor p = Permute(x, {2, 0, 1});
  EXPECT_EQ(p.sizes(), (Dims{4, 2, 3}));
  EXPECT_EQ(p.strides(), (Dims{1, 12, 4}));
  EXPECT_FALSE(p.is_contiguous());
  SetAt(p, {3, 1, 2}, -5);
  EXPECT_EQ(GetAt(x, {1, 2, 3}), -5);
  Tensor t = Transpose(x, 0, -1);
  EXPECT_EQ(t.sizes(), (Dims{4, 3, 2}));
  SetAt(x, {0, 1, 2}, 42);
  EXPECT_EQ(GetAt(t, {2, 1, 0}), 42);
  EXPECT_EQ(t.storage(), x.storage());
}

TEST(TensorTest, SliceWithStepIsAView) {
  Tensor x = ArangeF32({10});
  Tensor s = Slice(x, 0, 1, 8, 3);
  EXPECT_EQ(s.sizes(), (Dims{3}));
  EXPECT_EQ(s.strides(), (Dims{3}));
  EXPECT_EQ(s.offset(), 1);
  EXPECT_EQ(s.ToDoubles(), (std::vector<double>{1, 4, 7}));
  SetAt(s, {2}, -1);
  EXPECT_EQ(GetAt(x, {7}), -1);
  EXPECT_EQ(Slice(x, 0, -3, 10).ToDoubles(), (std::vector<double>{-1, 8, 9}));
  EXPECT_EQ(Slice(x, 0, 8, 3).numel(), 0);  // empty, not negative
  // A slice of a slice composes offsets and strides.
  Tensor m = ArangeF32({4, 5});
  Tensor ss = Slice(Slice(m, 1, 1, 5, 2), 0, 1, 4, 2);
  EXPECT_EQ(ss.ToDoubles(), (std::vector<double>{6, 8, 16, 18}));
  SetAt(ss, {1, 1}, 0.5);
  EXPECT_EQ(GetAt(m, {3, 3}), 0.5);
}

TEST(TensorTest, SelectIsAView) {
  Tensor x = ArangeF32({3, 4});
  Tensor col = Select(x, 1, 2);
  EXPECT_EQ(col.sizes(), (Dims{3}));
  EXPECT_EQ(col.ToDoubles(), (std::vector<double>{2, 6, 10}));
  SetAt(col, {1}, -7);
  EXPECT_EQ(GetAt(x, {1, 2}), -7);
  Tensor row = Select(x, 0, -1);
  EXPECT_EQ(row.ToDoubles(), (std::vector<double>{8, 9, 10, 11}));
  // Selecting a row of a transposed tensor (a column of x) is a view too.
  Tensor xt = Transpose(x, 0, 1);
  Tensor r = Select(xt, 0, 1);
  EXPECT_EQ(r.ToDoubles(), (std::vector<double>{1, 5, 9}));
  EXPECT_EQ(r.storage(), x.storage());
  SetAt(r, {2}, 123);
  EXPECT_EQ(GetAt(x, {2, 1}), 123);
}

TEST(TensorTest, ExpandHasStrideZero) {
  Tensor x = ArangeF32({3, 1});
  Tensor e = Expand(x, {2, 3, 4});
  EXPECT_EQ(e.sizes(), (Dims{2, 3, 4}));
  EXPECT_EQ(e.strides(), (Dims{0, 1, 0}));
  EXPECT_EQ(e.storage(), x.storage());
  SetAt(x, {1, 0}, 9);
  for (int64_t a = 0; a < 2; ++a) {
    for (int64_t c = 0; c < 4; ++c) EXPECT_EQ(GetAt(e, {a, 1, c}), 9);
  }
  EXPECT_EQ(Expand(x, {-1, 2}).ToDoubles(), (std::vector<double>{0, 0, 9, 9, 2, 2}));
}

TEST(TensorTest, UnsqueezeAndSqueezeAreViews) {
  Tensor x = ArangeF32({2, 3});
  Tensor u = Unsqueeze(x, 1);
  EXPECT_EQ(u.sizes(), (Dims{2, 1, 3}));
  Tensor u_last = Unsqueeze(x, -1);
  EXPECT_EQ(u_last.sizes(), (Dims{2, 3, 1}));
  SetAt(u_last, {1, 2, 0}, 50);
  EXPECT_EQ(GetAt(x, {1, 2}), 50);
  Tensor q = Squeeze(u, 1);
  EXPECT_EQ(q.sizes(), (Dims{2, 3}));
  SetAt(q, {0, 1}, 60);
  EXPECT_EQ(GetAt(x, {0, 1}), 60);
  // On a non-contiguous tensor as well.
  Tensor t = Transpose(x, 0, 1);
  Tensor tu = Unsqueeze(t, 0);
  EXPECT_EQ(tu.storage(), x.storage());
  Tensor tq = Squeeze(tu, 0);
  EXPECT_EQ(tq.storage(), x.storage());
  EXPECT_EQ(tq.ToDoubles(), t.ToDoubles());
}

TEST(TensorTest, ReshapeOfNonViewableTensorCopies) {
  Tensor x = ArangeF32({2, 3});
  Tensor t = Transpose(x, 0, 1);  // [3, 2] strides [1, 3]
  Tensor flat = Reshape(t, {6});
  EXPECT_NE(flat.storage(), x.storage());
  EXPECT_EQ(flat.ToDoubles(), (std::vector<double>{0, 3, 1, 4, 2, 5}));
  SetAt(flat, {0}, 99);
  EXPECT_EQ(GetAt(x, {0, 0}), 0);
  // A reshape that only splits a dim of a strided tensor is still a view.
  Tensor s = Slice(ArangeF32({4, 6}), 1, 0, 6, 2);  // [4, 3] strides [6, 2]
  Tensor v = Reshape(s, {2, 2, 3});
  EXPECT_EQ(v.storage(), s.storage());
  EXPECT_EQ(v.strides(), (Dims{12, 6, 2}));
}

TEST(TensorTest, IsContiguous) {
  Tensor x = ArangeF32({2, 3, 4});
  EXPECT_TRUE(x.is_contiguous());
  EXPECT_FALSE(Transpose(x, 1, 2).is_contiguous());
  EXPECT_TRUE(Slice(x, 0, 1, 2).is_contiguous());   // one whole block
  EXPECT_FALSE(Slice(x, 2, 0, 2).is_contiguous());  // rows with gaps
  EXPECT_TRUE(Select(x, 0, 1).is_contiguous());
  EXPECT_FALSE(Expand(Tensor::Ones({1, 4}, DType::kF32), {3, 4}).is_contiguous());
  EXPECT_TRUE(Unsqueeze(x, 3).is_contiguous());
  // Size-1 dims may have any stride.
  EXPECT_TRUE(Transpose(ArangeF32({1, 5}), 0, 1).is_contiguous());
}

TEST(TensorTest, ContiguousCopiesOnlyWhenNeeded) {
  Tensor x = ArangeF32({2, 3});
  EXPECT_TRUE(Contiguous(x).is_same(x));
  Tensor t = Transpose(x, 0, 1);
  Tensor c = Contiguous(t);
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_NE(c.storage(), x.storage());
  EXPECT_EQ(c.sizes(), (Dims{3, 2}));
  EXPECT_EQ(c.ToDoubles(), (std::vector<double>{0, 3, 1, 4, 2, 5}));
}

TEST(TensorTest, CatSplitChunk) {
  Tensor a = ArangeF32({2, 2});
  Tensor b = Tensor::Full({2, 1}, -1, DType::kF32);
  Tensor c = Cat({a, b, a}, 1);
  EXPECT_EQ(c.sizes(), (Dims{2, 5}));
  EXPECT_EQ(c.ToDoubles(), (std::vector<double>{0, 1, -1, 0, 1, 2, 3, -1, 2, 3}));
  Tensor r = Cat({a, Transpose(a, 0, 1)}, 0);
  EXPECT_EQ(r.ToDoubles(), (std::vector<double>{0, 1, 2, 3, 0, 2, 1, 3}));
  std::vector<Tensor> parts = Split(c, {2, 1, 2}, 1);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].ToDoubles(), a.ToDoubles());
  EXPECT_EQ(parts[1].ToDoubles(), b.ToDoubles());
  EXPECT_EQ(parts[2].storage(), c.storage());  // pieces are views
  std::vector<Tensor> chunks = Chunk(ArangeF32({7}), 3, 0);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].ToDoubles(), (std::vector<double>{0, 1, 2}));
  EXPECT_EQ(chunks[1].ToDoubles(), (std::vector<double>{3, 4, 5}));
  EXPECT_EQ(chunks[2].ToDoubles(), (std::vector<double>{6}));
  EXPECT_EQ(Chunk(ArangeF32({4, 2}), 2, -2)[1].ToDoubles(), (std::vector<double>{4, 5, 6, 7}));
}

// What converting `v` (exact in its source type) to `to` must give.
double CastReference(double v, DType to) {
  if (to == DType::kBool) return v != 0 ? 1 : 0;
  if (to == DType::kI32 || to == DType::kI64) return std::trunc(v);
  return v;  // the samples are exact in every floating type
}

TEST(TensorTest, CastBetweenAllDtypePairs) {
  for (DType from : kAllDTypes) {
    std::vector<double> values = {0, 1, -2, 3, 100};
    if (from == DType::kBool) values = {0, 1, 1, 0, 1};
    if (from == DType::kI32 || from == DType::kI64) values.push_back(-7);
    if (IsFloating(from)) values.push_back(-2.75);
    if (IsFloating(from)) values.push_back(2.5);
    const Tensor x = Tensor::FromDoubles(values, {int64_t(values.size())}, from);
    for (DType to : kAllDTypes) {
      const Tensor y = Cast(x, to);
      ASSERT_EQ(y.dtype(), to);
      std::vector<double> want;
      for (double v : values) want.push_back(CastReference(v, to));
      EXPECT_EQ(y.ToDoubles(), want) << DTypeName(from) << " -> " << DTypeName(to);
      // Through a strided source as well.
      const Tensor ys = Cast(Slice(x, 0, 0, x.numel(), 2), to);
      std::vector<double> want_strided;
      for (size_t i = 0; i < want.size(); i += 2) want_strided.push_back(want[i]);
      EXPECT_EQ(ys.ToDoubles(), want_strided) << DTypeName(from) << " -> " << DTypeName(to);
    }
  }
  // Rounding to nearest even when narrowing floats.
  Tensor f = Tensor::FromVector<float>({1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, 70000.0f}, {3});
  EXPECT_EQ(Cast(f, DType::kBF16).ToDoubles(), (std::vector<double>{1.0, 1.0 + 0x1p-6, 70144.0}));
  EXPECT_TRUE(std::isinf(Cast(f, DType::kF16).ToDoubles()[2]));
  Tensor wide = Tensor::FromVector<int64_t>({int64_t(1) << 40}, {1});
  EXPECT_EQ(Cast(wide, DType::kF64).item(), std::ldexp(1.0, 40));
}

TEST(TensorTest, SetDataSwapsDataForEveryHandleAndKeepsAutogradIdentity) {
  Tensor w = Tensor::Zeros({2, 2}, DType::kF32);
  w.set_requires_grad(true);
  w.set_grad_dtype(DType::kF64);
  Tensor alias = w;                // another handle, same impl
  Tensor from_impl(w.impl_ptr());  // and one built from the impl
  int hook_calls = 0;
  w.AddPostAccumulateGradHook([&](const Tensor&) { ++hook_calls; });
  w.set_grad(Tensor::Ones({2, 2}, DType::kF64));
  const Tensor old_grad = w.grad();

  Tensor src = ArangeF32({4, 2});
  alias.SetData(src);
  for (const Tensor& h : {w, alias, from_impl}) {
    EXPECT_EQ(h.sizes(), (Dims{4, 2}));
    EXPECT_EQ(h.storage(), src.storage());
    EXPECT_EQ(h.ToDoubles(), src.ToDoubles());
    EXPECT_TRUE(h.requires_grad());
    EXPECT_TRUE(h.grad().is_same(old_grad));
  }
  SetAt(src, {3, 1}, -4);  // data is shared with src, not copied
  EXPECT_EQ(GetAt(w, {3, 1}), -4);

  // The hook and grad dtype survive: a backward fires the hook once and
  // accumulates in f64.
  w.set_grad(Tensor());
  Sum(Mul(w, w)).Backward();
  EXPECT_EQ(hook_calls, 1);
  EXPECT_EQ(w.grad().dtype(), DType::kF64);
  std::vector<double> want;
  for (double v : src.ToDoubles()) want.push_back(2 * v);
  EXPECT_EQ(from_impl.grad().ToDoubles(), want);
}

TEST(TensorTest, ReleaseDataFreesMemoryAndKeepsIdentity) {
  const int64_t before = GetMemoryStats(Device::CPU()).current_bytes;
  Tensor w = Tensor::Ones({256, 64}, DType::kF32);
  w.set_requires_grad(true);
  Tensor alias = w;
  EXPECT_EQ(GetMemoryStats(Device::CPU()).current_bytes, before + 256 * 64 * 4);
  w.ReleaseData();
  EXPECT_EQ(GetMemoryStats(Device::CPU()).current_bytes, before);
  EXPECT_EQ(alias.sizes(), (Dims{0}));
  EXPECT_EQ(alias.numel(), 0);
  EXPECT_EQ(alias.dtype(), DType::kF32);
  EXPECT_TRUE(alias.requires_grad());
  alias.SetData(Tensor::Full({3}, 2, DType::kF32));
  EXPECT_EQ(w.ToDoubles(), (std::vector<double>{2, 2, 2}));
}

TEST(TensorTest, CopyToCpuMakesAContiguousCopy) {
  Tensor x = ArangeF32({3, 4});
  Tensor view = Slice(Transpose(x, 0, 1), 0, 1, 4, 2);  // [2, 3]
  absl::StatusOr<Tensor> c = view.CopyTo(Device::CPU());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->is_contiguous());
  EXPECT_NE(c->storage(), x.storage());
  EXPECT_EQ(c->sizes(), (Dims{2, 3}));
  EXPECT_EQ(c->ToDoubles(), (std::vector<double>{1, 5, 9, 3, 7, 11}));
  SetAt(*c, {0, 0}, -1);
  EXPECT_EQ(GetAt(x, {0, 1}), 1);
}

TEST(TensorTest, ItemAndToDoublesOnStridedViews) {
  Tensor x = ArangeF32({3, 4});
  EXPECT_EQ(Select(Select(Transpose(x, 0, 1), 0, 3), 0, 2).item(), 11);
  EXPECT_EQ(Slice(Select(x, 1, 1), 0, 0, 3, 2).ToDoubles(), (std::vector<double>{1, 9}));
  EXPECT_EQ(Expand(Select(x, 0, 2), {2, 4}).ToDoubles(),
            (std::vector<double>{8, 9, 10, 11, 8, 9, 10, 11}));
  Tensor h = Cast(Transpose(x, 0, 1), DType::kF16);
  EXPECT_EQ(Transpose(h, 0, 1).ToDoubles(), x.ToDoubles());
}

TEST(TensorDeathTest, FromStorageChecksBounds) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::shared_ptr<Storage> s = Tensor::Empty({4}, DType::kF32).storage();  // 16 bytes
  // In bounds: the last element read is byte 12..15.
  EXPECT_EQ(Tensor::FromStorage(s, 0, {2, 2}, {2, 1}, DType::kF32).numel(), 4);
  EXPECT_EQ(Tensor::FromStorage(s, 1, {3}, {1}, DType::kF32).numel(), 3);
  EXPECT_EQ(Tensor::FromStorage(s, 0, {2}, {3}, DType::kF32).numel(), 2);
  EXPECT_EQ(Tensor::FromStorage(s, 0, {8}, {1}, DType::kBF16).numel(), 8);
  EXPECT_DEATH(Tensor::FromStorage(s, 0, {5}, {1}, DType::kF32), "exceeds storage");
  EXPECT_DEATH(Tensor::FromStorage(s, 1, {4}, {1}, DType::kF32), "exceeds storage");
  EXPECT_DEATH(Tensor::FromStorage(s, 0, {2}, {4}, DType::kF32), "exceeds storage");
  EXPECT_DEATH(Tensor::FromStorage(s, 0, {3}, {1}, DType::kF64), "exceeds storage");
  EXPECT_DEATH(Tensor::FromStorage(s, 0, {2}, {-1}, DType::kF32), "bad sizes");
}

TEST(TensorTest, DebugString) {
  EXPECT_EQ(Tensor().DebugString(), "Tensor(undefined)");
  EXPECT_EQ(Tensor::FromDoubles({1, 2.5, -3, 4}, {2, 2}, DType::kF32).DebugString(),
            "Tensor(f32[2, 2] cpu {1, 2.5, -3, 4})");
  EXPECT_EQ(Tensor::Zeros({100}, DType::kBF16).DebugString(), "Tensor(bf16[100] cpu)");
  EXPECT_EQ(Tensor::Scalar(7, DType::kI64).DebugString(), "Tensor(i64[] cpu {7})");
  EXPECT_EQ(ArangeF32({2, 3}).ShapeString(), "[2, 3]");
}

}  // namespace
}  // namespace loom
