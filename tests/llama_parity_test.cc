// Llama against PyTorch/transformers: a 2-layer tiny Llama with grouped-query
// attention, untied and tied embeddings, loaded from the Hugging Face folders
// that tools/goldens/gen_llama_goldens.py wrote. Logits, loss and every
// parameter gradient must match the float64 reference within 1e-5 (relative,
// by norm) when we run in f32.
#include <cmath>
#include <string>

#include "gtest/gtest.h"
#include "model/hf_checkpoint.h"
#include "model/pretrained.h"
#include "runtime/ops/loss.h"
#include "runtime/ops/shape.h"

namespace loom {
namespace {

// ||a - b|| / ||b||, computed in f64.
double RelativeError(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.ToDoubles(), y = b.ToDoubles();
  EXPECT_EQ(x.size(), y.size());
  double diff = 0, ref = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    diff += (x[i] - y[i]) * (x[i] - y[i]);
    ref += y[i] * y[i];
  }
  return std::sqrt(diff) / std::max(std::sqrt(ref), 1e-30);
}

// Next-token targets as transformers forms them: labels shifted left by one.
Tensor ShiftLabels(const Tensor& labels) {
  const int64_t b = labels.size(0), t = labels.size(1);
  std::vector<int64_t> l = labels.ToVector<int64_t>(), out(l.size(), -100);
  for (int64_t r = 0; r < b; ++r) {
    for (int64_t i = 0; i + 1 < t; ++i) out[r * t + i] = l[r * t + i + 1];
  }
  return Tensor::FromVector(out, {b, t});
}

class LlamaParityTest : public testing::TestWithParam<std::string> {};

TEST_P(LlamaParityTest, LogitsLossAndGradientsMatchTransformers) {
  const std::string dir = "tests/goldens/llama/" + GetParam();
  absl::StatusOr<std::unique_ptr<LlamaForCausalLM>> model = LoadPretrainedLlama(dir);
  ASSERT_TRUE(model.ok()) << model.status();
  // The sharded copy holds the untied model's weights.
  const std::string expected_dir =
      GetParam() == "untied_sharded" ? "tests/goldens/llama/untied" : dir;
  absl::StatusOr<SafetensorsFile> expected =
      SafetensorsFile::Open(expected_dir + "/expected.safetensors");
  ASSERT_TRUE(expected.ok()) << expected.status();
  auto read = [&](const std::string& name) {
    absl::StatusOr<Tensor> t = expected->Read(name);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : Tensor();
  };

  const Tensor ids = read("input_ids"), labels = read("labels");
  Tensor logits = (*model)->Forward(ids);
  Tensor loss = CrossEntropy(logits, ShiftLabels(labels));
  loss.Backward();

  const double logits_err = RelativeError(logits, read("logits"));
  const double loss_err = RelativeError(loss, read("loss"));
  EXPECT_LE(logits_err, 1e-5);
  EXPECT_LE(loss_err, 1e-5);
  RecordProperty("logits_rel_err", std::to_string(logits_err));

  const bool tied = (*model)->config().tie_word_embeddings;
  EXPECT_EQ((*model)->NamedParameters().size(), tied ? 20u : 21u);
  double worst = 0;
  for (const auto& [name, p] : (*model)->NamedParameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    const double err = RelativeError(p.grad(), read("grad." + name));
    EXPECT_LE(err, 1e-5) << name;
    worst = std::max(worst, err);
  }
  std::printf("%s: logits %.2e, loss %.2e, worst gradient %.2e (relative errors)\n",
              GetParam().c_str(), logits_err, loss_err, worst);
}

INSTANTIATE_TEST_SUITE_P(Variants, LlamaParityTest,
                         testing::Values("untied", "tied", "untied_sharded"));

// The Hugging Face folder saved back by us has the same tensors, byte for byte.
TEST(LlamaCheckpointTest, SavesWhatItLoadedByteForByte) {
  for (const std::string variant : {"untied", "tied", "untied_sharded"}) {
    const std::string dir = "tests/goldens/llama/" + variant;
    absl::StatusOr<std::unique_ptr<LlamaForCausalLM>> model = LoadPretrainedLlama(dir);
    ASSERT_TRUE(model.ok()) << model.status();
    const std::string out = std::string(std::getenv("TEST_TMPDIR")) + "/" + variant;
    const bool sharded = variant == "untied_sharded";
    ASSERT_TRUE(SavePretrainedLlama(**model, out, sharded ? 30000 : 0).ok());
    absl::StatusOr<HfCheckpoint> a = HfCheckpoint::Open(dir), b = HfCheckpoint::Open(out);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->Names(), b->Names());
    EXPECT_EQ(a->num_shards(), sharded ? 3u : 1u);
    EXPECT_EQ(b->num_shards(), sharded ? 3u : 1u);
    for (const std::string& name : a->Names()) {
      Tensor x = *a->Read(name), y = *b->Read(name);
      ASSERT_EQ(x.nbytes(), y.nbytes()) << name;
      EXPECT_EQ(std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()), 0) << name;
    }
    absl::StatusOr<LlamaConfig> c = LoadLlamaConfig(out + "/config.json");
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(LlamaConfigToJson(*c), LlamaConfigToJson((*model)->config()));
  }
}

}  // namespace
}  // namespace loom
