// Which settings a reload cannot apply. imgseld applies a new imgsel.toml on
// SIGHUP to everything it reads per call (preferences, handlers, [features],
// [compat] enabled / on_error, select_timeout, drain_timeout,
// content_handover); the rest is set up once at start: the sockets and
// namespace, the metrics listener, the registry client and its disk cache
// ([registry], [compat] cache_dir, cache_max_bytes, max_layer_bytes,
// referrers_ttl) and the host probe ([host]). The daemon names every one of
// those that changed, so none is ignored in silence.
//
// Pure; no I/O.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace imgsel {

// "[section] key" for each setting that differs between `running` and
// `next` and takes effect only on restart, in file order.
std::vector<std::string> SettingsNeedingRestart(const Config& running, const Config& next);

}  // namespace imgsel
