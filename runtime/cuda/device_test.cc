// Tests of device discovery, streams, events, the registered CUDA allocator and copies.
//
// Each test asks the CUDA runtime directly whether a GPU is present and checks the behaviour
// expected in that case: on a machine without one (this project's CI) the no-GPU path must give
// clear errors and fall back to the CPU; on a GPU machine the same tests exercise the device.
#include "runtime/cuda/device.h"

#include <cuda_runtime_api.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/allocator.h"
#include "runtime/cuda/cuda_allocator.h"
#include "runtime/cuda/stream.h"
#include "runtime/device_copy.h"
#include "runtime/tensor.h"

namespace loom::cuda {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct Probe {
  cudaError_t err;
  int count;
};

// Independent of device.h: asks the runtime itself.
Probe ProbeRuntime() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  cudaGetLastError();
  return {err, err == cudaSuccess ? count : 0};
}

bool HaveGpu() { return ProbeRuntime().count > 0; }

TEST(CudaDeviceTest, AvailabilityMatchesTheRuntime) {
  const Probe probe = ProbeRuntime();
  EXPECT_EQ(IsAvailable(), probe.count > 0);
  EXPECT_EQ(DeviceCount(), probe.count);
  if (probe.count > 0) {
    EXPECT_TRUE(UnavailableReason().ok());
    EXPECT_EQ(DefaultDevice(), Device::CUDA(0));
    return;
  }
  const absl::Status reason = UnavailableReason();
  EXPECT_TRUE(absl::IsFailedPrecondition(reason)) << reason;
  EXPECT_THAT(std::string(reason.message()), HasSubstr("no usable CUDA device"));
  if (probe.err != cudaSuccess) {
    EXPECT_THAT(std::string(reason.message()), HasSubstr(cudaGetErrorString(probe.err)));
  }
  EXPECT_EQ(DefaultDevice(), Device::CPU());
}

TEST(CudaDeviceTest, UnavailabilityIsReportedOnceOnStderr) {
  // A fresh process (threadsafe style re-executes the test binary), so the probe runs inside.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const std::string expected =
      HaveGpu() ? "^$" : "^loom: no usable CUDA device \\([^\n]*\\); using the CPU\n$";
  EXPECT_EXIT(
      {
        IsAvailable();
        DefaultDevice();
        (void)UnavailableReason();
        (void)GetAllocator(Device::CUDA(0));
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), expected);
}

TEST(CudaDeviceTest, CheckDeviceNamesTheDevice) {
  const absl::Status s = CheckDevice(DeviceCount());  // one past the last
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("cuda:" + std::to_string(DeviceCount())));
  EXPECT_EQ(CheckDevice(-1).ok(), false);
  EXPECT_EQ(CheckDevice(0).ok(), HaveGpu());
  if (!HaveGpu()) {
    EXPECT_TRUE(absl::IsFailedPrecondition(CheckDevice(0)));
    EXPECT_THAT(std::string(CheckDevice(0).message()),
                HasSubstr("cuda:0 is not usable: no usable CUDA device"));
  } else {
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  }
}

TEST(CudaDeviceTest, DeviceGuardSwitchesAndRestores) {
  if (!HaveGpu()) {
    EXPECT_TRUE(absl::IsFailedPrecondition(DeviceGuard::Switch(0).status()));
    EXPECT_TRUE(absl::IsFailedPrecondition(CurrentDevice().status()));
    return;
  }
  const int last = DeviceCount() - 1;
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  {
    absl::StatusOr<DeviceGuard> guard = DeviceGuard::Switch(last);
    ASSERT_TRUE(guard.ok()) << guard.status();
    EXPECT_EQ(*CurrentDevice(), last);
    DeviceGuard moved = std::move(*guard);  // only the moved-to guard restores
  }
  EXPECT_EQ(*CurrentDevice(), 0);
}

