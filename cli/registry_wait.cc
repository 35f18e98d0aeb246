#include "cli/registry_wait.h"

#include <unistd.h>

#include <cstdio>
#include <set>
#include <string>

#include "absl/time/clock.h"
#include "cli/text_output.h"

namespace imgsel::cli {

RegistryWaitNotice::RegistryWaitNotice(registry::RegistryClient* client) : client_(client) {
  if (client_ != nullptr && isatty(STDERR_FILENO) == 1) {
    client_->TrackPending(true);
    thread_ = std::thread([this] { Watch(); });
  }
}

RegistryWaitNotice::~RegistryWaitNotice() {
  done_.Notify();
  if (thread_.joinable()) {
    thread_.join();
    client_->TrackPending(false);
  }
}

void RegistryWaitNotice::Watch() {
  // A request is told by what it asks and when it started; said once.
  std::set<std::pair<std::string, absl::Time>> said;
  while (!done_.WaitForNotificationWithTimeout(absl::Milliseconds(200))) {
    const absl::Time now = absl::Now();
    for (const registry::RegistryClient::PendingRequest& r : client_->Pending()) {
      if (now - r.since < kAfter || !said.insert({r.what, r.since}).second) continue;
      // `what` is escaped by the client; Printable keeps the terminal safe anyway.
      std::fprintf(stderr, "imgsel: waiting %s for %s\n",
                   absl::FormatDuration(absl::Trunc(now - r.since, absl::Seconds(1))).c_str(),
                   Printable(r.what).c_str());
    }
  }
}

}  // namespace imgsel::cli
