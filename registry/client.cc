#include "registry/client.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "matcher/digest.h"
#include "matcher/index.h"
#include "matcher/string_view_bridge.h"
#include "registry/digest_check.h"
#include "simdjson.h"

namespace imgsel::registry {
namespace {

constexpr size_t kMaxTokenResponseBytes = 1 << 20;
constexpr size_t kMaxSmallResponseBytes = size_t{64} << 10;
// Referrers modes remembered at once: every repository a pod spec names
// adds one; past this the expired go, then all.
constexpr size_t kMaxRememberedModes = 4096;

std::string PercentEncode(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

absl::string_view WithoutQuery(absl::string_view url) { return url.substr(0, url.find('?')); }

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

struct RegistryClient::Call {
  std::string method = "GET";
  std::string path;          // after "/v2/", may carry a query
  std::string absolute_url;  // instead of api_root + path (an upload Location)
  std::vector<std::string> headers;
  std::string body;
  size_t max_bytes = kMaxSmallResponseBytes;
  Capability capability = kCapPull;
  bool push = false;
  absl::Time deadline = absl::InfiniteFuture();  // the caller's
  std::string last_url;                          // set by Exchange: what the message should name
};

class RegistryClient::Limiter {
 public:
  explicit Limiter(int max) : max_(max < 1 ? 1 : max) {}
  int max() const { return max_; }
  // False when no slot came free before `deadline`.
  bool Acquire(absl::Time deadline) {
    bool got = mu_.LockWhenWithDeadline(absl::Condition(
                                            +[](Limiter* l) ABSL_EXCLUSIVE_LOCKS_REQUIRED(l->mu_) {
                                              return l->in_flight_ < l->max_;
                                            },
                                            this),
                                        deadline);
    if (got) ++in_flight_;
    mu_.Unlock();
    return got;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    --in_flight_;
  }

 private:
  const int max_;
  absl::Mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

absl::Status StatusFromHttp(const HttpResponse& response, absl::string_view what) {
  std::string code;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (!response.body.empty() && response.body.size() < kMaxSmallResponseBytes &&
      parser.parse(response.body.data(), response.body.size()).get(root) == simdjson::SUCCESS) {
    std::string_view c;
    if (root["errors"].at(0)["code"].get_string().get(c) == simdjson::SUCCESS) {
      code = absl::StrCat(" ", EscapeRemoteText(ToAbsl(c), 64));
    }
  }
  std::string msg = absl::StrCat(what, ": HTTP ", response.status, code);
  long s = response.status;
  if (s == 404) return absl::NotFoundError(msg);
  if (s == 401) {
    return absl::UnauthenticatedError(absl::StrCat(
        msg, " (credentials missing or rejected; see --docker-config or the CRI auth)"));
  }
  if (s == 403) return absl::PermissionDeniedError(msg);
  if (s == 429) return absl::ResourceExhaustedError(msg);
  if (s >= 500) return absl::UnavailableError(msg);
  return absl::FailedPreconditionError(msg);
}

std::string ManifestMediaType(absl::string_view bytes) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(bytes.data(), bytes.size()).get(root) != simdjson::SUCCESS) return "";
  std::string_view mt;
  if (root["mediaType"].get_string().get(mt) == simdjson::SUCCESS) return std::string(mt);
  simdjson::dom::element unused;
  if (root["manifests"].get(unused) == simdjson::SUCCESS) return std::string(kOciIndexMediaType);
  return std::string(kOciManifestMediaType);
}

absl::StatusOr<std::unique_ptr<RegistryClient>> RegistryClient::Create(ClientOptions options) {
  DockerConfig docker;
  if (options.use_docker_config) {
    auto loaded = DockerConfig::Load(options.docker_config);
    if (!loaded.ok()) return loaded.status();
    docker = std::move(*loaded);
  }
  return std::unique_ptr<RegistryClient>(new RegistryClient(std::move(options), std::move(docker)));
}

RegistryClient::RegistryClient(ClientOptions options, DockerConfig docker_config)
    : options_(std::move(options)), docker_config_(std::move(docker_config)) {}

RegistryClient::~RegistryClient() = default;

Credentials RegistryClient::CredentialsFor(const Reference& repo, const Credentials* creds) const {
  if (creds != nullptr) return *creds;
  return docker_config_.For(repo.registry);
}

RegistryClient::Limiter& RegistryClient::LimiterFor(absl::string_view registry,
                                                    absl::string_view origin) {
  absl::MutexLock lock(&mu_);
  auto& slot = limiters_[absl::StrCat(registry, "|", origin)];
  if (!slot) slot = std::make_unique<Limiter>(options_.max_concurrent_per_registry);
  return *slot;
}

RegistryClient::ReferrersMode RegistryClient::referrers_mode(const Reference& repo) const {
  absl::MutexLock lock(&mu_);
  auto it = referrers_modes_.find(repo.Name());
  if (it == referrers_modes_.end() || it->second.expires <= absl::Now()) {
    return ReferrersMode::kUnknown;
  }
  return it->second.mode;
}

void RegistryClient::set_referrers_mode(const Reference& repo, ReferrersMode mode) {
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&mu_);
  if (referrers_modes_.size() >= kMaxRememberedModes) {
    absl::erase_if(referrers_modes_, [&](const auto& kv) { return kv.second.expires <= now; });
    if (referrers_modes_.size() >= kMaxRememberedModes) referrers_modes_.clear();
  }
  referrers_modes_[repo.Name()] = {mode, now + options_.referrers_ttl};
}

absl::StatusOr<HttpResponse> RegistryClient::Send(HttpRequest request, absl::string_view registry,
                                                  absl::Time deadline) {
  const std::string origin = UrlOrigin(request.url);
  Limiter& limiter = LimiterFor(registry, origin);
  if (!limiter.Acquire(deadline)) {
    return absl::DeadlineExceededError(
        absl::StrCat(request.method, " ", EscapeRemoteText(WithoutQuery(request.url)),
                     ": the deadline passed while waiting for one of the ", limiter.max(),
                     " request slots of ", registry, " at ", EscapeRemoteText(origin)));
  }
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) {
    limiter.Release();
    return absl::DeadlineExceededError(
        absl::StrCat(request.method, " ", EscapeRemoteText(WithoutQuery(request.url)),
                     ": the deadline passed before the request was sent"));
  }
  request.total_timeout = left;
  request.connect_timeout = std::min(
      request.dial_timeout > absl::ZeroDuration() ? request.dial_timeout : options_.connect_timeout,
      left);
  round_trips_.fetch_add(1);
  absl::StatusOr<HttpResponse> response = transport_.Perform(request);
  limiter.Release();
  return response;
}

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
    } else if (std::string token = tokens_.Get(token_key, absl::Now()); !token.empty()) {
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
      tokens_.Put(token_key, std::move(token->value), absl::Now() + token->lifetime);
      continue;
    }
    if (basic != nullptr && has_basic) {
      absl::MutexLock lock(&mu_);
      if (basic_origins_.contains(origin)) break;  // we sent them: rejected
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

absl::StatusOr<HttpResponse> RegistryClient::Get(const Reference& repo,
                                                 absl::string_view path_and_query,
                                                 absl::string_view accept, size_t max_bytes,
                                                 const Credentials* creds, absl::Time deadline) {
  Call call;
  call.deadline = deadline;
  call.path = std::string(path_and_query);
  if (!accept.empty()) call.headers.push_back(absl::StrCat("Accept: ", accept));
  call.max_bytes = max_bytes;
  return Exchange(repo, call, creds);
}

absl::StatusOr<Manifest> RegistryClient::GetManifest(const Reference& repo,
                                                     absl::string_view reference,
                                                     absl::string_view digest,
                                                     const Credentials* creds,
                                                     absl::Time deadline) {
  Call call;
  call.deadline = deadline;
  call.path = absl::StrCat(repo.repository, "/manifests/", reference);
  call.headers.push_back(absl::StrCat("Accept: ", kManifestAccept));
  call.max_bytes = options_.max_manifest_bytes;
  call.capability = digest.empty() ? kCapResolve : kCapPull;
  auto resp = Exchange(repo, call, creds);
  std::string what = absl::StrCat("manifest ", repo.Name(), "@", reference);
  if (!resp.ok()) {
    if (absl::IsResourceExhausted(resp.status())) {
      return absl::ResourceExhaustedError(absl::StrCat(what, ": larger than the manifest limit of ",
                                                       options_.max_manifest_bytes, " bytes"));
    }
    return resp.status();
  }
  if (resp->status != 200) return StatusFromHttp(*resp, absl::StrCat("GET ", call.last_url));
  Manifest m;
  m.bytes = std::move(resp->body);
  if (!digest.empty()) {
    m.digest = std::string(digest);
  } else if (const std::string* d = resp->Header("docker-content-digest");
             d != nullptr && ValidateDigest(*d).ok()) {
    m.digest = *d;
  } else {
    m.digest = Sha256Digest(m.bytes);
  }
  if (absl::Status s = VerifyDigest(m.bytes, m.digest); !s.ok()) {
    return absl::DataLossError(absl::StrCat(what, " from ", call.last_url, ": ", s.message()));
  }
  const std::string* ct = resp->Header("content-type");
  m.media_type = ct != nullptr && !ct->empty() && !absl::StartsWith(*ct, "application/json") &&
                         !absl::StartsWith(*ct, "text/")
                     ? std::string(absl::StripAsciiWhitespace(ct->substr(0, ct->find(';'))))
                     : ManifestMediaType(m.bytes);
  if (options_.cache != nullptr) {
    options_.cache->PutBlob(repo.Name(), m.digest, m.bytes).IgnoreError();
  }
  return m;
}

absl::StatusOr<Manifest> RegistryClient::FetchManifest(const Reference& repo,
                                                       absl::string_view digest,
                                                       const Credentials* creds,
                                                       absl::Time deadline) {
  if (absl::Status s = ValidateDigest(digest); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("manifest digest \"", digest.substr(0, 140), "\": ", s.message()));
  }
  if (options_.cache != nullptr) {
    if (auto bytes = options_.cache->GetBlob(repo.Name(), digest);
        bytes && bytes->size() <= options_.max_manifest_bytes) {
      Manifest m;
      m.media_type = ManifestMediaType(*bytes);
      m.digest = std::string(digest);
      m.bytes = std::move(*bytes);
      return m;
    }
  }
  return GetManifest(repo, digest, digest, creds, deadline);
}

