// Tokenizer throughput in MB/s (Google Benchmark's bytes_per_second):
//
//   bazel run -c opt //data:tokenizer_benchmark
//
// Text: English-like prose with code, numbers and some CJK/emoji (a repeated
// vocabulary, so the word cache is hit as on real text), and random words
// that defeat the cache (every pre-token runs the full BPE merge loop).
#include <random>
#include <string>

#include "benchmark/benchmark.h"
#include "data/bpe_tokenizer.h"
#include "data/pretokenizer.h"
#include "runtime/status.h"

namespace loom::data {
namespace {

std::string Prose(size_t bytes) {
  const char* words[] = {"the",         "quick",       "brown",  "fox",    "jumps",    "over",
                         "lazy",        "dog",         "It's",   "2024,",  "and",      "we're",
                         "testing",     "tokenizers!", "def",    "add(a,", "b):",      "return",
                         "12345",       "école",       "Straße", "東京は", "日本の",   "😀",
                         "instruction", "response",    "\n",     "    ",   "numbers:", "3.14159"};
  std::mt19937 rng(1);
  std::string out;
  while (out.size() < bytes) {
    out += words[rng() % (sizeof(words) / sizeof(words[0]))];
    out += ' ';
  }
  return out;
}

std::string RandomWords(size_t bytes) {
  std::mt19937 rng(2);
  std::string out;
  while (out.size() < bytes) {
    const int n = 2 + int(rng() % 10);
    for (int i = 0; i < n; ++i) out += char('a' + rng() % 26);
    out += ' ';
  }
  return out;
}

void Encode(benchmark::State& state, const char* dir, bool random) {
  auto tok = LoadBpeTokenizer(dir);
  LOOM_CHECK_OK(tok.status());
  const std::string text = random ? RandomWords(1 << 20) : Prose(1 << 20);
  int64_t tokens = 0;
  for (auto _ : state) {
    std::vector<int32_t> ids = (*tok)->Encode(text);
    tokens += int64_t(ids.size());
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
  state.counters["tokens/s"] = benchmark::Counter(double(tokens), benchmark::Counter::kIsRate);
}

void PreTokenizeOnly(benchmark::State& state) {
  const std::string text = Prose(1 << 20);
  std::vector<Piece> pieces;
  for (auto _ : state) {
    PreTokenize(text, SplitPattern::kLlama3, &pieces);
    benchmark::DoNotOptimize(pieces.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
}

BENCHMARK_CAPTURE(Encode, llama3_prose, "data/testdata/tokenizers/llama3_style", false)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Encode, llama3_random_words, "data/testdata/tokenizers/llama3_style", true)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Encode, gpt2_prose, "data/testdata/tokenizers/gpt2_style", false)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(PreTokenizeOnly)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace loom::data
