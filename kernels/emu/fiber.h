// Fibers: cooperative user-space threads, one per emulated CUDA thread.
//
// A fiber runs a function on its own stack and gives control back only when
// it calls Fiber::Yield() or its function returns, so every switch point is
// explicit and the interleaving is fully decided by the caller of Resume().
// Context switches use boost.context's fcontext (a few nanoseconds, no
// syscalls); stacks come from a StackPool and have a PROT_NONE guard page,
// so a stack overflow is a SIGSEGV, not silent corruption.
//
//   StackPool pool;
//   Fiber f;
//   f.Start(pool.Get(0), [](void* arg) { ...; Fiber::Yield(); ... }, arg);
//   while (!f.Resume()) { /* f yielded */ }
//
// A fiber never migrates between OS threads (GCC caches thread-local
// addresses inside functions), and a fiber that is abandoned mid-way (an
// aborted launch) can simply be started again: it owns nothing but its stack.
#ifndef LOOM_KERNELS_EMU_FIBER_H_
#define LOOM_KERNELS_EMU_FIBER_H_

#include <cstddef>
#include <memory>
#include <vector>

namespace loom::emu {

// One mmap'ed stack with a guard page below it. Pages are touched lazily.
class Stack {
 public:
  explicit Stack(size_t bytes);
  ~Stack();
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;
  void* bottom() const { return bottom_; }  // lowest usable address
  size_t size() const { return size_; }

 private:
  void* mapping_ = nullptr;
  size_t mapping_size_ = 0;
  void* bottom_ = nullptr;
  size_t size_ = 0;
};

// Stacks reused across launches; Get(i) allocates stack i on first use.
class StackPool {
 public:
  explicit StackPool(size_t stack_bytes = 256 << 10) : stack_bytes_(stack_bytes) {}
  Stack& Get(size_t i);

 private:
  size_t stack_bytes_;
  std::vector<std::unique_ptr<Stack>> stacks_;
};

class Fiber {
 public:
  using Entry = void (*)(void* arg);

  // Prepares the fiber to run entry(arg) from the top of `stack` at the next
  // Resume(). Any earlier, unfinished run is abandoned.
  void Start(Stack& stack, Entry entry, void* arg);
  // Runs the fiber until it yields or its entry returns; true once finished.
  bool Resume();
  bool finished() const { return finished_; }

  // Inside a fiber: suspends it and returns from the Resume() that ran it.
  static void Yield();
  // The fiber running on this OS thread, or nullptr outside fibers.
  static Fiber* Current();

 private:
  friend struct FiberAccess;

  void* context_ = nullptr;  // the fiber's suspended context
  void* caller_ = nullptr;   // the context to return to on Yield()
  Stack* stack_ = nullptr;
  Entry entry_ = nullptr;
  void* arg_ = nullptr;
  bool finished_ = true;
  // AddressSanitizer bookkeeping (see __sanitizer_start_switch_fiber).
  void* asan_fake_stack_ = nullptr;
  const void* caller_stack_bottom_ = nullptr;
  size_t caller_stack_size_ = 0;
};

}  // namespace loom::emu

#endif  // LOOM_KERNELS_EMU_FIBER_H_
