// On a terminal, a registry wait longer than about a second says on stderr
// what it is waiting for ("imgsel: waiting 1s for GET https://r.io/v2/...")
// instead of leaving the person at the prompt guessing: a silent registry
// and a slow one look the same otherwise. Once per request; nothing when
// stderr is not a terminal (scripts, CI logs).
#pragma once

#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "registry/client.h"

namespace imgsel::cli {

class RegistryWaitNotice {
 public:
  static constexpr absl::Duration kAfter = absl::Seconds(1);

  // Watches `client` (not owned; outlives this) until destroyed; on a
  // terminal, turns on the client's list of requests under way meanwhile.
  explicit RegistryWaitNotice(registry::RegistryClient* client);
  ~RegistryWaitNotice();
  RegistryWaitNotice(const RegistryWaitNotice&) = delete;
  RegistryWaitNotice& operator=(const RegistryWaitNotice&) = delete;

 private:
  void Watch();
  registry::RegistryClient* client_;
  absl::Notification done_;
  std::thread thread_;
};

}  // namespace imgsel::cli
