// Threads for calls that must not hold a gRPC callback thread while they
// wait (a selection waiting on registries, a pull waiting on containerd),
// every one of them joined: no thread of imgseld is ever detached.
//
// Each piece of work must end by itself within a bound its caller sets (a
// selection by its budget, a forwarded call by its deadline); the group's
// destructor waits for the pieces still running, so what they use may be
// destroyed right after it. Finished threads are joined as new ones start.
//
// Thread-safe.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace imgsel::plugin {

class CallThreads {
 public:
  CallThreads() = default;
  CallThreads(const CallThreads&) = delete;
  CallThreads& operator=(const CallThreads&) = delete;
  // Joins every thread, waiting for the work still running.
  ~CallThreads();

  // Runs `work` on a thread of its own.
  void Run(std::function<void()> work);

  // Threads started and not yet joined (running, or finished a moment ago).
  size_t size() const;

 private:
  // Joins the threads that have said they are done; returns them to join
  // outside the lock.
  std::vector<std::thread> TakeFinished() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, std::thread> threads_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> finished_ ABSL_GUARDED_BY(mu_);
};

}  // namespace imgsel::plugin
