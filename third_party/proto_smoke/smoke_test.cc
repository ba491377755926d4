// Proves that loom_cc_proto_library (third_party/proto.bzl) generates C++ code that compiles,
// links against the system libprotobuf and round-trips a message through its wire format.
#include <string>

#include "gtest/gtest.h"
#include "third_party/proto_smoke/checkpoint.pb.h"
#include "third_party/proto_smoke/smoke.pb.h"

namespace loom::proto_smoke {
namespace {

TEST(ProtoSmokeTest, RoundTripsThroughWireFormat) {
  Manifest manifest;
  manifest.set_version(3);
  Shard* shard = manifest.add_shards();
  shard->set_name("layers.0.attn.wq");
  shard->add_dims(4096);
  shard->add_dims(128);
  shard->set_scale(0.125);
  shard->set_payload(std::string("\x00\x01\xff", 3));
  manifest.add_shards()->set_name("norm");
  (*manifest.mutable_metadata())["dtype"] = "bf16";

  std::string wire;
  ASSERT_TRUE(manifest.SerializeToString(&wire));
  ASSERT_FALSE(wire.empty());

  Manifest parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_EQ(parsed.version(), 3);
  ASSERT_EQ(parsed.shards_size(), 2);
  EXPECT_EQ(parsed.shards(0).name(), "layers.0.attn.wq");
  ASSERT_EQ(parsed.shards(0).dims_size(), 2);
  EXPECT_EQ(parsed.shards(0).dims(0), 4096);
  EXPECT_EQ(parsed.shards(0).dims(1), 128);
  EXPECT_EQ(parsed.shards(0).scale(), 0.125);
  EXPECT_EQ(parsed.shards(0).payload(), std::string("\x00\x01\xff", 3));
  EXPECT_EQ(parsed.shards(1).name(), "norm");
  EXPECT_TRUE(parsed.shards(1).dims().empty());
  ASSERT_EQ(parsed.metadata().count("dtype"), 1u);
  EXPECT_EQ(parsed.metadata().at("dtype"), "bf16");
}

TEST(ProtoSmokeTest, ImportedMessageRoundTrips) {
  Checkpoint checkpoint;
  checkpoint.set_step(1234567890123);
  checkpoint.mutable_manifest()->set_version(7);
  checkpoint.mutable_manifest()->add_shards()->set_name("tok_embeddings");

  Checkpoint parsed;
  ASSERT_TRUE(parsed.ParseFromString(checkpoint.SerializeAsString()));
  EXPECT_EQ(parsed.step(), 1234567890123);
  EXPECT_EQ(parsed.manifest().version(), 7);
  ASSERT_EQ(parsed.manifest().shards_size(), 1);
  EXPECT_EQ(parsed.manifest().shards(0).name(), "tok_embeddings");
}

TEST(ProtoSmokeTest, RejectsTruncatedInput) {
  Shard shard;
  shard.set_name("a fairly long tensor name so the length prefix matters");
  std::string wire = shard.SerializeAsString();
  Shard parsed;
  EXPECT_FALSE(parsed.ParseFromString(wire.substr(0, wire.size() / 2)));
}

}  // namespace
}  // namespace loom::proto_smoke