absl::StatusOr<Manifest> RegistryClient::Resolve(const Reference& ref, const Credentials* creds,
                                                 absl::Time deadline) {
  if (!ref.digest.empty()) return FetchManifest(ref, ref.digest, creds, deadline);
  // One GET of the tag: its body is what a HEAD would have named (a HEAD
  // then a GET costs a second round trip on every cold pull; an index is a
  // few KiB, so a warm pull gains nothing from asking for the digest alone).
  auto m = GetManifest(ref, ref.tag, "", creds, deadline);
  if (!m.ok()) {
    return absl::Status(m.status().code(),
                        absl::StrCat("resolving ", ref.String(), ": ", m.status().message()));
  }
  return m;
}

absl::StatusOr<std::string> RegistryClient::FetchBlob(const Reference& repo,
                                                      absl::string_view digest, size_t max_bytes,
                                                      const Credentials* creds,
                                                      absl::Time deadline) {
  if (max_bytes == 0) max_bytes = options_.max_blob_bytes;
  if (absl::Status s = ValidateDigest(digest); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("blob digest \"", digest.substr(0, 140), "\": ", s.message()));
  }
  std::string what = absl::StrCat("blob ", repo.Name(), "@", digest);
  if (options_.cache != nullptr) {
    if (auto bytes = options_.cache->GetBlob(repo.Name(), digest)) {
      if (bytes->size() > max_bytes) {
        return absl::ResourceExhaustedError(
            absl::StrCat(what, ": ", bytes->size(), " bytes, over the limit of ", max_bytes));
      }
      return *std::move(bytes);
    }
  }
  Call call;
  call.deadline = deadline;
  call.path = absl::StrCat(repo.repository, "/blobs/", digest);
  call.max_bytes = max_bytes;
  auto resp = Exchange(repo, call, creds);
  if (!resp.ok()) {
    if (absl::IsResourceExhausted(resp.status())) {
      return absl::ResourceExhaustedError(
          absl::StrCat(what, ": larger than the limit of ", max_bytes, " bytes"));
    }
    return resp.status();
  }
  if (resp->status != 200) return StatusFromHttp(*resp, absl::StrCat("GET ", call.last_url));
  if (absl::Status s = VerifyDigest(resp->body, digest); !s.ok()) {
    return absl::DataLossError(absl::StrCat(what, ": ", s.message()));
  }
  if (options_.cache != nullptr) {
    options_.cache->PutBlob(repo.Name(), digest, resp->body).IgnoreError();
  }
  return std::move(resp->body);
}

