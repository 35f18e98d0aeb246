// The client's shared state (Docker config, tokens, request slots,
// referrers modes), one HTTP exchange in a slot (Send), and the mapping of
// HTTP answers to Status.
#include "registry/client.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "matcher/string_view_bridge.h"
#include "registry/client_call.h"
#include "simdjson.h"

namespace imgsel::registry {
namespace {

// Referrers modes remembered at once: every repository a pod spec names
// adds one; past this the expired go, then all.
constexpr size_t kMaxRememberedModes = 4096;

}  // namespace

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

std::string MediaTypeFromContentType(const std::string* content_type) {
  if (content_type == nullptr || content_type->empty() ||
      absl::StartsWith(*content_type, "application/json") ||
      absl::StartsWith(*content_type, "text/")) {
    return "";
  }
  return std::string(absl::StripAsciiWhitespace(content_type->substr(0, content_type->find(';'))));
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

std::shared_ptr<RegistryClient::Limiter> RegistryClient::LimiterFor(absl::string_view registry,
                                                                    absl::string_view origin) {
  std::string key = absl::StrCat(registry, "|", origin);
  absl::MutexLock lock(&mu_);
  if (auto it = limiters_.find(key); it != limiters_.end()) return it->second;
  if (limiters_.size() >= kMaxIdleLimiters) {
    // Only the map holds an idle one: copies are made under mu_, so a count
    // of one cannot grow while it is erased, and nobody waits on it.
    absl::erase_if(limiters_, [](const auto& kv) { return kv.second.use_count() == 1; });
  }
  auto limiter = std::make_shared<Limiter>(options_.max_concurrent_per_registry);
  limiters_.emplace(std::move(key), limiter);
  return limiter;
}

size_t RegistryClient::request_limiters() const {
  absl::MutexLock lock(&mu_);
  return limiters_.size();
}

RegistryClient::ReferrersMode RegistryClient::referrers_mode(const Reference& repo) const {
  absl::MutexLock lock(&mu_);
  auto it = referrers_modes_.find(repo.Name());
  if (it == referrers_modes_.end() ||
      !FreshAt(it->second.stamped, options_.referrers_ttl, options_.clock->Now())) {
    return ReferrersMode::kUnknown;
  }
  return it->second.mode;
}

void RegistryClient::set_referrers_mode(const Reference& repo, ReferrersMode mode) {
  const absl::Time now = options_.clock->Now();
  absl::MutexLock lock(&mu_);
  if (referrers_modes_.size() >= kMaxRememberedModes) {
    absl::erase_if(referrers_modes_, [&](const auto& kv) {
      return !FreshAt(kv.second.stamped, options_.referrers_ttl, now);
    });
    if (referrers_modes_.size() >= kMaxRememberedModes) referrers_modes_.clear();
  }
  referrers_modes_[repo.Name()] = {mode, now};
}

absl::StatusOr<HttpResponse> RegistryClient::Send(HttpRequest request, absl::string_view registry,
                                                  absl::Time deadline) {
  const std::string origin = UrlOrigin(request.url);
  std::optional<uint64_t> pending_id;
  if (track_pending_.load()) {
    pending_id = next_pending_.fetch_add(1);
    absl::MutexLock lock(&mu_);
    pending_[*pending_id] = {
        absl::StrCat(request.method, " ", EscapeRemoteText(WithoutQuery(request.url))),
        absl::Now()};
  }
  absl::Cleanup answered = [this, pending_id] {
    if (!pending_id.has_value()) return;
    absl::MutexLock lock(&mu_);
    pending_.erase(*pending_id);
  };
  const std::shared_ptr<Limiter> held = LimiterFor(registry, origin);
  Limiter& limiter = *held;
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

std::vector<RegistryClient::PendingRequest> RegistryClient::Pending() const {
  std::vector<PendingRequest> out;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, request] : pending_) out.push_back(request);
  }
  std::sort(out.begin(), out.end(),
            [](const PendingRequest& a, const PendingRequest& b) { return a.since < b.since; });
  return out;
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

}  // namespace imgsel::registry
