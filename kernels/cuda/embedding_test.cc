// The embedding kernels under the CUDA emulator: the gather for every row
// width class (16/4/2/1-byte words) and both id dtypes, and the backward
// scatter-add bit-identical to the CPU's token-order accumulation (several
// vocabulary ranges, column chunks and id steps, repeated ids, mixed
// grad dtypes), plus out-of-range ids.
#include "kernels/cuda/embedding.h"

#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cuda/embedding_reference.h"
#include "kernels/cuda/testing/compare.h"
#include "kernels/cuda/testing/host_buffer.h"
#include "kernels/cuda/testing/schedules.h"
#include "runtime/philox.h"

namespace loom::cuda_emu {
namespace {

using kernel_testing::HostBuffer;
using kernel_testing::Same;
using kernel_testing::Schedule;
using kernel_testing::Schedules;
using ::testing::HasSubstr;

HostBuffer MakeIds(DType dtype, int64_t n, int64_t high, uint64_t seed) {
  HostBuffer ids(dtype, n);
  for (int64_t i = 0; i < n; ++i) {
    ids.Set(i, double(philox::Generate(seed, uint64_t(i)).x[0] % uint64_t(high)));
  }
  return ids;
}

std::vector<int64_t> IdsOf(const HostBuffer& ids) {
  std::vector<int64_t> v;
  for (double d : ids.ToDoubles()) v.push_back(int64_t(d));
  return v;
}

TEST(EmbeddingTest, ForwardGathersRowsOfEveryWidth) {
  struct Case {
    DType dtype;
    int64_t dim;
    int64_t out_offset;  // elements past alignment
  };
  // 32 B rows (16-byte words), 12 B (4-byte), 6 B (2-byte), 3 B (1-byte), misaligned out.
  const Case cases[] = {{DType::kF32, 8, 0},   {DType::kBF16, 16, 0}, {DType::kF32, 3, 0},
                        {DType::kBF16, 3, 0},  {DType::kBool, 3, 0},  {DType::kF64, 4, 1},
                        {DType::kF16, 1000, 0}};
  for (const Case& c : cases) {
    for (DType ids_dtype : {DType::kI32, DType::kI64}) {
      SCOPED_TRACE(absl::StrCat(DTypeName(c.dtype), " dim ", c.dim, " ids ", DTypeName(ids_dtype)));
      const int64_t vocab = 37, rows = 29;
      HostBuffer weight(c.dtype, vocab * c.dim);
      weight.FillRandom(1, -3, 3);
      const HostBuffer ids = MakeIds(ids_dtype, rows, vocab, 2);
      const std::vector<int64_t> id = IdsOf(ids);
      for (const Schedule& schedule : Schedules(2)) {
        SCOPED_TRACE(schedule.Name());
        emu::ScopedOptions options(schedule.options);
        HostBuffer out(c.dtype, rows * c.dim, c.out_offset);
        int32_t bad = INT32_MAX;
        const EmbeddingProblem p{.rows = rows,
                                 .vocab = vocab,
                                 .dim = c.dim,
                                 .ids = ids.data(),
                                 .ids_dtype = ids_dtype,
                                 .first_bad_row = &bad};
        ASSERT_TRUE(LaunchEmbeddingForward(p, c.dtype, weight.data(), out.data(), nullptr).ok());
        EXPECT_EQ(bad, INT32_MAX);
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t j = 0; j < c.dim; ++j) {
            ASSERT_TRUE(Same(out.Get(r * c.dim + j), weight.Get(id[size_t(r)] * c.dim + j)))
                << "row " << r << " col " << j;
          }
        }
      }
    }
  }
}

