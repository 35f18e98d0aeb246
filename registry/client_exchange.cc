// One request to a registry: the hosts.toml endpoints with the capability,
// in order (Exchange), and at one endpoint the redirects, the 401
// challenge and the retry with a token or Basic credentials
// (ExchangeWith). The guarantees are client.h's "endpoints", "auth" and
// "time".
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "registry/client.h"
#include "registry/client_call.h"

namespace imgsel::registry {
namespace {

bool IsRedirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

const char* CapabilityName(Capability c) {
  switch (c) {
    case kCapPull:
      return "pull";
    case kCapResolve:
      return "resolve";
    case kCapPush:
      return "push";
  }
  return "?";
}

}  // namespace

absl::StatusOr<HttpResponse> RegistryClient::ExchangeWith(const RegistryEndpoint& ep,
                                                          const Reference& repo, Call& call,
                                                          const Credentials& creds) {
  std::string url =
      call.absolute_url.empty() ? absl::StrCat(ep.api_root, "/", call.path) : call.absolute_url;
  if (!ep.ns.empty() && call.absolute_url.empty()) {
    absl::StrAppend(&url, absl::StrContains(url, '?') ? "&" : "?", "ns=", PercentEncode(ep.ns));
  }
  // An upload Location is the registry's text.
  call.last_url = EscapeRemoteText(WithoutQuery(url), 512);
  const std::string origin = UrlOrigin(url);
  const std::string scope =
      absl::StrCat("repository:", repo.repository, call.push ? ":pull,push" : ":pull");
  const std::string token_key = absl::StrCat(origin, "|", scope, "|", creds.Fingerprint());
  bool has_basic = !creds.username.empty();
  // One deadline for every hop, the token fetch and the retry.
  const absl::Time deadline = std::min(absl::Now() + options_.request_timeout, call.deadline);

  absl::StatusOr<HttpResponse> resp;
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::string authorization;
    if (!creds.registry_token.empty()) {
      authorization = absl::StrCat("Authorization: Bearer ", creds.registry_token);
    } else if (std::string token = tokens_.Get(token_key, options_.clock->Now()); !token.empty()) {
      authorization = absl::StrCat("Authorization: Bearer ", token);
    } else if (has_basic) {
      absl::MutexLock lock(&mu_);
      if (basic_origins_.contains(origin)) {
        authorization =
            absl::StrCat("Authorization: Basic ",
                         absl::Base64Escape(absl::StrCat(creds.username, ":", creds.password)));
      }
    }
    std::string current = url;
    bool same_origin = true;
    for (int hop = 0;; ++hop) {
      HttpRequest req;
      req.method = call.method;
      req.url = current;
      req.body = call.body;
      req.max_response_bytes = call.max_bytes;
      req.tls = ep.tls;
      req.dial_timeout = ep.dial_timeout;
      if (same_origin) {
        req.headers = ep.headers;
        if (!authorization.empty()) req.headers.push_back(authorization);
      }
      for (const std::string& h : call.headers) req.headers.push_back(h);
      resp = Send(std::move(req), repo.registry, deadline);
      if (!resp.ok()) return resp;
      const std::string* location = resp->Header("location");
      if (!IsRedirect(resp->status) || location == nullptr ||
          (call.method != "GET" && call.method != "HEAD")) {
        break;
      }
      if (hop >= options_.max_redirects) {
        return absl::UnavailableError(absl::StrCat(call.method, " ", call.last_url, ": more than ",
                                                   options_.max_redirects, " redirects"));
      }
      current = ResolveLocation(current, *location);
      // Blob storage on another host gets neither our credentials nor our headers.
      same_origin = same_origin && UrlOrigin(current) == origin;
    }
    if (resp->status != 401 || attempt > 0) break;
    if (!same_origin) {
      // Another host's challenge: its realm gets nothing of the caller's.
      return absl::UnauthenticatedError(absl::StrCat(
          call.method, " ", call.last_url, ": HTTP 401 from ", EscapeRemoteText(UrlOrigin(current)),
          " after a redirect; credentials are only sent to the registry itself"));
    }

    std::vector<Challenge> challenges;
    if (const std::string* h = resp->Header("www-authenticate"))
      challenges = ParseWwwAuthenticate(*h);
    const Challenge* bearer = nullptr;
    const Challenge* basic = nullptr;
    for (const Challenge& c : challenges) {
      if (c.scheme == "bearer" && bearer == nullptr) bearer = &c;
      if (c.scheme == "basic" && basic == nullptr) basic = &c;
    }
    if (bearer != nullptr && creds.registry_token.empty()) {
      Challenge ch = *bearer;
      if (ch.params["scope"].empty()) ch.params["scope"] = scope;
      auto token = FetchToken(ch, url, creds, ep.tls, repo.registry, deadline);
      if (!token.ok()) return token.status();
      tokens_.Put(token_key, std::move(token->value), options_.clock->Now(), token->lifetime);
      continue;
    }
    if (basic != nullptr && has_basic) {
      absl::MutexLock lock(&mu_);
      if (basic_origins_.contains(origin)) break;  // we sent them: rejected
      if (basic_origins_.size() >= kMaxRememberedOrigins) basic_origins_.clear();
      basic_origins_[origin] = true;
      continue;
    }
    if (bearer == nullptr && basic == nullptr) {
      return absl::UnauthenticatedError(
          absl::StrCat(call.method, " ", call.last_url,
                       ": HTTP 401 without a usable WWW-Authenticate challenge"));
    }
    break;
  }
  return resp;
}

absl::StatusOr<HttpResponse> RegistryClient::Exchange(const Reference& repo, Call& call,
                                                      const Credentials* creds) {
  auto endpoints = EndpointsFor(options_.hosts_dir, repo.registry, options_.plain_http);
  if (!endpoints.ok()) return endpoints.status();
  Credentials c = CredentialsFor(repo, creds);
  absl::StatusOr<HttpResponse> last = absl::FailedPreconditionError(
      absl::StrCat("no host configured for ", repo.registry, " has the \"",
                   CapabilityName(call.capability), "\" capability (hosts.toml)"));
  size_t usable = 0;
  for (const RegistryEndpoint& ep : *endpoints) usable += ep.Can(call.capability) ? 1 : 0;
  // The first 404 a host gave: it stands when every later host fails to
  // answer (an air-gapped node whose upstream cannot be reached), so "this
  // mirror does not have it" is not turned into "unreachable".
  std::optional<HttpResponse> not_found;
  std::string not_found_url;
  for (const RegistryEndpoint& ep : *endpoints) {
    if (!ep.Can(call.capability)) continue;
    --usable;
    last = ExchangeWith(ep, repo, call, c);
    if (last.ok() && last->status == 404 && !not_found.has_value()) {
      not_found = *last;
      not_found_url = call.last_url;
    } else if (not_found.has_value() && (!last.ok() || last->status >= 500)) {
      last = *not_found;
      call.last_url = not_found_url;
    }
    if (usable == 0 || absl::Now() >= call.deadline) break;
    // A mirror that fails, errs or lacks the content hands over to the next host.
    if (last.ok() && last->status < 500 && last->status != 404 && last->status != 401 &&
        last->status != 403) {
      break;
    }
    if (!call.absolute_url.empty()) break;
  }
  return last;
}

}  // namespace imgsel::registry
