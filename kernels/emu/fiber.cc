#include "kernels/emu/fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <boost/context/detail/fcontext.hpp>
#include <cstdio>
#include <cstdlib>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define LOOM_EMU_ASAN 1
#else
#define LOOM_EMU_ASAN 0
#endif

namespace loom::emu {

namespace ctx = boost::context::detail;

namespace {
thread_local Fiber* current_fiber = nullptr;

size_t PageSize() {
  static const size_t page = size_t(sysconf(_SC_PAGESIZE));
  return page;
}

[[noreturn]] void Die(const char* what) {
  std::perror(what);
  std::abort();
}
}  // namespace

Stack::Stack(size_t bytes) {
  const size_t page = PageSize();
  size_ = (bytes + page - 1) / page * page;
  mapping_size_ = size_ + page;
  mapping_ =
      mmap(nullptr, mapping_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping_ == MAP_FAILED) Die("emu: mmap of a fiber stack");
  // Stacks grow down: the guard page sits at the lowest address.
  if (mprotect(mapping_, page, PROT_NONE) != 0) Die("emu: mprotect of a stack guard page");
  bottom_ = static_cast<char*>(mapping_) + page;
}

Stack::~Stack() { munmap(mapping_, mapping_size_); }

Stack& StackPool::Get(size_t i) {
  while (stacks_.size() <= i) stacks_.push_back(std::make_unique<Stack>(stack_bytes_));
  return *stacks_[i];
}

struct FiberAccess {
  // Entry point of every fiber: the first jump into it delivers the caller's
  // context and the Fiber.
  static void Trampoline(ctx::transfer_t t) {
    Fiber* f = static_cast<Fiber*>(t.data);
    f->caller_ = t.fctx;
#if LOOM_EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &f->caller_stack_bottom_, &f->caller_stack_size_);
#endif
    f->entry_(f->arg_);
    f->finished_ = true;
#if LOOM_EMU_ASAN
    // nullptr: this stack's fake frames die with the fiber.
    __sanitizer_start_switch_fiber(nullptr, f->caller_stack_bottom_, f->caller_stack_size_);
#endif
    ctx::jump_fcontext(f->caller_, nullptr);
    std::fprintf(stderr, "emu: a finished fiber was resumed\n");
    std::abort();
  }
};

void Fiber::Start(Stack& stack, Entry entry, void* arg) {
  stack_ = &stack;
  entry_ = entry;
  arg_ = arg;
  finished_ = false;
#if LOOM_EMU_ASAN
  // An abandoned run may have left redzones poisoned on this stack.
  __asan_unpoison_memory_region(stack.bottom(), stack.size());
#endif
  void* top = static_cast<char*>(stack.bottom()) + stack.size();
  context_ = ctx::make_fcontext(top, stack.size(), &FiberAccess::Trampoline);
}

bool Fiber::Resume() {
  if (finished_) return true;
  Fiber* const outer = current_fiber;
  current_fiber = this;
#if LOOM_EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, stack_->bottom(), stack_->size());
#endif
  ctx::transfer_t t = ctx::jump_fcontext(context_, this);
#if LOOM_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  context_ = t.fctx;
  current_fiber = outer;
  return finished_;
}

void Fiber::Yield() {
  Fiber* f = current_fiber;
  if (f == nullptr) {
    std::fprintf(stderr, "emu: Fiber::Yield() outside a fiber\n");
    std::abort();
  }
#if LOOM_EMU_ASAN
  __sanitizer_start_switch_fiber(&f->asan_fake_stack_, f->caller_stack_bottom_,
                                 f->caller_stack_size_);
#endif
  ctx::transfer_t t = ctx::jump_fcontext(f->caller_, nullptr);
#if LOOM_EMU_ASAN
  __sanitizer_finish_switch_fiber(f->asan_fake_stack_, &f->caller_stack_bottom_,
                                  &f->caller_stack_size_);
#endif
  f->caller_ = t.fctx;
}

Fiber* Fiber::Current() { return current_fiber; }

}  // namespace loom::emu