TEST(EmbeddingTest, BackwardIsBitIdenticalToTokenOrderAccumulation) {
  struct Case {
    int64_t rows, vocab, dim;
    int64_t id_range;  // ids drawn from [0, id_range): small ranges repeat ids often
    DType grad_out, grad_weight;
  };
  const Case cases[] = {
      {50, 40, 16, 10, DType::kF32, DType::kF32},
      {50, 40, 16, 10, DType::kBF16, DType::kF32},  // f32 accumulation of bf16 grads
      {50, 40, 16, 10, DType::kBF16, DType::kBF16},
      {50, 40, 16, 10, DType::kF16, DType::kF32},
      {50, 40, 16, 10, DType::kF64, DType::kF64},
      // 3 steps of 128 ids, 2 column chunks (dim > 512), many vocabulary ranges.
      {300, 1000, 600, 1000, DType::kBF16, DType::kF32},
      {300, 3, 5, 3, DType::kF32, DType::kF32},  // every block sees every id
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat("[", c.rows, " tokens, ", c.vocab, " x ", c.dim, "] ",
                              DTypeName(c.grad_out), " -> ", DTypeName(c.grad_weight)));
    const HostBuffer ids = MakeIds(DType::kI64, c.rows, c.id_range, 3);
    HostBuffer grad_out(c.grad_out, c.rows * c.dim), initial(c.grad_weight, c.vocab * c.dim);
    grad_out.FillRandom(4, -1, 1);
    initial.FillRandom(5, -1, 1);  // the backward accumulates into existing values
    std::vector<double> want = initial.ToDoubles();
    reference::EmbeddingBackward(c.rows, c.dim, IdsOf(ids), grad_out.ToDoubles(), c.grad_weight,
                                 want);
    for (const Schedule& schedule : Schedules(2)) {
      SCOPED_TRACE(schedule.Name());
      emu::ScopedOptions options(schedule.options);
      HostBuffer grad_weight = initial;
      const EmbeddingProblem p{.rows = c.rows,
                               .vocab = c.vocab,
                               .dim = c.dim,
                               .ids = ids.data(),
                               .ids_dtype = DType::kI64};
      ASSERT_TRUE(LaunchEmbeddingBackward(p, c.grad_out, grad_out.data(), c.grad_weight,
                                          grad_weight.data(), nullptr)
                      .ok());
      for (int64_t i = 0; i < grad_weight.count(); ++i) {
        ASSERT_TRUE(Same(grad_weight.Get(i), want[size_t(i)])) << "element " << i;
      }
    }
  }
}

TEST(EmbeddingTest, OutOfRangeIdsAreReportedZeroedAndSkipped) {
  const int64_t vocab = 10, dim = 4, rows = 6;
  HostBuffer weight(DType::kF32, vocab * dim), ids(DType::kI32, rows);
  weight.FillRandom(6, 1, 2);
  for (int64_t i = 0; i < rows; ++i) ids.Set(i, double(i));
  ids.Set(2, -1);
  ids.Set(4, 10);
  int32_t bad = INT32_MAX;
  const EmbeddingProblem p{.rows = rows,
                           .vocab = vocab,
                           .dim = dim,
                           .ids = ids.data(),
                           .ids_dtype = DType::kI32,
                           .first_bad_row = &bad};
  HostBuffer out(DType::kF32, rows * dim);
  ASSERT_TRUE(LaunchEmbeddingForward(p, DType::kF32, weight.data(), out.data(), nullptr).ok());
  EXPECT_EQ(bad, 2);
  for (int64_t j = 0; j < dim; ++j) {
    EXPECT_EQ(out.Get(2 * dim + j), 0.0);
    EXPECT_EQ(out.Get(4 * dim + j), 0.0);
    EXPECT_EQ(out.Get(3 * dim + j), weight.Get(3 * dim + j));
  }
  bad = INT32_MAX;
  HostBuffer grad_out(DType::kF32, rows * dim), grad_weight(DType::kF32, vocab * dim);
  grad_out.FillRandom(7, 1, 2);
  for (int64_t i = 0; i < grad_weight.count(); ++i) grad_weight.Set(i, 0.0);
  ASSERT_TRUE(LaunchEmbeddingBackward(p, DType::kF32, grad_out.data(), DType::kF32,
                                      grad_weight.data(), nullptr)
                  .ok());
  EXPECT_EQ(bad, 2);
  for (int64_t j = 0; j < dim; ++j) {
    EXPECT_EQ(grad_weight.Get(3 * dim + j), grad_out.Get(3 * dim + j));
    EXPECT_EQ(grad_weight.Get(9 * dim + j), 0.0);
  }
}

TEST(EmbeddingTest, EmptyAndBadArguments) {
  EXPECT_TRUE(LaunchEmbeddingForward({.rows = 0, .vocab = 5, .dim = 3}, DType::kF32, nullptr,
                                     nullptr, nullptr)
                  .ok());
  float buf[4];
  absl::Status s = LaunchEmbeddingForward(
      {.rows = 1, .vocab = 1, .dim = 1, .ids = buf, .ids_dtype = DType::kF32}, DType::kF32, buf,
      buf, nullptr);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("ids must be i32 or i64, got f32"));
  s = LaunchEmbeddingBackward({.rows = 1, .vocab = 1, .dim = 1, .ids = buf}, DType::kI32, buf,
                              DType::kF32, buf, nullptr);
  EXPECT_THAT(std::string(s.message()), HasSubstr("grad_out (i32) and grad_weight (f32)"));
}

}  // namespace
}  // namespace loom::cuda_emu
