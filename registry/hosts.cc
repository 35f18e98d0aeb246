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
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
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

// A string or a list of strings (containerd takes both for `ca` and header
// values); anything else is refused at its place, never dropped.
absl::StatusOr<std::vector<std::string>> StringOrList(const toml::node& n, absl::string_view source,
                                                      absl::string_view what) {
  std::vector<std::string> out;
  if (auto s = n.value<std::string>()) {
    out.push_back(*s);
    return out;
  }
  const toml::array* arr = n.as_array();
  if (arr == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(source, n), ": ", what, " must be a string or a list of strings"));
  }
  for (const toml::node& item : *arr) {
    auto s = item.value<std::string>();
    if (!s) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(source, item), ": ", what, " lists something that is not a string"));
    }
    out.push_back(*s);
  }
  return out;
}

std::string InDir(absl::string_view dir, std::string path) {
  if (!path.empty() && path.front() != '/') return absl::StrCat(dir, "/", path);
  return path;
}

// The longest dial_timeout a host may have: as [registry] connect_timeout.
constexpr absl::Duration kMaxDialTimeout = absl::Minutes(5);

// `client`: "cert.pem" (the key in the same file), ["cert.pem"], or
// [["cert.pem", "key.pem"]], as containerd reads it. libcurl presents one
// certificate, so a list of several is refused rather than cut short.
absl::Status ReadClientCertificate(const toml::node& n, absl::string_view source,
                                   absl::string_view dir, TlsOptions& tls) {
  const std::string where = Where(source, n);
  const toml::node* one = &n;
  if (const toml::array* list = n.as_array()) {
    if (list->size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": client lists ", list->size(),
          " certificates; imgsel presents one (list one certificate, or one [cert, key] pair)"));
    }
    one = list->get(0);
  }
  if (auto cert = one->value<std::string>()) {
    tls.client_cert = InDir(dir, *cert);
    return absl::OkStatus();
  }
  const toml::array* pair = one->as_array();
  if (pair != nullptr && pair->size() == 2) {
    auto cert = pair->get(0)->value<std::string>();
    auto key = pair->get(1)->value<std::string>();
    if (cert && key) {
      tls.client_cert = InDir(dir, *cert);
      tls.client_key = InDir(dir, *key);
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      where, ": client must be a path, or a list holding a path or a [cert, key] pair of paths"));
}

// Keys containerd reads at the top level of hosts.toml and in a [host."…"]
// table; `server` only at the top. containerd passes over any other key;
// imgsel refuses it (file:line), so a misspelt skip_verify or ca is seen
// (imgseld --check names it) instead of a setting quietly not applied.
constexpr absl::string_view kHostKeys[] = {
    "capabilities", "ca", "client", "skip_verify", "header", "dial_timeout", "override_path"};

absl::Status CheckKeys(const toml::table& t, absl::string_view source, bool top_level) {
  for (const auto& [k, v] : t) {
    const absl::string_view key = ToAbsl(k.str());
    if (top_level && (key == "server" || key == "host")) continue;
    if (std::find(std::begin(kHostKeys), std::end(kHostKeys), key) != std::end(kHostKeys)) {
      continue;
    }
    return absl::InvalidArgumentError(
        absl::StrCat(Where(source, v), ": unknown key \"", absl::CHexEscape(key),
                     "\" (hosts.toml keys: server, capabilities, ca, client, skip_verify, header, "
                     "dial_timeout, override_path)"));
  }
  return absl::OkStatus();
}

