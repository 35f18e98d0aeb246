#include "registry/hosts.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "matcher/string_view_bridge.h"
#include "oci/file_read.h"

namespace imgsel::registry {
namespace {

constexpr size_t kMaxHostsTomlBytes = 1 << 20;

std::string ApiHostOf(absl::string_view registry) {
  return registry == "docker.io" ? "registry-1.docker.io" : std::string(registry);
}

std::string Where(absl::string_view source, const toml::node& n) {
  return absl::StrCat(source, ":", n.source().begin.line, ":", n.source().begin.column);
}

// "https://host[:port][/path]" -> api root; InvalidArgument on another scheme.
absl::StatusOr<std::string> ApiRoot(absl::string_view url, bool override_path,
                                    absl::string_view where) {
  std::string u(absl::StripAsciiWhitespace(url));
  if (!absl::StrContains(u, "://")) u = absl::StrCat("https://", u);
  if (!absl::StartsWith(u, "https://") && !absl::StartsWith(u, "http://")) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": \"", url, "\": only http:// and https:// are supported"));
  }
  size_t host_start = u.find("://") + 3;
  size_t path_start = u.find('/', host_start);
  std::string host = u.substr(
      host_start, path_start == std::string::npos ? std::string::npos : path_start - host_start);
  if (host.empty())
    return absl::InvalidArgumentError(absl::StrCat(where, ": \"", url, "\" has no host"));
  if (absl::AsciiStrToLower(host) == "docker.io") host = "registry-1.docker.io";
  std::string path = path_start == std::string::npos ? "" : u.substr(path_start);
  while (absl::EndsWith(path, "/")) path.pop_back();
  if (!override_path && !absl::EndsWith(path, "/v2")) absl::StrAppend(&path, "/v2");
  return absl::StrCat(u.substr(0, host_start), host, path);
}

// An HTTP field name: one RFC 9110 token.
bool IsHeaderName(absl::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && !absl::StrContains("!#$%&'*+-.^_`|~", c)) return false;
  }
  return true;
}

// An HTTP field value as a request line carries it: no control character but
// the horizontal tab. Each header is sent as one line, so a CR, LF or NUL
// would cut it short or add a header hosts.toml never declared.
bool IsHeaderValue(absl::string_view value) {
  for (char c : value) {
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

std::vector<std::string> StringOrList(const toml::node* n) {
  std::vector<std::string> out;
  if (n == nullptr) return out;
  if (auto s = n->value<std::string>()) {
    out.push_back(*s);
  } else if (const toml::array* arr = n->as_array()) {
    for (const toml::node& item : *arr) {
      if (auto s = item.value<std::string>()) out.push_back(*s);
    }
  }
  return out;
}

// Reads one endpoint's settings (the top level for `server`, or a host table).
absl::Status ReadSettings(const toml::table& t, absl::string_view source, absl::string_view dir,
                          RegistryEndpoint& ep) {
  if (const toml::node* caps = t.get("capabilities")) {
    const toml::array* arr = caps->as_array();
    if (arr == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(source, *caps), ": capabilities must be a list of strings"));
    }
    ep.capabilities = 0;
    for (const toml::node& item : *arr) {
      auto s = item.value<std::string>();
      if (s == "pull") {
        ep.capabilities |= kCapPull;
      } else if (s == "resolve") {
        ep.capabilities |= kCapResolve;
      } else if (s == "push") {
        ep.capabilities |= kCapPush;
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            Where(source, item), ": unknown capability (want \"pull\", \"resolve\" or \"push\")"));
      }
    }
  }
  if (const toml::node* sv = t.get("skip_verify")) {
    auto b = sv->value<bool>();
    if (!b) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(source, *sv), ": skip_verify must be true or false"));
    }
    ep.tls.skip_verify = *b;
  }
  for (std::string ca : StringOrList(t.get("ca"))) {
    if (!ca.empty() && ca.front() != '/') ca = absl::StrCat(dir, "/", ca);
    ep.tls.ca_files.push_back(std::move(ca));
  }
  if (const toml::table* header = t.get_as<toml::table>("header")) {
    for (const auto& [k, v] : *header) {
      const absl::string_view name = ToAbsl(k.str());
      if (!IsHeaderName(name)) {
        return absl::InvalidArgumentError(
            absl::StrCat(Where(source, v), ": header name \"", absl::CHexEscape(name),
                         "\" is not an HTTP field name (letters, digits and !#$%&'*+-.^_`|~)"));
      }
      for (const std::string& value : StringOrList(&v)) {
        if (!IsHeaderValue(value)) {
          return absl::InvalidArgumentError(
              absl::StrCat(Where(source, v), ": header \"", name,
                           "\": the value holds a control character (a line break or NUL "
                           "would end the header and start another)"));
        }
        ep.headers.push_back(absl::StrCat(name, ": ", value));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<RegistryEndpoint>> ParseHostsToml(absl::string_view text,
                                                             absl::string_view source,
                                                             absl::string_view dir,
                                                             absl::string_view registry,
                                                             bool plain_http) {
  toml::table root;
  try {
    root = toml::parse(std::string_view(text.data(), text.size()),
                       std::string_view(source.data(), source.size()));
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ":", e.source().begin.line, ":",
                                                   e.source().begin.column, ": ",
                                                   std::string(e.description())));
  }
  std::vector<RegistryEndpoint> out;
  std::string registry_host = absl::AsciiStrToLower(ApiHostOf(registry));
  if (const toml::table* hosts = root.get_as<toml::table>("host")) {
    // toml++ keeps keys sorted; containerd tries hosts in file order.
    std::vector<std::pair<const toml::key*, const toml::table*>> ordered;
    for (const auto& [k, v] : *hosts) {
      const toml::table* t = v.as_table();
      if (t == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat(Where(source, v), ": host.\"", ToAbsl(k.str()), "\" must be a table"));
      }
      ordered.emplace_back(&k, t);
    }
    std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
      return a.first->source().begin < b.first->source().begin;
    });
    for (const auto& [k, t] : ordered) {
      std::string where = absl::StrCat(source, ":", k->source().begin.line);
      RegistryEndpoint ep;
      bool override_path = t->get("override_path") && t->get("override_path")->value_or(false);
      auto root_url = ApiRoot(ToAbsl(k->str()), override_path, where);
      if (!root_url.ok()) return root_url.status();
      ep.api_root = *root_url;
      if (absl::Status s = ReadSettings(*t, source, dir, ep); !s.ok()) return s;
      out.push_back(std::move(ep));
    }
  }
  RegistryEndpoint server;
  std::string server_url;
  if (const toml::node* s = root.get("server")) {
    auto v = s->value<std::string>();
    if (!v) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(source, *s), ": server must be a string"));
    }
    server_url = *v;
  } else {
    server_url = absl::StrCat(plain_http ? "http://" : "https://", ApiHostOf(registry));
  }
  bool override_path = root.get("override_path") && root.get("override_path")->value_or(false);
  auto root_url = ApiRoot(server_url, override_path, source);
  if (!root_url.ok()) return root_url.status();
  server.api_root = *root_url;
  if (absl::Status s = ReadSettings(root, source, dir, server); !s.ok()) return s;
  out.push_back(std::move(server));
  // A URL listed twice (a [host] table naming the server itself) is one
  // host: asked once, with the first listing's settings and what either
  // listing allows. Asking it again after its 404 could only get another.
  std::vector<RegistryEndpoint> unique;
  for (RegistryEndpoint& ep : out) {
    auto same = std::find_if(unique.begin(), unique.end(),
                             [&](const RegistryEndpoint& u) { return u.api_root == ep.api_root; });
    if (same == unique.end()) {
      unique.push_back(std::move(ep));
    } else {
      same->capabilities |= ep.capabilities;
    }
  }
  out = std::move(unique);
  for (RegistryEndpoint& ep : out) {
    std::string origin = UrlOrigin(ep.api_root);
    std::string host = origin.substr(origin.find("://") + 3);
    if (host != registry_host) ep.ns = std::string(registry);
  }
  return out;
}

