// Fuzz target for the safetensors parser: any byte string must give a clean
// Status or a file whose every tensor reads, never a crash, a hang or an
// out-of-bounds access.
//
// A real campaign with libFuzzer:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I.
//     model/safetensors_fuzz.cc model/safetensors.cc <the //runtime/ops sources>
// (one line; or link the fuzz target against the Bazel-built //runtime/ops).
// //model:safetensors_fuzz_test runs the same entry point on a fixed corpus of
// deterministic mutations in every `bazel test` (and under ASan in CI).
#include <cstddef>
#include <cstdint>
#include <string>

#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<loom::SafetensorsFile> f =
      loom::SafetensorsFile::Parse(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  if (!f.ok()) return 0;
  for (const auto& [name, entry] : f->tensors()) {
    absl::StatusOr<loom::Tensor> t = f->Read(name);
    if (!t.ok() || t->nbytes() != entry.end - entry.begin) __builtin_trap();
  }
  return 0;
}