TEST(CudaStreamTest, StreamsAndEventsFailCleanlyOrWork) {
  if (!HaveGpu()) {
    EXPECT_TRUE(absl::IsFailedPrecondition(Stream::Create(0).status()));
    EXPECT_TRUE(absl::IsFailedPrecondition(ComputeStream(0).status()));
    EXPECT_TRUE(absl::IsFailedPrecondition(Event::Create(0).status()));
    EXPECT_THAT(std::string(ComputeStream(0).status().message()), HasSubstr("cuda:0"));
    return;
  }
  absl::StatusOr<const Stream*> compute = ComputeStream(0);
  ASSERT_TRUE(compute.ok()) << compute.status();
  EXPECT_EQ(*ComputeStream(0), *compute);  // one per device
  absl::StatusOr<Stream> comm = Stream::Create(0);
  ASSERT_TRUE(comm.ok()) << comm.status();
  EXPECT_NE(comm->get(), (*compute)->get());

  absl::StatusOr<Event> start = Event::Create(0, /*timing=*/true);
  absl::StatusOr<Event> stop = Event::Create(0, /*timing=*/true);
  ASSERT_TRUE(start.ok() && stop.ok());
  ASSERT_TRUE(start->Record(**compute).ok());
  void* buf = nullptr;
  ASSERT_EQ(cudaMalloc(&buf, 1 << 20), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(buf, 0, 1 << 20, (*compute)->get()), cudaSuccess);
  ASSERT_TRUE(stop->Record(**compute).ok());
  ASSERT_TRUE(stop->MakeWait(*comm).ok());
  ASSERT_TRUE(comm->Synchronize().ok());
  // The comm stream waited for the compute stream's event, so both events have completed.
  EXPECT_TRUE(*stop->Query());
  absl::StatusOr<float> ms = stop->ElapsedMsSince(*start);
  ASSERT_TRUE(ms.ok()) << ms.status();
  EXPECT_GE(*ms, 0.0f);
  ASSERT_EQ(cudaFree(buf), cudaSuccess);
}

TEST(CudaAllocatorTest, TensorsOnCudaFailWithTheReasonOrAllocate) {
  absl::StatusOr<Tensor> t = Tensor::TryEmpty({4}, DType::kF32, Device::CUDA(0));
  if (!HaveGpu()) {
    ASSERT_FALSE(t.ok());
    EXPECT_TRUE(absl::IsFailedPrecondition(t.status())) << t.status();
    EXPECT_THAT(std::string(t.status().message()),
                HasSubstr("cuda:0 is not usable: no usable CUDA device"));
    // Not the message of a binary without the CUDA runtime: the factory is registered.
    EXPECT_THAT(std::string(t.status().message()), Not(HasSubstr("no CUDA runtime linked")));
    const MemoryStats stats = GetMemoryStats(Device::CUDA(0));
    EXPECT_EQ(stats.reserved_bytes, 0);
    EXPECT_EQ(stats.num_allocs, 0);
    return;
  }
  ASSERT_TRUE(t.ok()) << t.status();
  absl::StatusOr<CachingAllocator*> allocator = DeviceAllocator(0);
  ASSERT_TRUE(allocator.ok());
  const MemoryStats stats = GetMemoryStats(Device::CUDA(0));
  EXPECT_GE(stats.current_bytes, 16);
  EXPECT_GE(stats.reserved_bytes, stats.current_bytes);
  EXPECT_GT((*allocator)->BlockSize(t->raw_data()), 0u);
}

TEST(CudaCopyTest, CopiesFailWithTheReasonOrRoundTrip) {
  std::vector<float> host = {1.5f, -2.0f, 3.25f, 4.0f};
  if (!HaveGpu()) {
    std::vector<float> device_stand_in(4);
    const absl::Status s =
        CopyBytes(device_stand_in.data(), Device::CUDA(0), host.data(), Device::CPU(), 16);
    EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
    EXPECT_THAT(std::string(s.message()),
                HasSubstr("copy of 16 bytes cpu -> cuda:0 failed: cuda:0 is not usable"));
    return;
  }
  absl::StatusOr<Allocator*> allocator = GetAllocator(Device::CUDA(0));
  ASSERT_TRUE(allocator.ok());
  absl::StatusOr<void*> a = (*allocator)->Allocate(16);
  absl::StatusOr<void*> b = (*allocator)->Allocate(16);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(CopyBytes(*a, Device::CUDA(0), host.data(), Device::CPU(), 16).ok());
  ASSERT_TRUE(CopyBytes(*b, Device::CUDA(0), *a, Device::CUDA(0), 16).ok());
  std::vector<float> back(4);
  ASSERT_TRUE(CopyBytes(back.data(), Device::CPU(), *b, Device::CUDA(0), 16).ok());
  EXPECT_EQ(back, host);
  if (DeviceCount() > 1) {
    absl::StatusOr<Allocator*> other = GetAllocator(Device::CUDA(1));
    ASSERT_TRUE(other.ok());
    absl::StatusOr<void*> c = (*other)->Allocate(16);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(CopyBytes(*c, Device::CUDA(1), *a, Device::CUDA(0), 16).ok());
    std::vector<float> peer(4);
    ASSERT_TRUE(CopyBytes(peer.data(), Device::CPU(), *c, Device::CUDA(1), 16).ok());
    EXPECT_EQ(peer, host);
    (*other)->Deallocate(*c, 16);
  }
  (*allocator)->Deallocate(*a, 16);
  (*allocator)->Deallocate(*b, 16);
}

}  // namespace
}  // namespace loom::cuda
