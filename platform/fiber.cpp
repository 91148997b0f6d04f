#include "fiber.hpp"

#include <cxxabi.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define ANYSOCK_FIBER_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define ANYSOCK_FIBER_TSAN 1
#endif

namespace anysock::platform {

struct fiber::context {
  ucontext_t uc{};
  // libstdc++'s per-thread exception state (__cxa_eh_globals): the chain of exceptions being
  // handled and the count of those in flight. Each context has its own, or a fiber switching
  // inside a catch block would end another fiber's handler.
  void* caught = nullptr;
  unsigned int uncaught = 0;
  // For ASan: the context's stack, and its fake stack while suspended.
  const void* stack_bottom = nullptr;
  size_t stack_size = 0;
  void* asan_fake_stack = nullptr;
  // For TSan: the context's fiber.
  void* tsan_fiber = nullptr;
};

namespace {

struct eh_globals {  // libstdc++'s __cxa_eh_globals
  void* caught;
  unsigned int uncaught;
};

eh_globals* runtime_eh() { return reinterpret_cast<eh_globals*>(abi::__cxa_get_globals()); }

thread_local fiber* t_current = nullptr;
thread_local fiber::context t_thread_ctx;                // the OS thread's own stack
thread_local fiber::context* t_switched_from = nullptr;  // who switched to the running context

// Runs in the context just resumed: tells ASan the switch is complete and learns the bounds of the
// stack we came from (the only way to know the OS thread's own stack).
void finish_switch([[maybe_unused]] fiber::context* self) {
#if defined(ANYSOCK_FIBER_ASAN)
  const void* bottom = nullptr;
  size_t size = 0;
  __sanitizer_finish_switch_fiber(self != nullptr ? self->asan_fake_stack : nullptr, &bottom,
                                  &size);
  if (t_switched_from != nullptr && t_switched_from->stack_bottom == nullptr) {
    t_switched_from->stack_bottom = bottom;
    t_switched_from->stack_size = size;
  }
#endif
}

void do_switch(fiber::context* from, fiber::context* to, fiber* to_fiber, bool finishing) {
  eh_globals* eh = runtime_eh();
  from->caught = eh->caught;
  from->uncaught = eh->uncaught;
  eh->caught = to->caught;
  eh->uncaught = to->uncaught;
#if defined(ANYSOCK_FIBER_TSAN)
  if (from->tsan_fiber == nullptr) from->tsan_fiber = __tsan_get_current_fiber();
  __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
#if defined(ANYSOCK_FIBER_ASAN)
  __sanitizer_start_switch_fiber(finishing ? nullptr : &from->asan_fake_stack, to->stack_bottom,
                                 to->stack_size);
#endif
  t_current = to_fiber;
  t_switched_from = from;
  if (finishing) {
    setcontext(&to->uc);
    std::abort();  // setcontext returns only on failure
  }
  if (swapcontext(&from->uc, &to->uc) != 0) std::abort();
  finish_switch(from);
}

// Makes `c` start `entry` on its stack (stack_bottom, stack_size). Apart so that getcontext (which
// "returns twice") has no local variables to clobber.
bool prepare(fiber::context* c, void (*entry)()) {
  if (getcontext(&c->uc) != 0) return false;
  c->uc.uc_stack.ss_sp = const_cast<void*>(c->stack_bottom);
  c->uc.uc_stack.ss_size = c->stack_size;
  c->uc.uc_link = nullptr;
  makecontext(&c->uc, entry, 0);
  return true;
}

}  // namespace

fiber::fiber(std::function<void()> fn, size_t stack_bytes)
    : ctx_(std::make_unique<context>()), fn_(std::move(fn)) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  stack_bytes = (stack_bytes + page - 1) / page * page;
  mapped_ = stack_bytes + page;
  stack_ = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (stack_ == MAP_FAILED) {
    stack_ = nullptr;
    throw std::bad_alloc();
  }
  mprotect(stack_, page, PROT_NONE);  // a guard page below the stack: overflow faults at once
  ctx_->stack_bottom = static_cast<char*>(stack_) + page;
  ctx_->stack_size = stack_bytes;
  if (!prepare(ctx_.get(), &fiber::entry)) {
    munmap(stack_, mapped_);
    throw std::bad_alloc();
  }
#if defined(ANYSOCK_FIBER_TSAN)
  ctx_->tsan_fiber = __tsan_create_fiber(0);
#endif
}

fiber::~fiber() {
#if defined(ANYSOCK_FIBER_TSAN)
  if (ctx_->tsan_fiber != nullptr) __tsan_destroy_fiber(ctx_->tsan_fiber);
#endif
  if (stack_ != nullptr) munmap(stack_, mapped_);
}

fiber* fiber::current() { return t_current; }

void fiber::switch_to(fiber* to) {
  context* from = t_current != nullptr ? t_current->ctx_.get() : &t_thread_ctx;
  context* target = to != nullptr ? to->ctx_.get() : &t_thread_ctx;
  if (from == target) return;
  do_switch(from, target, to, false);
}

void fiber::finish_and_switch_to(fiber* to) {
  context* from = t_current != nullptr ? t_current->ctx_.get() : &t_thread_ctx;
  context* target = to != nullptr ? to->ctx_.get() : &t_thread_ctx;
  do_switch(from, target, to, true);
  std::abort();
}

void fiber::entry() {
  fiber* self = t_current;
  finish_switch(nullptr);
  self->fn_();
  finish_and_switch_to(nullptr);  // fn_ should not return; if it does, back to the OS thread
}

}  // namespace anysock::platform
