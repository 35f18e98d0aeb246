// RegistryClient: the OCI distribution API over HTTP(S), as imgsel needs it.
//
//   GET      /v2/<name>/manifests/<tag|digest>   resolve a tag, fetch a manifest
//   GET      /v2/<name>/blobs/<digest>           fetch a blob (compatibility layers)
//   GET      /v2/<name>/referrers/<digest>       see referrers.h
//   POST+PUT /v2/<name>/blobs/uploads/           push a blob (monolithic)
//   PUT      /v2/<name>/manifests/<ref>          push a manifest
//
// Accept on manifest requests: OCI index, OCI manifest, Docker manifest list,
// Docker manifest. A tag is resolved by one GET of the tag: the body is
// checked against the Docker-Content-Digest the registry names (hashed when
// it names none) and cached by digest. A digest is fetched from the cache
// when present.
//
// Guarantees:
// - every manifest and blob is size-capped while it downloads and verified
//   against its digest before it is returned or cached; the cache is asked
//   and filled per registry and repository (cache.h), so a digest one
//   registry served never stands in for a request to another;
// - endpoints come from hosts.toml (hosts.h): mirrors with the needed
//   capability are tried in order, then the server; pushes go only to
//   endpoints with "push". A host's 404 hands over to the next host, and
//   stands (with its URL) when no later host answers (transport failure,
//   timeout, 5xx): a mirror's "not here" is not turned into "unreachable";
// - auth: anonymous, Basic, Bearer tokens (auth.h) cached until expiry.
//   Credentials go only to the registry's own endpoints and to the token
//   service (realm) a 401 *from the registry's own origin* names; a realm
//   must be https (http only for a plain-HTTP registry) and never on a
//   link-local address (169.254.0.0/16, fe80::/10, by literal or by what
//   the name resolves to). Redirects are followed here; after a redirect to
//   another origin nothing of ours is sent (no Authorization, no hosts.toml
//   headers), and a 401 from there is an error, never answered;
// - time: one deadline per request to an endpoint, covering every redirect
//   hop, the token fetch and the retry after a 401:
//   min(now + request_timeout, the caller's `deadline`). The wait for a
//   request slot ends at that deadline too (DeadlineExceeded). Mirrors are
//   tried only while the caller's deadline has not passed;
// - at most `max_concurrent_per_registry` requests are in flight per
//   (registry, origin) pair: registries served by one mirror each get their
//   own slots there, so one slow or hostile registry cannot take the slots
//   another registry's requests need (the mirror may see that many per
//   registry);
// - one GET per blob in flight (single flight): a FetchBlob of a blob that
//   another caller of this client is fetching from the same registry and
//   repository waits for that fetch's verified bytes instead of asking
//   again (a compatibility spec attached to every entry of an index is one
//   blob, fetched once). The outcome is shared only with the callers that
//   waited for it and kept nowhere else (the cache keeps what it kept
//   before); a failure of the first caller's own making, its smaller
//   `max_bytes` or its earlier deadline, is not shared: the waiter then
//   fetches the blob itself. A waiter waits until its own deadline at most;
// - errors name the operation, the URL (never a credential), the digest or
//   the limit; text the registry chose (error codes, realms, redirect
//   targets) is escaped (EscapeRemoteText) before it reaches a message.
//
// Credentials: a call's `creds` when non-null (an empty set means anonymous),
// otherwise the Docker config.json entry for the registry.
//
// Deadlines: every request path takes `deadline` (absl::InfiniteFuture():
// only request_timeout bounds each request); a caller with a budget passes
// its end, and gets DeadlineExceeded once it has passed.
//
// Thread-safe: one client may serve many threads (and should: tokens,
// connections and the referrers modes are shared).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "oci/clock.h"
#include "oci/media_types.h"
#include "registry/auth.h"
#include "registry/cache.h"
#include "registry/hosts.h"
#include "registry/http.h"
#include "registry/reference.h"

