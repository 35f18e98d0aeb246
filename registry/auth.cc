#include "registry/auth.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "matcher/string_view_bridge.h"
#include "oci/clock.h"
#include "oci/digest.h"
#include "oci/file_read.h"
#include "simdjson.h"

namespace imgsel::registry {
namespace {

constexpr size_t kMaxDockerConfigBytes = 1 << 20;

absl::StatusOr<std::pair<std::string, std::string>> SplitUserPass(absl::string_view b64,
                                                                  absl::string_view where) {
  std::string decoded;
  if (!absl::Base64Unescape(b64, &decoded)) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": \"auth\" is not valid base64"));
  }
  size_t colon = decoded.find(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": \"auth\" does not decode to user:password"));
  }
  return std::make_pair(decoded.substr(0, colon), decoded.substr(colon + 1));
}

std::string StringField(simdjson::dom::object o, const char* key) {
  std::string_view v;
  if (o[key].get_string().get(v) != simdjson::SUCCESS) return "";
  return std::string(v);
}

}  // namespace

std::string Credentials::Fingerprint() const {
  if (empty()) return "anonymous";
  std::string material =
      absl::StrCat(username.size(), ":", username, password.size(), ":", password,
                   identity_token.size(), ":", identity_token, registry_token);
  return Sha256Digest(material).substr(7, 16);
}

absl::Status CheckCredentialField(absl::string_view field, absl::string_view value) {
  for (const char ch : value) {
    const auto byte = static_cast<unsigned char>(ch);
    if (byte < 0x20 || byte == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": holds a control character (a byte below 0x20, or 0x7f)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Credentials> CredentialsFromCri(absl::string_view username,
                                               absl::string_view password, absl::string_view auth,
                                               absl::string_view identity_token,
                                               absl::string_view registry_token) {
  const std::pair<absl::string_view, absl::string_view> fields[] = {
      {"auth.username", username},
      {"auth.password", password},
      {"auth.auth", auth},
      {"auth.identity_token", identity_token},
      {"auth.registry_token", registry_token},
  };
  for (const auto& [name, value] : fields) {
    if (absl::Status s = CheckCredentialField(name, value); !s.ok()) return s;
  }
  Credentials c;
  c.username = std::string(username);
  c.password = std::string(password);
  c.identity_token = std::string(identity_token);
  c.registry_token = std::string(registry_token);
  if (!auth.empty() && c.username.empty() && c.password.empty()) {
    auto pair = SplitUserPass(auth, "CRI auth config");
    if (!pair.ok()) return pair.status();
    for (absl::string_view decoded :
         {absl::string_view(pair->first), absl::string_view(pair->second)}) {
      if (absl::Status s = CheckCredentialField("auth.auth (decoded)", decoded); !s.ok()) return s;
    }
    c.username = pair->first;
    c.password = pair->second;
  }
  return c;
}

std::string NormalizeAuthKey(absl::string_view key) {
  absl::string_view k = absl::StripAsciiWhitespace(key);
  if (size_t s = k.find("://"); s != absl::string_view::npos) k = k.substr(s + 3);
  k = k.substr(0, k.find('/'));
  std::string host = absl::AsciiStrToLower(k);
  if (host == "index.docker.io" || host == "registry-1.docker.io") return "docker.io";
  return host;
}

absl::StatusOr<DockerConfig> DockerConfig::Parse(absl::string_view json, absl::string_view source) {
  DockerConfig config;
  if (json.size() > kMaxDockerConfigBytes) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": larger than 1 MiB"));
  }
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto err = parser.parse(json.data(), json.size()).get(root); err) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": not valid JSON (", simdjson::error_message(err), ")"));
  }
  simdjson::dom::object auths;
  if (root["auths"].get_object().get(auths) != simdjson::SUCCESS) return config;
  for (auto field : auths) {
    simdjson::dom::object entry;
    if (field.value.get_object().get(entry) != simdjson::SUCCESS) continue;
    std::string key = NormalizeAuthKey(ToAbsl(field.key));
    std::string where = absl::StrCat(source, ": auths.", absl::CHexEscape(key));
    Credentials c;
    c.username = StringField(entry, "username");
    c.password = StringField(entry, "password");
    c.identity_token = StringField(entry, "identitytoken");
    c.registry_token = StringField(entry, "registrytoken");
    std::string auth = StringField(entry, "auth");
    if (!auth.empty()) {
      auto pair = SplitUserPass(auth, where);
      if (!pair.ok()) return pair.status();
      c.username = pair->first;
      if (c.identity_token.empty()) c.password = pair->second;
    }
    const std::pair<const char*, const std::string*> fields[] = {
        {"username", &c.username},
        {"password", &c.password},
        {"identitytoken", &c.identity_token},
        {"registrytoken", &c.registry_token}};
    for (const auto& [name, value] : fields) {
      // The one check of credential bytes, as for CRI and API requests.
      if (absl::Status st = CheckCredentialField(name, *value); !st.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": ", st.message()));
      }
    }
    if (!c.empty()) config.by_host_[key] = std::move(c);
  }
  return config;
}

