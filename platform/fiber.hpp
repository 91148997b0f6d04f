// platform/fiber: cooperative threads of execution on one OS thread (ucontext), for the simulator.
//
// A fiber runs a function on a stack of its own; switch_to() moves the calling OS thread from the
// current context (a fiber, or the thread's own stack) to another. Switching is a register swap and
// one signal-mask system call, ~100x cheaper than handing a CPU between OS threads. What every
// context keeps of its own across switches: its stack, the C++ runtime's exception state (so a
// fiber may switch inside a catch block), and ASan/TSan's view of which stack runs.
//
// A fiber's function must not return: it ends by switching away for good (finish_and_switch_to).
// Fibers are not thread-safe: one OS thread switches among its fibers.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

namespace anysock::platform {

class fiber {
 public:
  /// A fiber that runs `fn` when first switched to. The stack (`stack_bytes`, plus a guard page
  /// below it) is mapped lazily: untouched pages cost nothing. Throws std::bad_alloc.
  fiber(std::function<void()> fn, size_t stack_bytes);
  /// Frees the stack. The fiber must not be the one running.
  ~fiber();
  fiber(const fiber&) = delete;
  fiber& operator=(const fiber&) = delete;

  /// The running fiber, or nullptr on the OS thread's own stack.
  static fiber* current();
  /// Suspends the current context and resumes `to` (nullptr: the OS thread's own stack, which
  /// must have switched into a fiber before). Returns when something switches back here.
  static void switch_to(fiber* to);
  /// Like switch_to, from a fiber that will never run again (its stack may be freed once left).
  [[noreturn]] static void finish_and_switch_to(fiber* to);

  struct context;  // the saved registers and sanitizer/runtime state (fiber.cpp)

 private:
  std::unique_ptr<context> ctx_;
  std::function<void()> fn_;
  void* stack_ = nullptr;  // the mapping, guard page first
  size_t mapped_ = 0;
  static void entry();
};

}  // namespace anysock::platform
