#include "collectives/collective_cases.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "runtime/status.h"

namespace loom::collectives {
namespace {

Tensor Make(int rank, int64_t n, int salt, DType dtype) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = CaseValue(rank, i, salt);
  return Tensor::FromDoubles(v, {n}, dtype);
}

// `expected` rounded to the dtype the same way the tensor stores it.
absl::Status Compare(const char* op, DType dtype, const Tensor& got,
                     const std::vector<double>& expected) {
  const std::vector<double> want =
      Tensor::FromDoubles(expected, {int64_t(expected.size())}, dtype).ToDoubles();
  const std::vector<double> have = got.ToDoubles();
  if (have.size() != want.size()) {
    return absl::InternalError(absl::StrFormat("%s %s: %d elements, expected %d", op,
                                               std::string(DTypeName(dtype)), have.size(),
                                               want.size()));
  }
  for (size_t i = 0; i < want.size(); ++i) {
    if (have[i] != want[i]) {
      return absl::InternalError(absl::StrFormat("%s %s: element %d is %g, expected %g", op,
                                                 std::string(DTypeName(dtype)), i, have[i],
                                                 want[i]));
    }
  }
  return absl::OkStatus();
}

// avg as the backends define it: sum in the accumulator type, one division, one rounding.
double Average(double sum, int n, DType dtype) {
  if (dtype == DType::kF64) return sum / double(n);
  return double(float(sum) / float(n));
}

double Reduce(const std::vector<double>& per_rank, ReduceOp op, DType dtype) {
  double sum = 0, mx = per_rank[0];
  for (double v : per_rank) {
    sum += v;
    mx = std::max(mx, v);
  }
  if (op == ReduceOp::kMax) return mx;
  if (op == ReduceOp::kAvg) return Average(sum, int(per_rank.size()), dtype);
  return sum;
}

}  // namespace

double CaseValue(int rank, int64_t i, int salt) {
  return double(((rank + 1) * 7 + i * 3 + salt) % 13 - 6);
}

absl::Status RunCollectiveCases(Communicator& comm, const std::vector<DType>& dtypes) {
  const int n = comm.size(), r = comm.rank();
  for (DType dtype : dtypes) {
    std::vector<ReduceOp> ops = {ReduceOp::kSum, ReduceOp::kMax};
    if (IsFloating(dtype)) ops.push_back(ReduceOp::kAvg);

    // ---- All-reduce of 37 elements (not a multiple of any world size used).
    for (ReduceOp op : ops) {
      const int64_t count = 37;
      Tensor t = Make(r, count, int(op), dtype);
      LOOM_RETURN_IF_ERROR(comm.AllReduce(t, op)->Wait());
      std::vector<double> want(count);
      for (int64_t i = 0; i < count; ++i) {
        std::vector<double> per_rank;
        for (int q = 0; q < n; ++q) per_rank.push_back(CaseValue(q, i, int(op)));
        want[size_t(i)] = Reduce(per_rank, op, dtype);
      }
      LOOM_RETURN_IF_ERROR(
          Compare(absl::StrFormat("all_reduce(%s)", ReduceOpName(op)).c_str(), dtype, t, want));
    }

    // ---- All-gather, equal sizes.
    {
      const int64_t count = 5;
      Tensor in = Make(r, count, 11, dtype), out = Tensor::Zeros({n * count}, dtype);
      LOOM_RETURN_IF_ERROR(comm.AllGather(in, out)->Wait());
      std::vector<double> want;
      for (int q = 0; q < n; ++q) {
        for (int64_t i = 0; i < count; ++i) want.push_back(CaseValue(q, i, 11));
      }
      LOOM_RETURN_IF_ERROR(Compare("all_gather", dtype, out, want));
    }

    // ---- All-gather, uneven sizes (rank 0 contributes nothing).
    {
      std::vector<int64_t> counts;
      int64_t total = 0;
      for (int q = 0; q < n; ++q) {
        counts.push_back((q * 2) % 5);
        total += counts.back();
      }
      Tensor in = Make(r, counts[size_t(r)], 12, dtype), out = Tensor::Zeros({total}, dtype);
      LOOM_RETURN_IF_ERROR(comm.AllGatherUneven(in, out, counts)->Wait());
      std::vector<double> want;
      for (int q = 0; q < n; ++q) {
        for (int64_t i = 0; i < counts[size_t(q)]; ++i) want.push_back(CaseValue(q, i, 12));
      }
      LOOM_RETURN_IF_ERROR(Compare("all_gather_uneven", dtype, out, want));
    }

    // ---- Reduce-scatter: chunks of 6.
    for (ReduceOp op : ops) {
      const int64_t chunk = 6;
      Tensor in = Make(r, n * chunk, 20 + int(op), dtype), out = Tensor::Zeros({chunk}, dtype);
      LOOM_RETURN_IF_ERROR(comm.ReduceScatter(in, out, op)->Wait());
      std::vector<double> want(chunk);
      for (int64_t i = 0; i < chunk; ++i) {
        std::vector<double> per_rank;
        for (int q = 0; q < n; ++q) per_rank.push_back(CaseValue(q, r * chunk + i, 20 + int(op)));
        want[size_t(i)] = Reduce(per_rank, op, dtype);
      }
      LOOM_RETURN_IF_ERROR(Compare(absl::StrFormat("reduce_scatter(%s)", ReduceOpName(op)).c_str(),
                                   dtype, out, want));
    }

    // ---- Broadcast from the last rank.
    {
      const int root = n - 1;
      Tensor t = Make(r, 9, 30, dtype);
      LOOM_RETURN_IF_ERROR(comm.Broadcast(t, root)->Wait());
      std::vector<double> want;
      for (int64_t i = 0; i < 9; ++i) want.push_back(CaseValue(root, i, 30));
      LOOM_RETURN_IF_ERROR(Compare("broadcast", dtype, t, want));
    }

    if (n > 1) {
      // ---- A ring step: send right, receive from the left, in one batch.
      const int right = (r + 1) % n, left = (r + n - 1) % n;
      Tensor mine = Make(r, 7, 40, dtype), from_left = Tensor::Zeros({7}, dtype);
      std::vector<P2POp> step = {P2POp::Send(mine, right), P2POp::Recv(from_left, left)};
      LOOM_RETURN_IF_ERROR(comm.SendRecv(std::move(step))->Wait());
      std::vector<double> want;
      for (int64_t i = 0; i < 7; ++i) want.push_back(CaseValue(left, i, 40));
      LOOM_RETURN_IF_ERROR(Compare("send_recv ring step", dtype, from_left, want));

      // ---- Plain pairs: even ranks send to the next odd rank.
      if (r % 2 == 0 && r + 1 < n) {
        LOOM_RETURN_IF_ERROR(comm.Send(Make(r, 4, 50, dtype), r + 1)->Wait());
      } else if (r % 2 == 1) {
        Tensor got = Tensor::Zeros({4}, dtype);
        LOOM_RETURN_IF_ERROR(comm.Recv(got, r - 1)->Wait());
        std::vector<double> want2;
        for (int64_t i = 0; i < 4; ++i) want2.push_back(CaseValue(r - 1, i, 50));
        LOOM_RETURN_IF_ERROR(Compare("send/recv", dtype, got, want2));
      }
    }
    LOOM_RETURN_IF_ERROR(comm.Barrier()->Wait());
  }
  return absl::OkStatus();
}

}  // namespace loom::collectives