absl::StatusOr<DockerConfig> DockerConfig::Load(const std::string& path) {
  std::string file = path;
  if (file.empty()) {
    if (const char* dir = std::getenv("DOCKER_CONFIG"); dir != nullptr && *dir != '\0') {
      file = absl::StrCat(dir, "/config.json");
    } else if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
      file = absl::StrCat(home, "/.docker/config.json");
    } else {
      return DockerConfig();
    }
  }
  if (path.empty() && access(file.c_str(), F_OK) != 0) return DockerConfig();  // none: fine
  auto text = ReadFileBounded(file, kMaxDockerConfigBytes);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat("Docker config: ", text.status().message()));
  }
  return Parse(*text, file);
}

Credentials DockerConfig::For(absl::string_view registry) const {
  auto it = by_host_.find(NormalizeAuthKey(registry));
  return it == by_host_.end() ? Credentials() : it->second;
}

std::vector<Challenge> ParseWwwAuthenticate(absl::string_view h) {
  std::vector<Challenge> out;
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t' || h[i] == ',')) ++i;
  };
  auto token = [&] {
    size_t start = i;
    while (i < h.size() && h[i] != ' ' && h[i] != '\t' && h[i] != ',' && h[i] != '=') ++i;
    return h.substr(start, i - start);
  };
  while (true) {
    skip_ws();
    if (i >= h.size()) break;
    absl::string_view word = token();
    if (word.empty()) {
      ++i;
      continue;
    }
    size_t after = i;
    while (after < h.size() && h[after] == ' ') ++after;
    if (after < h.size() && h[after] == '=' && !out.empty()) {
      // A parameter of the current challenge.
      i = after + 1;
      while (i < h.size() && h[i] == ' ') ++i;
      std::string value;
      if (i < h.size() && h[i] == '"') {
        ++i;
        while (i < h.size() && h[i] != '"') {
          if (h[i] == '\\' && i + 1 < h.size()) ++i;
          value.push_back(h[i++]);
        }
        ++i;  // closing quote
      } else {
        size_t start = i;
        while (i < h.size() && h[i] != ',') ++i;
        value = std::string(absl::StripAsciiWhitespace(h.substr(start, i - start)));
      }
      out.back().params[absl::AsciiStrToLower(word)] = std::move(value);
    } else {
      Challenge c;
      c.scheme = absl::AsciiStrToLower(word);
      out.push_back(std::move(c));
    }
  }
  return out;
}

std::string TokenCache::Get(const std::string& key, absl::Time now) const {
  absl::MutexLock lock(&mu_);
  auto it = tokens_.find(key);
  if (it == tokens_.end() || !FreshAt(it->second.stamped, it->second.usable, now)) return "";
  return it->second.token;
}

void TokenCache::Put(const std::string& key, std::string token, absl::Time now,
                     absl::Duration lifetime) {
  absl::MutexLock lock(&mu_);
  if (tokens_.size() >= kMaxTokens && !tokens_.contains(key)) {
    absl::erase_if(tokens_, [&](const auto& kv) {
      return !FreshAt(kv.second.stamped, kv.second.usable, now);
    });
    if (tokens_.size() >= kMaxTokens) tokens_.clear();
  }
  tokens_[key] = Entry{std::move(token), now, lifetime - absl::Seconds(5)};
}

}  // namespace imgsel::registry