bool IsLoopbackRegistry(absl::string_view registry) {
  absl::string_view host = registry;
  if (absl::StartsWith(host, "[")) {
    size_t close = host.find(']');
    if (close == absl::string_view::npos) return false;
    host = host.substr(1, close - 1);
  } else if (size_t colon = host.rfind(':'); colon != absl::string_view::npos) {
    host = host.substr(0, colon);
  }
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;
  // An address, never a name: "127.evil.com" is a name anyone can point anywhere.
  std::string literal(host);
  in_addr v4;
  if (inet_pton(AF_INET, literal.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  return inet_pton(AF_INET6, literal.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

absl::StatusOr<std::vector<RegistryEndpoint>> EndpointsFor(const std::string& hosts_dir,
                                                           absl::string_view registry,
                                                           bool plain_http) {
  // As containerd and Docker do, a registry on the loopback interface is
  // spoken to over plain HTTP unless hosts.toml says otherwise.
  plain_http = plain_http || IsLoopbackRegistry(registry);
  if (!hosts_dir.empty()) {
    std::vector<std::string> names = {absl::StrReplaceAll(registry, {{":", "_"}}) + "_",
                                      std::string(registry), "_default"};
    if (!absl::StrContains(registry, ':')) names.erase(names.begin());
    for (const std::string& name : names) {
      std::string dir = absl::StrCat(hosts_dir, "/", name);
      std::string file = absl::StrCat(dir, "/hosts.toml");
      std::error_code ec;
      const auto status = std::filesystem::status(file, ec);
      if (!std::filesystem::exists(status)) continue;
      if (!std::filesystem::is_regular_file(status)) {
        return absl::InvalidArgumentError(absl::StrCat(file, ": not a regular file"));
      }
      auto text = ReadFileBounded(file, kMaxHostsTomlBytes);
      if (!text.ok()) return text.status();
      return ParseHostsToml(*text, file, dir, registry, plain_http);
    }
  }
  RegistryEndpoint ep;
  ep.api_root = absl::StrCat(plain_http ? "http://" : "https://", ApiHostOf(registry), "/v2");
  return std::vector<RegistryEndpoint>{ep};
}

}  // namespace imgsel::registry