absl::StatusOr<std::string> RegistryClient::PushBlob(const Reference& repo, absl::string_view bytes,
                                                     const Credentials* creds,
                                                     absl::Time deadline) {
  std::string digest = Sha256Digest(bytes);
  Call head;
  head.deadline = deadline;
  head.method = "HEAD";
  head.path = absl::StrCat(repo.repository, "/blobs/", digest);
  head.capability = kCapPush;
  head.push = true;
  auto exists = Exchange(repo, head, creds);
  if (!exists.ok()) return exists.status();
  if (exists->status == 200) return digest;

  Call start;
  start.deadline = deadline;
  start.method = "POST";
  start.path = absl::StrCat(repo.repository, "/blobs/uploads/");
  start.capability = kCapPush;
  start.push = true;
  auto started = Exchange(repo, start, creds);
  if (!started.ok()) return started.status();
  const std::string* location = started->Header("location");
  if (started->status != 202 || location == nullptr) {
    if (started->status == 202) {
      return absl::FailedPreconditionError(
          absl::StrCat("POST ", start.last_url, ": upload started without a Location"));
    }
    return StatusFromHttp(*started, absl::StrCat("POST ", start.last_url));
  }
  Call put;
  put.deadline = deadline;
  put.method = "PUT";
  std::string url = ResolveLocation(start.last_url, *location);
  put.absolute_url =
      absl::StrCat(url, absl::StrContains(url, '?') ? "&" : "?", "digest=", PercentEncode(digest));
  put.headers.push_back("Content-Type: application/octet-stream");
  put.body = std::string(bytes);
  put.capability = kCapPush;
  put.push = true;
  auto done = Exchange(repo, put, creds);
  if (!done.ok()) return done.status();
  if (done->status != 201 && done->status != 204) {
    return StatusFromHttp(*done, absl::StrCat("PUT ", put.last_url, " (blob ", digest, ")"));
  }
  return digest;
}

absl::StatusOr<std::string> RegistryClient::PushManifest(
    const Reference& repo, absl::string_view media_type, absl::string_view bytes,
    absl::string_view tag_or_digest, const Credentials* creds, absl::Time deadline) {
  std::string digest = Sha256Digest(bytes);
  Call put;
  put.deadline = deadline;
  put.method = "PUT";
  put.path = absl::StrCat(repo.repository, "/manifests/",
                          tag_or_digest.empty() ? absl::string_view(digest) : tag_or_digest);
  put.headers.push_back(absl::StrCat("Content-Type: ", media_type));
  put.body = std::string(bytes);
  put.capability = kCapPush;
  put.push = true;
  auto done = Exchange(repo, put, creds);
  if (!done.ok()) return done.status();
  if (done->status != 201 && done->status != 200 && done->status != 204) {
    return StatusFromHttp(*done, absl::StrCat("PUT ", put.last_url));
  }
  if (options_.cache != nullptr) options_.cache->PutBlob(repo.Name(), digest, bytes).IgnoreError();
  return digest;
}

}  // namespace imgsel::registry
