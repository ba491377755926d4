// Error handling helpers shared by every package.
//
// API boundaries (files, configs, devices, allocation) return absl::Status /
// absl::StatusOr. Inside ops, a violated precondition (mismatched shapes, a
// wrong dtype) is a programming error: LOOM_CHECK aborts with the file, line
// and a message that names the op and what was expected, as PyTorch would
// raise. LOOM_CHECK_OK does the same for a Status that cannot fail in context.
#ifndef LOOM_RUNTIME_STATUS_H_
#define LOOM_RUNTIME_STATUS_H_

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace loom::internal {

[[noreturn]] inline void CheckFailed(const char* file, int line, const char* cond,
                                     const std::string& msg) {
  std::fprintf(stderr, "%s:%d: check failed: %s%s%s\n", file, line, cond,
               msg.empty() ? "" : ": ", msg.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace loom::internal

// LOOM_CHECK(cond, "format", args...): aborts with a formatted message.
#define LOOM_CHECK(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond)) [[unlikely]] {                                                \
      ::loom::internal::CheckFailed(__FILE__, __LINE__, #cond,                 \
                                    ::absl::StrFormat("" __VA_ARGS__));        \
    }                                                                          \
  } while (0)

#define LOOM_CHECK_OK(expr)                                                    \
  do {                                                                         \
    const ::absl::Status _loom_st = (expr);                                    \
    if (!_loom_st.ok()) [[unlikely]] {                                         \
      ::loom::internal::CheckFailed(__FILE__, __LINE__, #expr,                 \
                                    std::string(_loom_st.ToString()));         \
    }                                                                          \
  } while (0)

#define LOOM_RETURN_IF_ERROR(expr)                                             \
  do {                                                                         \
    ::absl::Status _loom_st = (expr);                                          \
    if (!_loom_st.ok()) return _loom_st;                                       \
  } while (0)

#define LOOM_STATUS_CONCAT_INNER(a, b) a##b
#define LOOM_STATUS_CONCAT(a, b) LOOM_STATUS_CONCAT_INNER(a, b)

// LOOM_ASSIGN_OR_RETURN(auto x, FunctionReturningStatusOr());
#define LOOM_ASSIGN_OR_RETURN(lhs, expr)                                       \
  LOOM_ASSIGN_OR_RETURN_IMPL(LOOM_STATUS_CONCAT(_loom_so_, __LINE__), lhs, expr)
#define LOOM_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)                             \
  auto tmp = (expr);                                                           \
  if (!tmp.ok()) return std::move(tmp).status();                               \
  lhs = std::move(tmp).value()

#endif  // LOOM_RUNTIME_STATUS_H_
