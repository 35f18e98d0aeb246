#include "plugin/call_threads.h"

#include <utility>

namespace imgsel::plugin {

CallThreads::~CallThreads() {
  std::map<uint64_t, std::thread> all;
  {
    absl::MutexLock lock(&mu_);
    all.swap(threads_);
    finished_.clear();
  }
  for (auto& [id, t] : all) t.join();
}

std::vector<std::thread> CallThreads::TakeFinished() {
  std::vector<std::thread> done;
  for (uint64_t id : finished_) {
    auto it = threads_.find(id);
    if (it == threads_.end()) continue;
    done.push_back(std::move(it->second));
    threads_.erase(it);
  }
  finished_.clear();
  return done;
}

void CallThreads::Run(std::function<void()> work) {
  std::vector<std::thread> done;
  {
    absl::MutexLock lock(&mu_);
    done = TakeFinished();
    const uint64_t id = next_id_++;
    // Started under the lock so that its "finished" cannot come before it
    // is in the map.
    threads_.emplace(id, std::thread([this, id, work = std::move(work)] {
                       work();
                       absl::MutexLock lock(&mu_);
                       finished_.push_back(id);
                     }));
  }
  for (std::thread& t : done) t.join();  // each has returned from its work
}

size_t CallThreads::size() const {
  absl::MutexLock lock(&mu_);
  return threads_.size();
}

}  // namespace imgsel::plugin