namespace imgsel::registry {

struct ClientOptions {
  std::string hosts_dir;      // containerd certs.d; empty: none
  std::string docker_config;  // config.json path; empty: the default location
  bool use_docker_config = true;
  bool plain_http = false;  // default server over http:// (hosts.toml may say so per host)
  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration request_timeout = absl::Seconds(30);
  int max_concurrent_per_registry = 128;  // config/config.h: why 128
  int max_redirects = 5;
  size_t max_manifest_bytes = 4 << 20;
  size_t max_blob_bytes = 1 << 20;  // compatibility layers
  absl::Duration referrers_ttl = absl::Minutes(10);
  // Ages the referrers modes and tokens the client remembers (oci/clock.h);
  // not owned, outlives the client. Request deadlines are real time.
  const Clock* clock = &Clock::Real();
  DiskCache* cache = nullptr;  // not owned; must outlive the client; null: no cache
};

struct Manifest {
  // The media type the registry's Content-Type names; empty when it names
  // none (or a generic JSON type) and on a cache hit. The document's own
  // mediaType is then read by whoever parses it (ParseIndex does on every
  // pull: reading it here too would parse the document twice).
  std::string media_type;
  std::string digest;  // verified: the bytes hash to it
  std::string bytes;
};

class RegistryClient {
 public:
  // Reads the Docker config (an unreadable explicit path is an error).
  static absl::StatusOr<std::unique_ptr<RegistryClient>> Create(ClientOptions options);
  ~RegistryClient();

  // The manifest (or index) a reference names: by digest when pinned (zero
  // requests on a warm cache), else one GET of the tag.
  absl::StatusOr<Manifest> Resolve(const Reference& ref, const Credentials* creds = nullptr,
                                   absl::Time deadline = absl::InfiniteFuture());

  // A manifest by digest: cache first, then the registry; verified, capped.
  absl::StatusOr<Manifest> FetchManifest(const Reference& repo, absl::string_view digest,
                                         const Credentials* creds = nullptr,
                                         absl::Time deadline = absl::InfiniteFuture());

  // A blob by digest: cache first, then a fetch under way for the same blob
  // (single flight, above), then the registry; `max_bytes` 0 means
  // max_blob_bytes.
  absl::StatusOr<std::string> FetchBlob(const Reference& repo, absl::string_view digest,
                                        size_t max_bytes = 0, const Credentials* creds = nullptr,
                                        absl::Time deadline = absl::InfiniteFuture());

  // Uploads a blob unless the registry has it already; returns its digest.
  absl::StatusOr<std::string> PushBlob(const Reference& repo, absl::string_view bytes,
                                       const Credentials* creds = nullptr,
                                       absl::Time deadline = absl::InfiniteFuture());

  // PUTs a manifest under `tag_or_digest` (empty: its digest); returns its digest.
  absl::StatusOr<std::string> PushManifest(const Reference& repo, absl::string_view media_type,
                                           absl::string_view bytes,
                                           absl::string_view tag_or_digest = "",
                                           const Credentials* creds = nullptr,
                                           absl::Time deadline = absl::InfiniteFuture());

  // Low level, for referrers: GET <api_root>/<path_and_query> (path after
  // "/v2/") with auth, redirects and mirrors applied; any HTTP status is
  // returned as a response (its `url` the one that answered), only
  // transport failures as errors.
  absl::StatusOr<HttpResponse> Get(const Reference& repo, absl::string_view path_and_query,
                                   absl::string_view accept, size_t max_bytes,
                                   const Credentials* creds = nullptr,
                                   absl::Time deadline = absl::InfiniteFuture());

  // HTTP exchanges made so far, token requests included.
  int64_t round_trips() const { return round_trips_.load(); }

  // A request not answered yet: waiting for a slot or for its answer.
  struct PendingRequest {
    std::string what;  // "GET http://host/v2/repo/manifests/tag", no query (no secrets)
    absl::Time since;  // real time it was started
  };
  // Whether requests started from now on are listed by Pending(). Off by
  // default: only a terminal reads the list (the CLI's wait notice), and
  // keeping it costs every request a lock and a formatted URL.
  void TrackPending(bool on) { track_pending_.store(on); }
  // The tracked requests not answered yet, oldest first (a terminal says
  // what a long wait is waiting for); empty while tracking is off.
  std::vector<PendingRequest> Pending() const;
  // How many (registry, origin) request-slot sets the client holds. Every
  // registry a pod spec names adds one; past kMaxIdleLimiters the idle ones
  // (no request holding or waiting for a slot) are dropped, so the count
  // stays at most kMaxIdleLimiters plus those in use.
  size_t request_limiters() const;
  static constexpr size_t kMaxIdleLimiters = 4096;
  // Callers now waiting for another caller's fetch of the same blob (a
  // terminal, or a test, sees the single flight at work).
  int blob_fetch_waiters() const;
  DiskCache* cache() const { return options_.cache; }
  const ClientOptions& options() const { return options_; }

