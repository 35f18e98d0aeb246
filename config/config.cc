#include "config/config.h"

#include <filesystem>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "config/metrics_address.h"
#include "matcher/suggest.h"
#include "oci/file_read.h"
#include "toml++/toml.h"

namespace imgsel {
namespace {

constexpr size_t kMaxConfigBytes = 1 << 20;
constexpr size_t kMaxPreferRules = 1024;
// sockaddr_un's sun_path holds 108 bytes, the terminating NUL included.
constexpr size_t kMaxSocketPathBytes = 107;

// "imgsel.toml:12:3" for a node, or just the file when toml++ has no position.
std::string Where(absl::string_view source, const toml::node& node) {
  const auto& begin = node.source().begin;
  if (begin.line == 0) return std::string(source);
  return absl::StrCat(source, ":", begin.line, ":", begin.column);
}

absl::Status Error(absl::string_view source, const toml::node& node, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(Where(source, node), ": ", what));
}

// Rejects keys of `table` not in `known`, suggesting the closest known key.
absl::Status CheckKeys(absl::string_view source, const toml::table& table,
                       std::initializer_list<absl::string_view> known, absl::string_view section) {
  for (const auto& [key, node] : table) {
    absl::string_view k(key.str().data(), key.str().size());
    bool ok = false;
    for (auto want : known) ok = ok || want == k;
    if (ok) continue;
    std::string what = UnknownKeyMessage(k, known, section);
    const auto& begin = key.source().begin;
    std::string where =
        begin.line ? absl::StrCat(source, ":", begin.line, ":", begin.column) : Where(source, node);
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> GetString(absl::string_view source, const toml::node& node,
                                      absl::string_view name) {
  if (const auto* s = node.as_string()) return s->get();
  return Error(source, node, absl::StrCat(name, ": expected a string"));
}

absl::StatusOr<std::vector<std::string>> GetStringArray(absl::string_view source,
                                                        const toml::node& node,
                                                        absl::string_view name) {
  const auto* arr = node.as_array();
  if (!arr) return Error(source, node, absl::StrCat(name, ": expected an array of strings"));
  std::vector<std::string> out;
  for (const auto& item : *arr) {
    auto s = GetString(source, item, absl::StrCat(name, "[]"));
    if (!s.ok()) return s.status();
    out.push_back(*std::move(s));
  }
  return out;
}

// A duration between `min` and `max`: every wait imgsel makes is bounded.
absl::StatusOr<absl::Duration> GetDuration(absl::string_view source, const toml::node& node,
                                           absl::string_view name, absl::Duration min,
                                           absl::Duration max) {
  auto s = GetString(source, node, name);
  if (!s.ok()) return s.status();
  absl::Duration d;
  if (!absl::ParseDuration(*s, &d)) {
    return Error(source, node,
                 absl::StrCat(name, ": \"", *s, "\" is not a duration (e.g. \"500ms\", \"2s\")"));
  }
  if (d < min || d > max) {
    return Error(source, node,
                 absl::StrCat(name, ": \"", *s, "\" is out of range (", absl::FormatDuration(min),
                              "..", absl::FormatDuration(max), ")"));
  }
  return d;
}

// A Unix socket path: absolute, and short enough for sockaddr_un.
absl::StatusOr<std::string> GetSocketPath(absl::string_view source, const toml::node& node,
                                          absl::string_view name) {
  auto s = GetString(source, node, name);
  if (!s.ok()) return s.status();
  if (s->empty() || (*s)[0] != '/') {
    return Error(source, node, absl::StrCat(name, ": \"", *s, "\" is not an absolute path"));
  }
  if (s->size() > kMaxSocketPathBytes) {
    return Error(
        source, node,
        absl::StrCat(name, ": ", s->size(), " bytes, longer than a Unix socket path can be (",
                     kMaxSocketPathBytes, ")"));
  }
  return s;
}

absl::Status ParsePrefer(absl::string_view source, const toml::node& node,
                         absl::string_view section, std::vector<PreferRule>& out) {
  const auto* arr = node.as_array();
  if (!arr) {
    return Error(source, node,
                 absl::StrCat(section, ": expected an array of tables ([[", section, "]])"));
  }
  if (arr->size() > kMaxPreferRules) {
    return Error(source, node, absl::StrCat(section, ": more than ", kMaxPreferRules, " rules"));
  }
  for (const auto& item : *arr) {
    const auto* t = item.as_table();
    if (!t) return Error(source, item, absl::StrCat(section, ": expected a table"));
    if (auto st = CheckKeys(source, *t, {"annotation", "value", "value_regex", "weight"},
                            absl::StrCat("[[", section, "]]"));
        !st.ok()) {
      return st;
    }
    PreferRule rule;
    rule.origin = Where(source, item);
    if (const auto* a = t->get("annotation")) {
      auto s = GetString(source, *a, "annotation");
      if (!s.ok()) return s.status();
      if (s->empty()) return Error(source, *a, "annotation: must not be empty");
      rule.annotation = *s;
    } else {
      return Error(source, item, absl::StrCat("[[", section, "]]: missing \"annotation\""));
    }
    const auto* value = t->get("value");
    const auto* regex = t->get("value_regex");
    if (value && regex) {
      return Error(source, *regex, "set either \"value\" or \"value_regex\", not both");
    }
    if (value) {
      auto s = GetString(source, *value, "value");
      if (!s.ok()) return s.status();
      rule.value = *s;
    }
    if (regex) {
      auto s = GetString(source, *regex, "value_regex");
      if (!s.ok()) return s.status();
      auto re = std::make_shared<RE2>(*s, RE2::Quiet);
      if (!re->ok()) {
        return Error(source, *regex, absl::StrCat("value_regex: ", re->error()));
      }
      rule.value_regex = std::move(re);
    }
    const auto* weight = t->get("weight");
    if (!weight) return Error(source, item, absl::StrCat("[[", section, "]]: missing \"weight\""));
    const auto* w = weight->as_integer();
    if (!w) return Error(source, *weight, "weight: expected an integer");
    // Bounded so that no sum of weights can overflow a score (matcher/policy.h).
    if (w->get() < -kMaxPreferenceWeight || w->get() > kMaxPreferenceWeight) {
      return Error(source, *weight,
                   absl::StrCat("weight: ", w->get(), " is out of range (", -kMaxPreferenceWeight,
                                "..", kMaxPreferenceWeight, ")"));
    }
    rule.weight = w->get();
    out.push_back(std::move(rule));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> GetInteger(absl::string_view source, const toml::node& node,
                                   absl::string_view name, int64_t min, int64_t max) {
  const auto* v = node.as_integer();
  if (!v) return Error(source, node, absl::StrCat(name, ": expected an integer"));
  if (v->get() < min || v->get() > max) {
    return Error(source, node,
                 absl::StrCat(name, ": ", v->get(), " is out of range (", min, "..", max, ")"));
  }
  return v->get();
}

// Reads [section] of `root` (when present) with one handler per key.
template <typename Handler>
absl::Status ParseSection(absl::string_view source, const toml::table& root,
                          absl::string_view section, std::initializer_list<absl::string_view> keys,
                          Handler handle) {
  const auto* n = root.get(std::string_view(section.data(), section.size()));
  if (!n) return absl::OkStatus();
  const auto* t = n->as_table();
  if (!t) return Error(source, *n, absl::StrCat(section, ": expected a table"));
  if (auto st = CheckKeys(source, *t, keys, absl::StrCat("[", section, "]")); !st.ok()) return st;
  for (const auto& [key, node] : *t) {
    if (auto st = handle(std::string(key.str()), node); !st.ok()) return st;
  }
  return absl::OkStatus();
}

// [compat.groups]: how Proposal F key/value groups are read (GroupPolicy).
absl::Status ParseGroups(absl::string_view source, const toml::table& t, GroupPolicy& g) {
  if (auto st =
          CheckKeys(source, t, {"required", "optional_key_weight", "unknown_key", "nfd_groups"},
                    "[compat.groups]");
      !st.ok()) {
    return st;
  }
  for (const auto& [k, node] : t) {
    const std::string key(k.str());
    if (key == "required" || key == "nfd_groups") {
      auto list = GetStringArray(source, node, key);
      if (!list.ok()) return list.status();
      for (const std::string& group : *list) {
        if (group.empty()) return Error(source, node, absl::StrCat(key, ": a group name is empty"));
      }
      (key == "required" ? g.required : g.nfd_groups) = *std::move(list);
    } else if (key == "optional_key_weight") {
      auto v = GetInteger(source, node, key, -kMaxPreferenceWeight, kMaxPreferenceWeight);
      if (!v.ok()) return v.status();
      g.optional_key_weight = *v;
    } else if (key == "unknown_key") {
      auto s = GetString(source, node, key);
      if (!s.ok()) return s.status();
      if (*s != "fail" && *s != "ignore") {
        return Error(source, node,
                     absl::StrCat("unknown_key: \"", *s, "\" (want \"fail\" or \"ignore\")"));
      }
      g.ignore_unknown_keys = *s == "ignore";
    }
  }
  return absl::OkStatus();
}

absl::Status ParseCompat(absl::string_view source, const toml::table& root, CompatConfig& c) {
  return ParseSection(
      source, root, "compat",
      {"enabled", "cache_dir", "cache_max_bytes", "referrers_ttl", "on_error", "max_layer_bytes",
       "groups", "base_images"},
      [&](const std::string& key, const toml::node& node) -> absl::Status {
        if (key == "groups") {
          const auto* t = node.as_table();
          if (!t) return Error(source, node, "groups: expected a table");
          return ParseGroups(source, *t, c.groups);
        }
        if (key == "enabled" || key == "base_images") {
          const auto* b = node.as_boolean();
          if (!b) return Error(source, node, absl::StrCat(key, ": expected true or false"));
          (key == "enabled" ? c.enabled : c.base_images) = b->get();
        } else if (key == "cache_dir") {
          auto s = GetString(source, node, key);
          if (!s.ok()) return s.status();
          c.cache_dir = *s;
        } else if (key == "cache_max_bytes") {
          auto v = GetInteger(source, node, key, 1 << 20, int64_t{1} << 40);
          if (!v.ok()) return v.status();
          c.cache_max_bytes = *v;
        } else if (key == "referrers_ttl") {
          auto d = GetDuration(source, node, key, absl::ZeroDuration(), absl::Hours(24 * 30));
          if (!d.ok()) return d.status();
          c.referrers_ttl = *d;
        } else if (key == "on_error") {
          auto s = GetString(source, node, key);
          if (!s.ok()) return s.status();
          if (*s != "fallback" && *s != "ignore") {
            return Error(source, node,
                         absl::StrCat("on_error: \"", *s, "\" (want \"fallback\" or \"ignore\")"));
          }
          c.fallback_on_error = *s == "fallback";
        } else if (key == "max_layer_bytes") {
          auto v = GetInteger(source, node, key, 1024, 64 << 20);
          if (!v.ok()) return v.status();
          c.max_layer_bytes = *v;
        }
        return absl::OkStatus();
      });
}

absl::Status ParseRegistry(absl::string_view source, const toml::table& root, RegistryConfig& r) {
  return ParseSection(source, root, "registry",
                      {"config_path", "docker_config", "connect_timeout", "request_timeout",
                       "max_concurrent_per_registry"},
                      [&](const std::string& key, const toml::node& node) -> absl::Status {
                        if (key == "config_path" || key == "docker_config") {
                          auto s = GetString(source, node, key);
                          if (!s.ok()) return s.status();
                          (key == "config_path" ? r.config_path : r.docker_config) = *s;
                        } else if (key == "connect_timeout" || key == "request_timeout") {
                          auto d = GetDuration(
                              source, node, key, absl::Milliseconds(1),
                              key == "connect_timeout" ? absl::Minutes(5) : absl::Hours(1));
                          if (!d.ok()) return d.status();
                          (key == "connect_timeout" ? r.connect_timeout : r.request_timeout) = *d;
                        } else if (key == "max_concurrent_per_registry") {
                          auto v = GetInteger(source, node, key, 1, 256);
                          if (!v.ok()) return v.status();
                          r.max_concurrent_per_registry = static_cast<int>(*v);
                        }
                        return absl::OkStatus();
                      });
}

absl::Status ParseServer(absl::string_view source, const toml::table& root, ServerConfig& s) {
  absl::Status st = ParseSection(
      source, root, "server",
      {"socket", "cri_socket", "containerd_socket", "namespace", "select_timeout", "drain_timeout",
       "metrics", "metrics_allow_remote", "nothing_fits", "content_handover"},
      [&](const std::string& key, const toml::node& node) -> absl::Status {
        if (key == "content_handover") {
          const auto* b = node.as_boolean();
          if (!b) return Error(source, node, "content_handover: expected true or false");
          s.content_handover = b->get();
          return absl::OkStatus();
        }
        if (key == "select_timeout") {
          // A pull waits this long before containerd is asked: bounded
          // well below any client's patience.
          auto d = GetDuration(source, node, key, absl::Milliseconds(1), absl::Seconds(60));
          if (!d.ok()) return d.status();
          s.select_timeout = *d;
          return absl::OkStatus();
        }
        if (key == "drain_timeout") {
          auto d = GetDuration(source, node, key, absl::ZeroDuration(), absl::Minutes(10));
          if (!d.ok()) return d.status();
          s.drain_timeout = *d;
          return absl::OkStatus();
        }
        if (key == "socket" || key == "cri_socket" || key == "containerd_socket") {
          auto path = GetSocketPath(source, node, key);
          if (!path.ok()) return path.status();
          (key == "socket"       ? s.socket
           : key == "cri_socket" ? s.cri_socket
                                 : s.containerd_socket) = *path;
          return absl::OkStatus();
        }
        if (key == "metrics_allow_remote") {
          const auto* b = node.as_boolean();
          if (!b) return Error(source, node, "metrics_allow_remote: expected true or false");
          s.metrics_allow_remote = b->get();
          return absl::OkStatus();
        }
        auto v = GetString(source, node, key);
        if (!v.ok()) return v.status();
        if (key == "nothing_fits") {
          if (*v != "first-match" && *v != "fail") {
            return Error(source, node,
                         absl::StrCat("nothing_fits: \"", v->substr(0, 64),
                                      "\" is neither \"first-match\" nor \"fail\""));
          }
          s.fail_when_nothing_fits = *v == "fail";
          return absl::OkStatus();
        }
        if (key == "namespace") s.ns = *v;
        if (key == "metrics") {
          if (!v->empty()) {
            // Whether it may be remote is checked below, once
            // metrics_allow_remote (before or after it) has been read.
            auto a = ParseMetricsAddress(*v, /*allow_remote=*/true);
            if (!a.ok()) return Error(source, node, a.status().message());
            if (a->port == 0) {
              return Error(source, node,
                           absl::StrCat("metrics address \"", *v,
                                        "\": port 0 would pick one at random; give the port "
                                        "Prometheus scrapes"));
            }
          }
          s.metrics = *v;
        }
        return absl::OkStatus();
      });
  if (!st.ok()) return st;
  const auto* section = root.get("server");
  const toml::table* t = section ? section->as_table() : nullptr;
  if (!s.metrics.empty()) {
    auto a = ParseMetricsAddress(s.metrics, s.metrics_allow_remote);
    if (!a.ok()) {
      const toml::node* at = t ? t->get("metrics") : nullptr;
      if (at == nullptr) return absl::InvalidArgumentError(a.status().message());
      return Error(source, *at, a.status().message());
    }
  }
  // Three different sockets: the same path twice would make imgseld serve
  // both APIs on one socket, or forward CRI calls to itself without end.
  auto same = [](const std::string& a, const std::string& b) {
    return std::filesystem::path(a).lexically_normal() ==
           std::filesystem::path(b).lexically_normal();
  };
  struct Named {
    const char* key;
    const std::string* path;
  };
  const Named sockets[] = {{"socket", &s.socket},
                           {"cri_socket", &s.cri_socket},
                           {"containerd_socket", &s.containerd_socket}};
  for (size_t i = 0; i < 3; ++i) {
    for (size_t j = i + 1; j < 3; ++j) {
      if (!same(*sockets[i].path, *sockets[j].path)) continue;
      const toml::node* at = t ? t->get(sockets[j].key) : nullptr;
      if (at == nullptr && t != nullptr) at = t->get(sockets[i].key);
      const std::string what =
          absl::StrCat(sockets[j].key, ": \"", *sockets[j].path, "\" is also ", sockets[i].key,
                       "; each socket needs a path of its own");
      if (at == nullptr) return absl::InvalidArgumentError(absl::StrCat(source, ": ", what));
      return Error(source, *at, what);
    }
  }
  return absl::OkStatus();
}

absl::Status ParseTable(absl::string_view source, const toml::table& root, Config& config) {
  if (auto st = CheckKeys(
          source, root,
          {"version", "features", "host", "prefer", "handlers", "compat", "registry", "server"},
          "");
      !st.ok()) {
    return st;
  }
  const auto* version = root.get("version");
  if (!version) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": missing \"version = 1\""));
  }
  if (const auto* v = version->as_integer(); !v || v->get() != 1) {
    return Error(source, *version, "version: only version = 1 is understood");
  }
  if (const auto* n = root.get("features")) {
    const auto* t = n->as_table();
    if (!t) return Error(source, *n, "features: expected a table");
    if (auto st = CheckKeys(source, *t, {"unknown"}, "[features]"); !st.ok()) return st;
    if (const auto* u = t->get("unknown")) {
      auto s = GetString(source, *u, "unknown");
      if (!s.ok()) return s.status();
      if (*s == "reject") {
        config.policy.unknown_features = UnknownFeatures::kReject;
      } else if (*s == "ignore") {
        config.policy.unknown_features = UnknownFeatures::kIgnore;
      } else {
        return Error(source, *u,
                     absl::StrCat("unknown: \"", *s, "\" (want \"reject\" or \"ignore\")"));
      }
    }
  }
  if (const auto* n = root.get("host")) {
    const auto* t = n->as_table();
    if (!t) return Error(source, *n, "host: expected a table");
    if (auto st = CheckKeys(source, *t, {"features", "attributes", "hooks_dir", "hook_timeout"},
                            "[host]");
        !st.ok()) {
      return st;
    }
    if (const auto* f = t->get("features")) {
      auto v = GetStringArray(source, *f, "features");
      if (!v.ok()) return v.status();
      config.host.features = *std::move(v);
    }
    if (const auto* a = t->get("attributes")) {
      const auto* at = a->as_table();
      if (!at) return Error(source, *a, "attributes: expected a table of strings");
      for (const auto& [k, v] : *at) {
        auto s = GetString(source, v, absl::StrCat("attributes.", std::string(k.str())));
        if (!s.ok()) return s.status();
        config.host.attributes[std::string(k.str())] = *s;
      }
    }
    if (const auto* h = t->get("hooks_dir")) {
      auto s = GetString(source, *h, "hooks_dir");
      if (!s.ok()) return s.status();
      config.host.hooks_dir = *s;
    }
    if (const auto* h = t->get("hook_timeout")) {
      auto d = GetDuration(source, *h, "hook_timeout", absl::Milliseconds(1), absl::Minutes(5));
      if (!d.ok()) return d.status();
      config.host.hook_timeout = *d;
    }
  }
  if (auto st = ParseCompat(source, root, config.compat); !st.ok()) return st;
  if (auto st = ParseRegistry(source, root, config.registry); !st.ok()) return st;
  if (auto st = ParseServer(source, root, config.server); !st.ok()) return st;
  if (const auto* n = root.get("prefer")) {
    if (auto st = ParsePrefer(source, *n, "prefer", config.policy.prefer); !st.ok()) return st;
  }
  if (const auto* n = root.get("handlers")) {
    const auto* t = n->as_table();
    if (!t) return Error(source, *n, "handlers: expected a table of [handlers.<name>]");
    for (const auto& [name, node] : *t) {
      std::string section = absl::StrCat("handlers.", std::string(name.str()));
      const auto* ht = node.as_table();
      if (!ht) return Error(source, node, absl::StrCat(section, ": expected a table"));
      if (auto st = CheckKeys(source, *ht, {"mode", "prefer"}, absl::StrCat("[", section, "]"));
          !st.ok()) {
        return st;
      }
      HandlerConfig handler;
      if (const auto* m = ht->get("mode")) {
        auto s = GetString(source, *m, "mode");
        if (!s.ok()) return s.status();
        if (*s != "add" && *s != "replace") {
          return Error(source, *m,
                       absl::StrCat("mode: \"", *s, "\" (want \"add\" or \"replace\")"));
        }
        handler.replace = *s == "replace";
      }
      if (const auto* p = ht->get("prefer")) {
        if (auto st = ParsePrefer(source, *p, absl::StrCat(section, ".prefer"), handler.prefer);
            !st.ok()) {
          return st;
        }
      }
      config.handlers[std::string(name.str())] = std::move(handler);
    }
  }
  return absl::OkStatus();
}

}  // namespace

Policy Config::PolicyFor(absl::string_view runtime_handler) const {
  Policy out = policy;
  if (runtime_handler.empty()) return out;
  auto it = handlers.find(std::string(runtime_handler));
  if (it == handlers.end()) return out;
  if (it->second.replace) out.prefer.clear();
  out.prefer.insert(out.prefer.end(), it->second.prefer.begin(), it->second.prefer.end());
  return out;
}

Config DefaultConfig() {
  Config c;
  c.source = "(defaults)";
  return c;
}

absl::StatusOr<Config> ParseConfig(absl::string_view text, absl::string_view source) {
  if (text.size() > kMaxConfigBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": larger than ", kMaxConfigBytes, " bytes"));
  }
  Config config = DefaultConfig();
  config.source = std::string(source);
  // toml++ reports errors by throwing; nothing escapes this function.
  try {
    toml::table root = toml::parse(std::string_view(text.data(), text.size()),
                                   std::string_view(source.data(), source.size()));
    if (auto st = ParseTable(source, root, config); !st.ok()) return st;
  } catch (const toml::parse_error& e) {
    const auto& begin = e.source().begin;
    return absl::InvalidArgumentError(absl::StrCat(source, ":", begin.line, ":", begin.column, ": ",
                                                   std::string(e.description())));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", e.what()));
  }
  return config;
}

absl::StatusOr<Config> LoadConfig(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileBounded(path, kMaxConfigBytes);
  if (!text.ok()) return text.status();
  return ParseConfig(*text, path);
}

}  // namespace imgsel
