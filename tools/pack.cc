// Packs sample lengths into bins and writes the bins as JSON lines of sample
// indices (0-based, in the order of the lengths file); efficiency and time go
// to standard error.
//
//   bazel run //tools:pack -- --capacity=4096 --lengths=lengths.txt > bins.jsonl
//   bazel run //tools:pack -- --capacity=2048 --lengths=l.txt --sequential --output=bins.jsonl
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "data/packer.h"

ABSL_FLAG(int64_t, capacity, 0, "tokens per bin (e.g. sequence_len)");
ABSL_FLAG(std::string, lengths, "", "a file with one sample length per line");
ABSL_FLAG(std::string, output, "", "where to write the bins (default: standard output)");
ABSL_FLAG(int64_t, group_size, 100000, "samples per independently packed group");
ABSL_FLAG(int64_t, bin_size, 200, "most samples in one bin");
ABSL_FLAG(bool, sequential, false, "next-fit in the file's order instead of first-fit-decreasing");
ABSL_FLAG(uint64_t, seed, 42, "shuffle seed");
ABSL_FLAG(int64_t, epoch, 0, "epoch (each epoch packs afresh)");

namespace {

int Fail(const std::string& msg) {
  std::fprintf(stderr, "pack: %s\n", msg.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Packs lengths into bins: --capacity=N --lengths=FILE [--output=FILE] [--sequential]");
  absl::ParseCommandLine(argc, argv);
  if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY"); wd != nullptr) {
    if (chdir(wd) != 0) std::fprintf(stderr, "pack: cannot enter %s\n", wd);
  }
  const std::string path = absl::GetFlag(FLAGS_lengths);
  if (path.empty()) return Fail("--lengths=FILE is required");
  if (absl::GetFlag(FLAGS_capacity) <= 0) return Fail("--capacity must be a positive integer");
  std::ifstream in(path);
  if (!in) return Fail(path + ": cannot open");
  std::vector<int32_t> lengths;
  int64_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    absl::string_view v = absl::StripAsciiWhitespace(line);
    if (v.empty()) continue;
    int32_t len = 0;
    if (!absl::SimpleAtoi(v, &len) || len < 1) {
      return Fail(absl::StrCat(path, ":", line_no, ": expected a positive integer length, got \"",
                               v, "\""));
    }
    lengths.push_back(len);
  }
  const loom::data::PackOptions o{.capacity = absl::GetFlag(FLAGS_capacity),
                                  .group_size = absl::GetFlag(FLAGS_group_size),
                                  .bin_size = absl::GetFlag(FLAGS_bin_size),
                                  .sequential = absl::GetFlag(FLAGS_sequential),
                                  .seed = absl::GetFlag(FLAGS_seed),
                                  .epoch = absl::GetFlag(FLAGS_epoch)};
  const auto start = std::chrono::steady_clock::now();
  auto packing = loom::data::PackSamples(lengths, o);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!packing.ok()) return Fail(path + ": " + std::string(packing.status().message()));
  std::ofstream file;
  const std::string out_path = absl::GetFlag(FLAGS_output);
  if (!out_path.empty()) {
    file.open(out_path);
    if (!file) return Fail(out_path + ": cannot write");
  }
  std::ostream& out = out_path.empty() ? std::cout : file;
  for (int64_t b = 0; b < packing->num_bins(); ++b) {
    out << "[" << absl::StrJoin(packing->bin(b), ", ") << "]\n";
  }
  out.flush();
  if (!out) return Fail("writing the bins failed");
  std::fprintf(stderr,
               "pack: %zu samples, %lld tokens -> %lld bins of %lld (lower bound %lld): "
               "efficiency %.4f, %s, %.3f s\n",
               lengths.size(), (long long)packing->tokens, (long long)packing->num_bins(),
               (long long)o.capacity, (long long)loom::data::LowerBoundBins(lengths, o.capacity),
               packing->Efficiency(o.capacity),
               o.sequential ? "sequential" : "first-fit-decreasing", seconds);
  return 0;
}
