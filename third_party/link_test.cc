// Every library third_party/ declares links and answers a call that needs no
// GPU, so a wrong path or library name fails here rather than in a later issue.
#include <cblas.h>
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <nccl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "gloo/rendezvous/hash_store.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace {

TEST(ThirdPartyLinkTest, CudaLibrariesReportTheirVersions) {
  int runtime = 0;
  EXPECT_EQ(cudaRuntimeGetVersion(&runtime), cudaSuccess);
  EXPECT_GE(runtime, 12000);  // CUDA 12 or newer
  int cublas_major = 0;
  EXPECT_EQ(cublasGetProperty(MAJOR_VERSION, &cublas_major), CUBLAS_STATUS_SUCCESS);
  EXPECT_GE(cublas_major, 12);
  EXPECT_GT(cublasLtGetVersion(), 0u);
  EXPECT_GE(cudnnGetVersion(), 8000u);
  int nccl = 0;
  EXPECT_EQ(ncclGetVersion(&nccl), ncclSuccess);
  EXPECT_GE(nccl, 21800);
}

TEST(ThirdPartyLinkTest, OpenBlasMultiplies) {
  const float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
  float c[4] = {0, 0, 0, 0};
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 2, 1.0f, a, 2, b, 2, 0.0f, c, 2);
  EXPECT_EQ(std::vector<float>(c, c + 4), (std::vector<float>{19, 22, 43, 50}));
}

TEST(ThirdPartyLinkTest, GlooStoreRoundTrips) {
  gloo::rendezvous::HashStore store;
  store.set("key", std::vector<char>{'o', 'k'});
  EXPECT_EQ(store.get("key"), (std::vector<char>{'o', 'k'}));
}

TEST(ThirdPartyLinkTest, YamlAndJsonParse) {
  EXPECT_EQ(YAML::Load("sequence_len: 2048")["sequence_len"].as<int>(), 2048);
  EXPECT_EQ(nlohmann::json::parse(R"({"hidden_size": 64})")["hidden_size"].get<int>(), 64);
}

}  // namespace
