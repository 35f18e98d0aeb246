// Debian's docker-registry (distribution 2.8: no referrers API) run for a
// test: 127.0.0.1 on a free port, a temp root and config, stopped by PID.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

namespace imgsel::registry::testing {

class RealRegistry {
 public:
  // nullptr with `why` set when the binary is missing or does not come up in 15 s.
  static std::unique_ptr<RealRegistry> Start(std::string* why);
  ~RealRegistry();

  const std::string& host() const { return host_; }  // "127.0.0.1:<port>"
  const std::string& root() const { return root_; }

 private:
  RealRegistry() = default;
  pid_t pid_ = -1;
  std::string host_;
  std::string root_;
};

}  // namespace imgsel::registry::testing
