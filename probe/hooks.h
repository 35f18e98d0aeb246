// Operator hooks: executables in a directory that print NFD local-source lines.
//
// Each regular, executable file in the directory (names starting with "." are
// ignored; at most `max_hooks`, in name order) runs with no arguments, no
// shell, stdin and stderr on /dev/null, in its own process group. All hooks
// run at once; each has `timeout` from its start. Output is lines of
//
//   vendor.example/fpga=true      a feature with a value
//   vendor.example/sriov          a feature with the value "true"
//   # comment                     ignored, as are blank lines
//
// A hook is skipped, with a warning naming it, when it runs past its timeout
// (its whole process group is killed), prints more than `output_cap` bytes
// (killed too), exits non-zero or by a signal, or prints a line that is not a
// feature. A skipped hook contributes nothing. Later hooks win on a name that
// two hooks print. RunHooks is thread-safe (it shares no state) but forks.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace imgsel::probe {

struct HookOptions {
  std::string dir;
  absl::Duration timeout = absl::Seconds(2);
  size_t output_cap = 64 << 10;
  size_t max_hooks = 64;
};

struct HookResults {
  std::map<std::string, std::string> features;  // name -> value, from hooks that passed
  std::vector<std::string> warnings;            // one per skipped hook or file
  std::vector<std::string> ran;                 // names of the hooks that passed
};

HookResults RunHooks(const HookOptions& options);

// One hook's output as features; InvalidArgument naming the first bad line.
absl::StatusOr<std::map<std::string, std::string>> ParseLocalFeatures(absl::string_view text);

// Whether `name` is a valid NFD feature name: [prefix/]name, the name
// [A-Za-z0-9][-A-Za-z0-9_.]* up to 63 characters, the prefix a DNS subdomain.
bool ValidFeatureName(absl::string_view name);

}  // namespace imgsel::probe