// Reads one endpoint's settings (the top level for `server`, or a host table).
absl::Status ReadSettings(const toml::table& t, absl::string_view source, absl::string_view dir,
                          bool top_level, RegistryEndpoint& ep) {
  if (absl::Status s = CheckKeys(t, source, top_level); !s.ok()) return s;
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
  if (const toml::node* ca = t.get("ca")) {
    auto files = StringOrList(*ca, source, "ca");
    if (!files.ok()) return files.status();
    for (std::string& file : *files) ep.tls.ca_files.push_back(InDir(dir, std::move(file)));
  }
  if (const toml::node* client = t.get("client")) {
    if (absl::Status s = ReadClientCertificate(*client, source, dir, ep.tls); !s.ok()) return s;
  }
  if (const toml::node* dial = t.get("dial_timeout")) {
    // Go's time.ParseDuration syntax ("3s", "500ms", "1m30s"), as containerd reads it.
    auto text = dial->value<std::string>();
    absl::Duration d;
    if (!text || !absl::ParseDuration(*text, &d) || d <= absl::ZeroDuration() ||
        d > kMaxDialTimeout) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(source, *dial),
                       ": dial_timeout must be a duration from 1ms to 5m, such as \"3s\""));
    }
    ep.dial_timeout = d;
  }
  if (const toml::node* headers = t.get("header")) {
    const toml::table* header = headers->as_table();
    if (header == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(source, *headers), ": header must be a table of names and values"));
    }
    for (const auto& [k, v] : *header) {
      const absl::string_view name = ToAbsl(k.str());
      if (!IsHeaderName(name)) {
        return absl::InvalidArgumentError(
            absl::StrCat(Where(source, v), ": header name \"", absl::CHexEscape(name),
                         "\" is not an HTTP field name (letters, digits and !#$%&'*+-.^_`|~)"));
      }
      auto values = StringOrList(v, source, absl::StrCat("header \"", name, "\""));
      if (!values.ok()) return values.status();
      for (const std::string& value : *values) {
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
      if (absl::Status s = ReadSettings(*t, source, dir, /*top_level=*/false, ep); !s.ok()) {
        return s;
      }
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
  if (absl::Status s = ReadSettings(root, source, dir, /*top_level=*/true, server); !s.ok()) {
    return s;
  }
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

namespace {

// The registry itself as the one endpoint: https, or http for plain_http.
RegistryEndpoint DefaultServer(absl::string_view registry, bool plain_http) {
  RegistryEndpoint ep;
  ep.api_root = absl::StrCat(plain_http ? "http://" : "https://", ApiHostOf(registry), "/v2");
  return ep;
}

// A host directory without hosts.toml, laid out as Docker's certs.d:
// every *.crt is a CA; a *.cert is a client certificate, its key the *.key
// of the same name (or in the .cert itself). containerd reads it so.
absl::StatusOr<std::vector<RegistryEndpoint>> FromCertFiles(const std::string& dir,
                                                            absl::string_view registry,
                                                            bool plain_http) {
  RegistryEndpoint ep = DefaultServer(registry, plain_http);
  std::vector<std::string> names;
  std::error_code ec;
  int seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    // A certs.d host directory holds a handful of files.
    if (++seen > 256) {
      return absl::InvalidArgumentError(absl::StrCat(dir, ": more than 256 entries"));
    }
    if (entry.is_regular_file(ec)) names.push_back(entry.path().filename().string());
  }
  if (ec) return absl::InvalidArgumentError(absl::StrCat(dir, ": ", ec.message()));
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    const std::string path = absl::StrCat(dir, "/", name);
    if (absl::EndsWith(name, ".crt")) {
      ep.tls.ca_files.push_back(path);
    } else if (absl::EndsWith(name, ".cert")) {
      if (!ep.tls.client_cert.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(dir, ": more than one client certificate (*.cert); imgsel presents one"));
      }
      ep.tls.client_cert = path;
      std::string key = absl::StrCat(path.substr(0, path.size() - 5), ".key");
      if (std::filesystem::exists(key, ec)) ep.tls.client_key = key;
    }
  }
  return std::vector<RegistryEndpoint>{ep};
}

}  // namespace

std::vector<std::string> HostsDirRoots(absl::string_view config_path) {
  return absl::StrSplit(config_path, ':', absl::SkipEmpty());
}

absl::StatusOr<std::vector<RegistryEndpoint>> EndpointsFor(const std::string& hosts_dir,
                                                           absl::string_view registry,
                                                           bool plain_http) {
  // As containerd and Docker do, a registry on the loopback interface is
  // spoken to over plain HTTP unless hosts.toml says otherwise.
  plain_http = plain_http || IsLoopbackRegistry(registry);
  std::vector<std::string> names = {absl::StrReplaceAll(registry, {{":", "_"}}) + "_",
                                    std::string(registry), "_default"};
  if (!absl::StrContains(registry, ':')) names.erase(names.begin());
  // containerd's rule: the roots in order, and in each the names in order;
  // the first directory that exists is the registry's, whatever it holds
  // (a _default under an earlier root wins over the registry's own
  // directory under a later one).
  for (const std::string& root : HostsDirRoots(hosts_dir)) {
    for (const std::string& name : names) {
      std::string dir = absl::StrCat(root, "/", name);
      std::error_code ec;
      const auto dir_status = std::filesystem::status(dir, ec);
      if (!std::filesystem::exists(dir_status)) continue;
      if (!std::filesystem::is_directory(dir_status)) {
        return absl::InvalidArgumentError(absl::StrCat(dir, ": not a directory"));
      }
      std::string file = absl::StrCat(dir, "/hosts.toml");
      const auto status = std::filesystem::status(file, ec);
      if (!std::filesystem::exists(status)) return FromCertFiles(dir, registry, plain_http);
      if (!std::filesystem::is_regular_file(status)) {
        return absl::InvalidArgumentError(absl::StrCat(file, ": not a regular file"));
      }
      auto text = ReadFileBounded(file, kMaxHostsTomlBytes);
      if (!text.ok()) return text.status();
      return ParseHostsToml(*text, file, dir, registry, plain_http);
    }
  }
  return std::vector<RegistryEndpoint>{DefaultServer(registry, plain_http)};
}

}  // namespace imgsel::registry
