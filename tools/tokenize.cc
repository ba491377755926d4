// Tokenizes text lines from standard input with a Hugging Face tokenizer
// folder (or the byte-level tokenizer) and writes one JSON array of token ids
// per line; the throughput goes to standard error.
//
//   echo "Hello world" | bazel run //tools:tokenize -- --tokenizer=path/to/model
//   bazel run //tools:tokenize -- --tokenizer=byte --special_tokens < lines.txt
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_join.h"
#include "data/bpe_tokenizer.h"

ABSL_FLAG(std::string, tokenizer, "",
          "a folder with tokenizer.json (and tokenizer_config.json), a tokenizer.json file, or "
          "'byte' for the byte-level tokenizer");
ABSL_FLAG(bool, special_tokens, false,
          "add BOS / EOS as the tokenizer does for training (its post-processor)");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Reads text lines from stdin, writes one JSON array of token ids per line: "
      "--tokenizer=DIR [--special_tokens]");
  absl::ParseCommandLine(argc, argv);
  const std::string source = absl::GetFlag(FLAGS_tokenizer);
  if (source.empty()) {
    std::fprintf(stderr,
                 "tokenize: --tokenizer is required (a folder, a tokenizer.json or byte)\n");
    return 2;
  }
  if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY"); wd != nullptr) {
    if (chdir(wd) != 0) std::fprintf(stderr, "tokenize: cannot enter %s\n", wd);
  }
  std::unique_ptr<loom::data::Tokenizer> tok;
  if (source == "byte") {
    tok = std::make_unique<loom::data::ByteTokenizer>();
  } else {
    auto loaded = loom::data::LoadBpeTokenizer(source);
    if (!loaded.ok()) {
      std::fprintf(stderr, "tokenize: %s\n", std::string(loaded.status().message()).c_str());
      return 2;
    }
    tok = *std::move(loaded);
  }
  const bool special = absl::GetFlag(FLAGS_special_tokens);
  int64_t lines = 0, bytes = 0, tokens = 0;
  double seconds = 0;
  std::ios::sync_with_stdio(false);
  for (std::string line; std::getline(std::cin, line);) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<int32_t> ids = tok->Encode(line);
    if (special && tok->adds_bos()) ids.insert(ids.begin(), tok->bos_id());
    if (special && tok->adds_eos()) ids.push_back(tok->eos_id());
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "[" << absl::StrJoin(ids, ", ") << "]\n";
    ++lines;
    bytes += int64_t(line.size());
    tokens += int64_t(ids.size());
  }
  std::cout.flush();
  std::fprintf(stderr, "tokenize: %lld lines, %lld bytes -> %lld tokens in %.3f s (%.2f MB/s)\n",
               (long long)lines, (long long)bytes, (long long)tokens, seconds,
               seconds > 0 ? double(bytes) / seconds / 1e6 : 0.0);
  return 0;
}
