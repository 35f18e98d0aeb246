// The order in which a gRPC callback reactor passes between threads, made
// visible to ThreadSanitizer.
//
// gRPC creates a reactor on one thread (CreateReactor), runs each reaction
// (OnReadDone, OnWriteDone, OnCancel, OnDone) on whichever thread completed
// the operation, and imgsel's own threads (a pull worker, a forwarded
// call's callback) may start a reactor's last operation. gRPC orders all
// of it through its completion queues and reference counts: atomics inside
// libgrpc++, which Debian builds without ThreadSanitizer, so TSan does not
// see them and takes every handover for a race (the reactor's members
// written on one thread and read, or freed, on another).
//
// A ReactorHandover is one atomic the reactor holds, released where the
// reactor leaves a thread and acquired where it arrives on another: TSan
// models atomics, so it sees the same order gRPC keeps, and still reports
// any access the order does not cover. It adds no order of its own that the
// reactor relies on, only a count of who holds the reactor (below). Cost:
// an atomic operation (nanoseconds) per reaction.
//
// How a reactor uses it:
//
//   constructor, last line        handover_.Release();
//   each reaction but OnDone      ReactorHandover::Reaction r(handover_);
//                                 (acquires now, releases on return)
//   OnDone                        if (handover_.Drop()) delete this;
//   another thread that will      handover_.Hold() before the work is
//   start an operation            handed to it, handover_.Acquire() where
//   (a worker, a client call's    it starts, and after its last touch of
//   callback)                     the reactor `if (handover_.Drop())
//                                 delete this;`
//
// Hold and Drop count who still uses the reactor: gRPC, until OnDone, and
// each thread given a Hold. The last to Drop deletes it. A thread that
// calls StartWriteAndFinish or Finish from outside a reaction keeps the
// reactor alive that way until the call has returned: gRPC may run OnDone
// on another thread before it does, and the call still reads the reactor
// (its stream pointer, the response it serializes).
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>

namespace imgsel::plugin {

class ReactorHandover {
 public:
  ReactorHandover() = default;
  ReactorHandover(const ReactorHandover&) = delete;
  ReactorHandover& operator=(const ReactorHandover&) = delete;

  // What this thread did to the reactor so far is seen by the next thread
  // that acquires: at the end of the constructor and of each reaction.
  void Release() { releases_.fetch_add(1, std::memory_order_release); }

  // What every thread released before is seen by this one.
  void Acquire() const { (void)releases_.load(std::memory_order_acquire); }

  // One more user of the reactor besides gRPC; a release point too.
  void Hold() { users_.fetch_add(1, std::memory_order_acq_rel); }

  // This user is done with the reactor (gRPC in OnDone, or a thread given
  // a Hold). True for the last: it deletes the reactor, having acquired
  // what every other user did.
  [[nodiscard]] bool Drop() {
    Release();
    if (users_.fetch_sub(1, std::memory_order_acq_rel) != 1) return false;
    Acquire();
    return true;
  }

  // A reaction's span: acquires on entry, releases on return. Not for
  // OnDone, which may delete the reactor.
  class Reaction {
   public:
    explicit Reaction(ReactorHandover& handover) : handover_(handover) { handover_.Acquire(); }
    ~Reaction() { handover_.Release(); }
    Reaction(const Reaction&) = delete;
    Reaction& operator=(const Reaction&) = delete;

   private:
    ReactorHandover& handover_;
  };

 private:
  // Only ever added to: a release point every thread joins (TSan keeps
  // the union of the releasing threads' clocks for read-modify-writes).
  std::atomic<uint64_t> releases_{0};
  // gRPC's use, until OnDone, plus each Hold not yet dropped.
  std::atomic<int> users_{1};
};

}  // namespace imgsel::plugin
