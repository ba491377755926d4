#include "kernels/emu/fiber.h"

#include <vector>

#include "gtest/gtest.h"

namespace loom::emu {
namespace {

struct Log {
  std::vector<int>* out;
  int id;
};

void Entry(void* arg) {
  Log* log = static_cast<Log*>(arg);
  for (int i = 0; i < 3; ++i) {
    log->out->push_back(log->id * 10 + i);
    Fiber::Yield();
  }
}

TEST(FiberTest, InterleavesExactlyAtYields) {
  StackPool pool;
  std::vector<int> out;
  Log a{&out, 1}, b{&out, 2};
  Fiber fa, fb;
  fa.Start(pool.Get(0), &Entry, &a);
  fb.Start(pool.Get(1), &Entry, &b);
  int rounds = 0;
  while (!(fa.finished() && fb.finished())) {
    fa.Resume();
    fb.Resume();
    ++rounds;
  }
  EXPECT_EQ(out, (std::vector<int>{10, 20, 11, 21, 12, 22}));
  EXPECT_EQ(rounds, 4);  // the fourth resume runs each entry to its end
}

void Deep(void* arg) {
  // Floating-point work across a switch: the callee-saved state (and the
  // 16-byte stack alignment SSE spills need) must survive.
  double* result = static_cast<double*>(arg);
  volatile double acc[64];
  for (int i = 0; i < 64; ++i) acc[i] = i * 0.5;
  Fiber::Yield();
  double s = 0;
  for (int i = 0; i < 64; ++i) s += acc[i];
  *result = s;
}

TEST(FiberTest, RestartsAbandonedFibersOnTheSameStack) {
  StackPool pool;
  Fiber f;
  double r = 0;
  f.Start(pool.Get(0), &Deep, &r);
  EXPECT_FALSE(f.Resume());  // suspended at its Yield, then abandoned
  f.Start(pool.Get(0), &Deep, &r);
  EXPECT_FALSE(f.Resume());
  EXPECT_TRUE(f.Resume());
  EXPECT_EQ(r, 63 * 64 / 2 * 0.5);
}

TEST(FiberTest, CurrentIsSetOnlyInsideAFiber) {
  StackPool pool;
  Fiber f;
  Fiber* seen = nullptr;
  f.Start(
      pool.Get(0), [](void* arg) { *static_cast<Fiber**>(arg) = Fiber::Current(); }, &seen);
  EXPECT_EQ(Fiber::Current(), nullptr);
  EXPECT_TRUE(f.Resume());
  EXPECT_EQ(seen, &f);
  EXPECT_EQ(Fiber::Current(), nullptr);
}

// Recursion that touches every page of its frames on the way down, so that it
// reaches the guard page below the stack rather than jumping past it.
// `limit` is far beyond what a 64 KiB stack holds.
int Deeper(int depth, int limit) {
  volatile char frame[512];
  frame[0] = char(depth);
  frame[sizeof(frame) - 1] = char(depth);
  if (depth == limit) return frame[0];
  return Deeper(depth + 1, limit) + frame[0] + frame[sizeof(frame) - 1];
}

TEST(FiberDeathTest, StackOverflowHitsTheGuardPage) {
  EXPECT_DEATH(
      {
        StackPool pool(64 << 10);
        Fiber f;
        f.Start(pool.Get(0), [](void*) { Deeper(0, 1 << 20); }, nullptr);
        f.Resume();
      },
      "");
}

}  // namespace
}  // namespace loom::emu
