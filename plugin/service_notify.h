// What imgseld tells its service manager (systemd, `Type=notify`), through
// sd_notify(3). When NOTIFY_SOCKET is unset (imgseld started by hand, in a
// test, by another supervisor) every call does nothing.
//
//   when                                               message
//   the probe, the config, both sockets and metrics up READY=1, STATUS=serving ...
//   SIGHUP received                                    RELOADING=1, MONOTONIC_USEC=now
//   the reload applied or refused                      READY=1, STATUS=what happened
//   SIGTERM / SIGINT: draining begins                  STOPPING=1, STATUS=draining ...
//
// systemd holds a start (and so `systemctl start`, `restart`, and the
// DaemonSet's installer waiting on it) until READY=1; an imgseld that exits
// before it fails the start. NOTIFY_SOCKET stays in the environment so that
// every later message finds it; probe hooks inherit it, and systemd takes
// messages from the main process only (NotifyAccess=main, the default).
//
// Thread-safe; errors are ignored (a lost status line must not stop a
// daemon that serves).
#pragma once

#include "absl/strings/string_view.h"

namespace imgsel::plugin {

void NotifyReady(absl::string_view status);
void NotifyReloading();
void NotifyStopping(absl::string_view status);

}  // namespace imgsel::plugin
