// Bearer tokens: the request to the realm a registry's 401 names, and
// what a realm must be to receive the caller's credentials (client.h,
// "auth").
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "registry/client.h"
#include "registry/client_call.h"
#include "simdjson.h"

namespace imgsel::registry {
namespace {

constexpr size_t kMaxTokenResponseBytes = 1 << 20;

}  // namespace

absl::StatusOr<RegistryClient::Token> RegistryClient::FetchToken(
    const Challenge& challenge, const std::string& url, const Credentials& creds,
    const TlsOptions& tls, absl::string_view registry, absl::Time deadline) {
  auto param = [&](const char* name) -> std::string {
    auto it = challenge.params.find(name);
    return it == challenge.params.end() ? "" : it->second;
  };
  std::string realm = param("realm");
  if (realm.empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat(WithoutQuery(url),
                     ": HTTP 401 with a Bearer challenge that has no realm; cannot get a token"));
  }
  // The realm receives the caller's credentials and hands back a token we
  // send on: only over TLS (plain HTTP only for a registry that is itself
  // plain HTTP), and never to a link-local service (cloud metadata).
  const bool plain_registry = absl::StartsWith(url, "http://");
  const std::string shown_realm = EscapeRemoteText(WithoutQuery(realm));
  if (!absl::StartsWith(realm, "https://") &&
      !(plain_registry && absl::StartsWith(realm, "http://"))) {
    return absl::UnauthenticatedError(
        absl::StrCat(WithoutQuery(url), ": refusing Bearer realm ", shown_realm,
                     plain_registry ? ": not an http(s) URL" : ": not an https URL"));
  }
  if (IsLinkLocalAddress(UrlHost(realm))) {
    return absl::PermissionDeniedError(absl::StrCat(WithoutQuery(url), ": refusing Bearer realm ",
                                                    shown_realm, ": a link-local address"));
  }
  std::string service = param("service");
  std::vector<std::string> scopes = absl::StrSplit(param("scope"), ' ', absl::SkipEmpty());
  HttpRequest req;
  req.tls = tls;
  req.max_response_bytes = kMaxTokenResponseBytes;
  req.refuse_link_local = true;
  if (!creds.identity_token.empty()) {
    req.method = "POST";
    req.url = realm;
    req.headers.push_back("Content-Type: application/x-www-form-urlencoded");
    req.body = absl::StrCat("grant_type=refresh_token&client_id=imgsel&refresh_token=",
                            PercentEncode(creds.identity_token));
    if (!service.empty()) absl::StrAppend(&req.body, "&service=", PercentEncode(service));
    if (!scopes.empty())
      absl::StrAppend(&req.body, "&scope=", PercentEncode(absl::StrJoin(scopes, " ")));
  } else {
    std::string query;
    if (!service.empty()) absl::StrAppend(&query, "service=", PercentEncode(service));
    for (const std::string& s : scopes) {
      absl::StrAppend(&query, query.empty() ? "" : "&", "scope=", PercentEncode(s));
    }
    req.url = query.empty() ? realm
                            : absl::StrCat(realm, absl::StrContains(realm, '?') ? "&" : "?", query);
    if (!creds.username.empty()) {
      req.headers.push_back(
          absl::StrCat("Authorization: Basic ",
                       absl::Base64Escape(absl::StrCat(creds.username, ":", creds.password))));
    }
  }
  std::string what = absl::StrCat("token service ", shown_realm);
  auto resp = Send(std::move(req), registry, deadline);
  if (!resp.ok()) return resp.status();
  if (resp->status != 200) {
    return absl::UnauthenticatedError(
        absl::StrCat(what, ": HTTP ", resp->status,
                     creds.empty() ? " (no credentials configured for this registry)"
                                   : " (credentials rejected)"));
  }
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::string_view token;
  if (parser.parse(resp->body.data(), resp->body.size()).get(root) != simdjson::SUCCESS ||
      (root["token"].get_string().get(token) != simdjson::SUCCESS &&
       root["access_token"].get_string().get(token) != simdjson::SUCCESS) ||
      token.empty()) {
    return absl::UnauthenticatedError(absl::StrCat(what, ": answer has no token"));
  }
  int64_t expires_in = 60;
  int64_t v;
  if (root["expires_in"].get_int64().get(v) == simdjson::SUCCESS && v > 0) expires_in = v;
  return Token{std::string(token), absl::Seconds(expires_in)};
}

}  // namespace imgsel::registry