  // What a registry answered to the referrers API for one repository:
  // remembered per registry and repository for referrers_ttl, never longer
  // (an answer about one repository, a 404 for one that does not exist
  // say, says nothing of the others). kUnknown when nothing is remembered.
  enum class ReferrersMode { kUnknown, kApi, kTagSchema };
  ReferrersMode referrers_mode(const Reference& repo) const;
  void set_referrers_mode(const Reference& repo, ReferrersMode mode);

 private:
  struct Call;
  class Limiter;
  struct BlobFlight;  // client_pull.cc
  explicit RegistryClient(ClientOptions options, DockerConfig docker_config);

  absl::StatusOr<HttpResponse> Exchange(const Reference& repo, Call& call,
                                        const Credentials* creds);
  absl::StatusOr<HttpResponse> ExchangeWith(const RegistryEndpoint& ep, const Reference& repo,
                                            Call& call, const Credentials& creds);
  // One HTTP exchange for `registry`, in one of its (registry, origin) slots,
  // within `deadline`.
  absl::StatusOr<HttpResponse> Send(HttpRequest request, absl::string_view registry,
                                    absl::Time deadline);
  struct Token {
    std::string value;
    absl::Duration lifetime;
  };
  absl::StatusOr<Token> FetchToken(const Challenge& challenge, const std::string& url,
                                   const Credentials& creds, const TlsOptions& tls,
                                   absl::string_view registry, absl::Time deadline);
  // FetchBlob's request: one GET, the bytes verified and cached.
  absl::StatusOr<std::string> DownloadBlob(const Reference& repo, absl::string_view digest,
                                           size_t max_bytes, const Credentials* creds,
                                           absl::Time deadline);
  absl::StatusOr<Manifest> GetManifest(const Reference& repo, absl::string_view reference,
                                       absl::string_view digest, const Credentials* creds,
                                       absl::Time deadline);
  // Shared with the map: one dropped from the map while a request holds it
  // lives until that request ends.
  std::shared_ptr<Limiter> LimiterFor(absl::string_view registry, absl::string_view origin);
  Credentials CredentialsFor(const Reference& repo, const Credentials* creds) const;

  ClientOptions options_;
  DockerConfig docker_config_;
  HttpTransport transport_;
  TokenCache tokens_;
  std::atomic<int64_t> round_trips_{0};
  std::atomic<bool> track_pending_{false};  // TrackPending
  // By a number Send gives each tracked request; as many as are in flight.
  std::atomic<uint64_t> next_pending_{0};
  absl::flat_hash_map<uint64_t, PendingRequest> pending_ ABSL_GUARDED_BY(mu_);

  mutable absl::Mutex mu_;
  // By "registry|origin".
  absl::flat_hash_map<std::string, std::shared_ptr<Limiter>> limiters_ ABSL_GUARDED_BY(mu_);
  // Origins that answered with a Basic challenge: credentials go up front.
  // At most kMaxRememberedOrigins; past it all are forgotten (each costs one
  // more 401 round trip to learn again).
  absl::flat_hash_map<std::string, bool> basic_origins_ ABSL_GUARDED_BY(mu_);
  struct RememberedMode {
    ReferrersMode mode;
    absl::Time stamped;  // by options_.clock
  };
  // By "registry/repository"; bounded (kMaxRememberedModes in client.cc).
  absl::flat_hash_map<std::string, RememberedMode> referrers_modes_ ABSL_GUARDED_BY(mu_);

  // Blob fetches under way by "registry/repository@digest": one entry per
  // GET in flight, so bounded as the requests are; an entry goes when its
  // fetch ends. A mutex of its own: waiters wake on it alone.
  mutable absl::Mutex flights_mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<BlobFlight>> blob_flights_
      ABSL_GUARDED_BY(flights_mu_);
  int blob_fetch_waiters_ ABSL_GUARDED_BY(flights_mu_) = 0;
};

// An HTTP answer as a Status: 404 NotFound, 401 Unauthenticated, 403
// PermissionDenied, 429 ResourceExhausted, 5xx Unavailable, naming `what`
// and the registry's error code when it gave one.
absl::Status StatusFromHttp(const HttpResponse& response, absl::string_view what);

// A manifest media type from a Content-Type header: its value without
// parameters, or empty for none, a generic JSON or a text type.
std::string MediaTypeFromContentType(const std::string* content_type);

}  // namespace imgsel::registry
