// Registry authentication: where credentials come from and how a challenge
// is answered.
//
//   source                      form
//   Docker config.json          auths.<host>.auth (base64 "user:pass"),
//                               auths.<host>.username/password,
//                               auths.<host>.identitytoken (an OAuth2 refresh token)
//   the caller (CRI PullImage)  username/password, auth, identity_token,
//                               registry_token (used as the Bearer token as is)
//
//   WWW-Authenticate: Basic realm="…"                  -> Authorization: Basic
//   WWW-Authenticate: Bearer realm="…",service="…",scope="…"
//       -> GET realm?service=…&scope=… (Basic auth with user/password), or
//          POST realm grant_type=refresh_token (identity token); the answer's
//          token/access_token is sent as "Authorization: Bearer", and cached
//          until expires_in (default 60 s) runs out.
//
// config.json keys are matched by host: "https://index.docker.io/v1/",
// "index.docker.io" and "registry-1.docker.io" all mean docker.io; a scheme
// and a path are ignored. credsStore/credHelpers are not consulted.
//
// Credentials are never put in a URL, a log line or an error message.
// Parsing functions are pure; TokenCache is thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace imgsel::registry {

struct Credentials {
  std::string username;
  std::string password;
  std::string identity_token;  // OAuth2 refresh token
  std::string registry_token;  // a ready Bearer token

  bool empty() const {
    return username.empty() && password.empty() && identity_token.empty() && registry_token.empty();
  }
  // A digest of the secret material: tells two credential sets apart in cache
  // keys without revealing them.
  std::string Fingerprint() const;
};

// OK, or InvalidArgument naming `field` when `value` holds a control
// character: a byte below 0x20, or 0x7f. Credentials are sent in HTTP
// headers (Authorization) and token request bodies, where a CR or LF would
// end the line and start a header of the sender's choosing. The message
// names the field, never the value. CredentialsFromCri applies it to CRI
// and Selector API credentials; a reader of credentials from anywhere else
// (config.json) calls it for each field it reads.
absl::Status CheckCredentialField(absl::string_view field, absl::string_view value);

// The CRI AuthConfig fields; `auth` is base64 "user:password" and wins over
// empty username/password. InvalidArgument when `auth` does not decode, or
// when a field (or what `auth` decodes to) fails CheckCredentialField; the
// fields are named as in AuthConfig under "auth." ("auth.password").
absl::StatusOr<Credentials> CredentialsFromCri(absl::string_view username,
                                               absl::string_view password, absl::string_view auth,
                                               absl::string_view identity_token,
                                               absl::string_view registry_token);

class DockerConfig {
 public:
  // Parses config.json text; `source` names it in errors (never a secret).
  static absl::StatusOr<DockerConfig> Parse(absl::string_view json, absl::string_view source);
  // Reads `path`; an empty path means $DOCKER_CONFIG/config.json, else
  // ~/.docker/config.json. A missing file is an empty config, not an error.
  static absl::StatusOr<DockerConfig> Load(const std::string& path);

  // Credentials for a registry host ("docker.io", "localhost:5000"); empty if none.
  Credentials For(absl::string_view registry) const;

 private:
  std::map<std::string, Credentials> by_host_;
};

// The registry key of a config.json entry: "https://index.docker.io/v1/" -> "docker.io".
std::string NormalizeAuthKey(absl::string_view key);

struct Challenge {
  std::string scheme;                         // lowercased: "bearer", "basic"
  std::map<std::string, std::string> params;  // names lowercased
};

// Parses a WWW-Authenticate value (one or several challenges, quoted strings
// with backslash escapes). Never fails; unparsable parts are skipped.
std::vector<Challenge> ParseWwwAuthenticate(absl::string_view header);

// Bearer tokens by key until they expire. Thread-safe.
class TokenCache {
 public:
  // At most this many tokens are kept (one per registry, repository and
  // scope); past it, expired ones go, then all.
  static constexpr size_t kMaxTokens = 1024;

  // The token, or empty when absent, stamped later than `now` (the clock
  // went back) or expiring within 5 s of `now`.
  std::string Get(const std::string& key, absl::Time now) const;
  // A token issued at `now` for `lifetime`.
  void Put(const std::string& key, std::string token, absl::Time now, absl::Duration lifetime);

 private:
  struct Entry {
    std::string token;
    absl::Time stamped;
    absl::Duration usable;  // the lifetime less the 5 s margin
  };
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> tokens_ ABSL_GUARDED_BY(mu_);
};

}  // namespace imgsel::registry
