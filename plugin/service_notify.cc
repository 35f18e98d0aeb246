#include "plugin/service_notify.h"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace imgsel::plugin {
namespace {

// STATUS= is one line of the message.
std::string StatusLine(absl::string_view status) {
  return absl::StrCat("STATUS=", absl::StrReplaceAll(status, {{"\n", " "}}));
}

}  // namespace

void NotifyReady(absl::string_view status) {
  sd_notify(0, absl::StrCat("READY=1\n", StatusLine(status)).c_str());
}

void NotifyReloading() {
  // MONOTONIC_USEC lets a systemd with Type=notify-reload (253 and later)
  // tell this reload from an earlier one; older ones ignore it.
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const long long usec = static_cast<long long>(now.tv_sec) * 1000000 + now.tv_nsec / 1000;
  sd_notify(0, absl::StrCat("RELOADING=1\nMONOTONIC_USEC=", usec).c_str());
}

void NotifyStopping(absl::string_view status) {
  sd_notify(0, absl::StrCat("STOPPING=1\n", StatusLine(status)).c_str());
}

}  // namespace imgsel::plugin
