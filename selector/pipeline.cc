#include "selector/pipeline.h"

#include <algorithm>
#include <future>
#include <set>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "matcher/compat_spec.h"
#include "registry/cache.h"
#include "registry/client.h"
#include "registry/reference.h"
#include "registry/referrers.h"
#include "selector/config_platform.h"
#include "selector/memory_gate.h"
#include "selector/oci_layout.h"
#include "selector/selection_stage.h"
#include "selector/spec_cache.h"

namespace imgsel {
namespace {

const std::vector<std::string>& ArtifactTypes() {
  static const auto* types = new std::vector<std::string>{
      std::string(registry::kNfdArtifactType), std::string(registry::kOciCompatArtifactType)};
  return *types;
}

const std::vector<std::string>& LayerTypes() {
  static const auto* types = new std::vector<std::string>{
      std::string(registry::kNfdSpecLayerType), std::string(registry::kOciCompatNfdLayerType),
      std::string(registry::kOciCompatSpecLayerType)};
  return *types;
}

// At most this many artifacts are fetched for one selection.
constexpr size_t kMaxArtifactsPerSelection = 64;

absl::StatusOr<CompatArtifact> FetchAndParse(registry::ReferrersClient& referrers,
                                             const registry::Reference& ref,
                                             const registry::ArtifactDescriptor& desc,
                                             const registry::Credentials* creds) {
  auto art = referrers.FetchArtifact(ref, desc, LayerTypes(), creds);
  if (!art.ok()) return art.status();
  CompatArtifact out;
  out.id = art->digest;
  out.kind = art->artifact_type;
  for (const auto& [k, v] : art->annotations) out.annotations[k] = v;
  for (const registry::ArtifactLayer& layer : art->layers) {
    auto format = SpecFormatForMediaType(layer.media_type);
    if (!format) continue;  // not a layer type imgsel understands
    // Parsed once per layer, failures included, however many pulls ask.
    SpecCache::Outcome parsed = SpecCache::Shared().Get(layer.digest, *format, layer.bytes);
    if (!parsed->ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "artifact ", art->digest, " layer ", layer.digest, ": ", parsed->status().message()));
    }
    CompatSpec copy = **parsed;
    for (const auto& [k, v] : layer.annotations) {
      if (k == "name") copy.name = v;
    }
    out.specs.push_back(std::move(copy));
  }
  if (out.specs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("artifact ", art->digest, ": no layer of a compatibility media type"));
  }
  return out;
}

}  // namespace

struct SelectionPipeline::Memo {
  using Artifacts = std::shared_ptr<const std::vector<registry::ArtifactDescriptor>>;
  struct Listing {
    absl::Time expires;
    Artifacts artifacts;
  };
  static constexpr size_t kMaxEntries = 4096;

  absl::Mutex mu;
  absl::flat_hash_map<std::string, Listing> listings ABSL_GUARDED_BY(mu);
  // Parsed artifacts by digest: content-addressed, the same for every host.
  absl::flat_hash_map<std::string, std::shared_ptr<const CompatArtifact>> artifacts
      ABSL_GUARDED_BY(mu);
};

SelectionPipeline::SelectionPipeline(std::shared_ptr<const Config> config, HostProfile host)
    : config_(std::move(config)),
      host_(std::move(host)),
      memo_(std::make_unique<Memo>()),
      evaluations_(std::make_unique<EvaluationMemo>(host_)),
      referrers_ttl_(config_->compat.referrers_ttl) {}

SelectionPipeline::~SelectionPipeline() = default;

absl::StatusOr<std::unique_ptr<SelectionPipeline>> SelectionPipeline::Create(Config config,
                                                                             HostProfile host) {
  auto shared = std::make_shared<const Config>(std::move(config));
  std::unique_ptr<SelectionPipeline> p(new SelectionPipeline(shared, std::move(host)));
  if (!shared->compat.cache_dir.empty()) {
    registry::CacheOptions cache;
    cache.dir = shared->compat.cache_dir;
    cache.max_bytes = shared->compat.cache_max_bytes;
    auto opened = registry::DiskCache::Open(cache);
    if (!opened.ok()) return opened.status();
    p->cache_ = *std::move(opened);
  }
  registry::ClientOptions options;
  options.hosts_dir = shared->registry.config_path;
  options.docker_config = shared->registry.docker_config;
  options.connect_timeout = shared->registry.connect_timeout;
  options.request_timeout = shared->registry.request_timeout;
  options.max_concurrent_per_registry = shared->registry.max_concurrent_per_registry;
  options.max_blob_bytes = static_cast<size_t>(shared->compat.max_layer_bytes);
  options.referrers_ttl = shared->compat.referrers_ttl;
  options.cache = p->cache_.get();
  auto client = registry::RegistryClient::Create(options);
  if (!client.ok()) return client.status();
  p->client_ = *std::move(client);
  return p;
}

std::shared_ptr<const Config> SelectionPipeline::config() const {
  absl::MutexLock lock(&mu_);
  return config_;
}

void SelectionPipeline::Reload(Config config) {
  auto shared = std::make_shared<const Config>(std::move(config));
  absl::MutexLock lock(&mu_);
  config_ = std::move(shared);
}

namespace {

// The stage-marked error of a budget that ran out `step`.
absl::Status OutOfTime(absl::Duration budget, absl::string_view step) {
  return AtStage(absl::DeadlineExceededError(absl::StrCat(
                     "selection budget of ", absl::FormatDuration(budget), " ran out ", step)),
                 SelectionStage::kBudget);
}

}  // namespace

absl::StatusOr<FetchedImage> FetchLocalImage(const SelectionRequest& request) {
  FetchedImage image;
  image.reference = request.reference;
  const ParseLimits limits;
  std::string name;
  absl::string_view bytes;
  std::string owned;  // a layout's document (ParseIndex copies what it keeps)
  if (request.layout.has_value()) {
    auto doc = ReadOciLayout(*request.layout, limits.max_bytes);
    if (!doc.ok()) return AtStage(doc.status(), SelectionStage::kResolve);
    image.document_digest = doc->digest;
    image.document_media_type = doc->media_type;
    name = absl::StrCat(request.reference, " (", doc->digest, ")");
    owned = std::move(doc->bytes);
    bytes = owned;
  } else {
    // The caller's bytes, not copied; empty ones are a document ParseIndex
    // refuses in its own words.
    bytes = request.index_bytes;
    name = request.reference.empty() ? "index" : request.reference;
  }
  auto index = ParseIndex(bytes, name, limits);
  if (!index.ok()) return AtStage(index.status(), SelectionStage::kIndex);
  image.index = *std::move(index);
  if (image.document_media_type.empty()) {
    image.document_media_type = std::string(image.index.media_type);
  }
  // Entries without a platform: their configs decide, as in containerd.
  if (request.layout.has_value() && image.index.kind != DocumentKind::kManifest &&
      HasPlatformlessImages(image.index)) {
    auto read = [&](absl::string_view digest, size_t max_bytes) {
      return ReadLayoutBlob(request.layout->dir, digest, max_bytes);
    };
    image.config_platforms = ReadConfigPlatforms(image.index, read, read);
  }
  return image;
}

absl::StatusOr<FetchedImage> SelectionPipeline::Fetch(
    const SelectionRequest& request, absl::Span<const HostProfile* const> hosts) const {
  return FetchWith(request, hosts, *config());
}

absl::StatusOr<FetchedImage> SelectionPipeline::FetchWith(
    const SelectionRequest& request, absl::Span<const HostProfile* const> hosts,
    const Config& config) const {
  if (request.layout.has_value() || !request.index_bytes.empty()) return FetchLocalImage(request);
  const HostProfile* const own[] = {request.host != nullptr ? request.host : &host_};
  if (hosts.empty()) hosts = own;
  const absl::Time start = absl::Now();
  const absl::Time deadline =
      request.budget == absl::InfiniteDuration() ? absl::InfiniteFuture() : start + request.budget;
  auto out_of_time = [&](absl::string_view step) { return OutOfTime(request.budget, step); };
  const int64_t trips_before = client_->round_trips();

  FetchedImage image;
  image.deadline = deadline;
  if (request.parsed_reference.has_value()) {
    image.registry_reference = *request.parsed_reference;
  } else {
    auto parsed = registry::ParseReference(request.reference);
    if (!parsed.ok()) return AtStage(parsed.status(), SelectionStage::kRequest);
    image.registry_reference = *std::move(parsed);
  }
  const registry::Reference& ref = *image.registry_reference;
  image.reference = ref.String();
  image.repository = ref.Name();
  image.tag = ref.tag;
  auto manifest = client_->Resolve(ref, request.credentials, deadline);
  if (!manifest.ok()) {
    // The registry ran into the selection's deadline: say so as every
    // other step does, with what the registry was doing.
    if (absl::Now() >= deadline ||
        manifest.status().code() == absl::StatusCode::kDeadlineExceeded) {
      return out_of_time(
          absl::StrCat("resolving ", image.reference, " (", manifest.status().message(), ")"));
    }
    return AtStage(
        absl::Status(manifest.status().code(),
                     absl::StrCat("resolve ", image.reference, ": ", manifest.status().message())),
        SelectionStage::kResolve);
  }
  image.document_digest = manifest->digest;
  image.document_media_type = manifest->media_type;
  // A large index takes its share of the memory budget before it is read
  // (memory_gate.h); index bytes a caller hands in were gated by it.
  auto share = MemoryGate::Process().Acquire(manifest->bytes.size(), deadline);
  if (!share.ok()) return AtStage(share.status(), SelectionStage::kMemory);
  // Held by the Selection: what is built from the index (the decision, an
  // answer, its JSON) is counted until the caller lets the Selection go.
  image.memory_share = std::make_shared<MemoryGate::Share>(*std::move(share));
  if (absl::Now() > deadline) return out_of_time("after resolving the reference");

  // ParseIndex copies what it keeps: the document goes with this frame.
  auto index = ParseIndex(manifest->bytes, image.reference);
  if (!index.ok()) return AtStage(index.status(), SelectionStage::kIndex);
  image.index = *std::move(index);
  const Policy policy = config.PolicyFor(request.runtime_handler);
  SelectOptions options;
  options.kind = request.policy;
  // Entries without a platform: their configs decide, as in containerd
  // (only indexes that have such entries cost a request).
  if (image.index.kind != DocumentKind::kManifest && HasPlatformlessImages(image.index)) {
    auto read_manifest = [&](absl::string_view digest,
                             size_t max_bytes) -> absl::StatusOr<std::string> {
      auto m = client_->FetchManifest(ref, digest, request.credentials, deadline);
      if (!m.ok()) return m.status();
      if (m->bytes.size() > max_bytes) return absl::ResourceExhaustedError("manifest too large");
      return std::move(m->bytes);
    };
    auto read_blob = [&](absl::string_view digest, size_t max_bytes) {
      return client_->FetchBlob(ref, digest, max_bytes, request.credentials, deadline);
    };
    image.config_platforms = ReadConfigPlatforms(image.index, read_manifest, read_blob);
    options.config_platforms = &image.config_platforms;
    if (absl::Now() > deadline)
      return out_of_time("while reading configs of entries without platform");
  }
  image.artifacts_looked_up = image.index.kind != DocumentKind::kManifest &&
                              config.compat.enabled && request.policy == PolicyKind::kBest;
  if (!image.artifacts_looked_up) {
    image.round_trips = client_->round_trips() - trips_before;
    return image;
  }

  // Only entries that can win on some host need their artifacts.
  std::vector<std::string> subjects;
  if (!image.document_digest.empty()) subjects.push_back(image.document_digest);
  std::set<std::string> seen(subjects.begin(), subjects.end());
  for (const HostProfile* host : hosts) {
    for (size_t position : EligibleEntries(image.index, *host, policy, options)) {
      std::string digest(image.index.manifests[position].digest);
      if (seen.insert(digest).second) subjects.push_back(std::move(digest));
    }
  }
  registry::ReferrersClient referrers(client_.get(), deadline);
  const std::string repo_key = ref.Name();
  const absl::Time now = absl::Now();

  // Referrers lists: memory first, the rest from the client (disk cache or
  // registry, subjects in parallel).
  std::map<std::string, Memo::Artifacts> listings;
  std::vector<std::string> missing;
  {
    absl::MutexLock lock(&memo_->mu);
    for (const std::string& subject : subjects) {
      auto it = memo_->listings.find(absl::StrCat(repo_key, "@", subject));
      if (it != memo_->listings.end() && it->second.expires > now) {
        listings[subject] = it->second.artifacts;
      } else {
        missing.push_back(subject);
      }
    }
  }
  // The entry that wins unless an artifact says otherwise: while the
  // referrers are listed, its manifest and config travel alongside. With
  // every list in memory the decision comes at once, and the content is
  // fetched after it (Select), never for an entry an artifact rules out.
  // Joined before Fetch returns: every request in it ends by `deadline`.
  std::future<std::vector<VerifiedBlob>> prefetch;
  struct JoinPrefetch {
    std::future<std::vector<VerifiedBlob>>& f;
    ~JoinPrefetch() {
      if (f.valid()) f.wait();
    }
  } join_prefetch{prefetch};
  if (request.fetch_chosen_content && !missing.empty()) {
    // A guess, so the one extra ranking (pipeline.h): the index without
    // artifacts, for the first host.
    const Decision guess = imgsel::Select(image.index, *hosts.front(), policy, options);
    if (const Descriptor* likely = guess.selected_descriptor()) {
      image.fetched_ahead = true;
      prefetch = std::async(std::launch::async, FetchImageContent, std::ref(*client_),
                            std::cref(ref), likely->media_type, likely->digest, likely->size,
                            request.credentials, deadline);
    }
  }
  auto note_failure = [&](std::string why) {
    if (config.compat.fallback_on_error) {
      image.artifact_failure = std::move(why);
    } else {
      image.warnings.push_back(absl::StrCat(why, " (ignored: [compat] on_error = \"ignore\")"));
    }
  };
  if (!missing.empty()) {
    std::vector<registry::SubjectReferrers> lists =
        referrers.List(ref, missing, ArtifactTypes(), request.credentials);
    absl::MutexLock lock(&memo_->mu);
    if (memo_->listings.size() >= Memo::kMaxEntries) memo_->listings.clear();
    for (auto& list : lists) {
      if (!list.status.ok()) {
        note_failure(absl::StrCat("referrers of ", list.subject, ": ", list.status.message()));
        continue;
      }
      auto shared = std::make_shared<const std::vector<registry::ArtifactDescriptor>>(
          std::move(list.artifacts));
      memo_->listings[absl::StrCat(repo_key, "@", list.subject)] = {now + referrers_ttl_, shared};
      listings[list.subject] = std::move(shared);
    }
  }
  if (absl::Now() > deadline) return out_of_time("while listing compatibility artifacts");

  // The newest artifact of each type per subject; parsed artifacts from
  // memory, the rest fetched (in parallel when more than one) and parsed.
  struct Wanted {
    std::string subject;
    const registry::ArtifactDescriptor& desc;  // kept alive by `listings`
    std::shared_ptr<const CompatArtifact> artifact;
  };
  std::vector<Wanted> wanted;
  for (const auto& [subject, artifacts] : listings) {
    if (artifacts->empty()) continue;
    const std::vector<registry::ArtifactDescriptor>& list = *artifacts;
    const std::vector<size_t> newest = registry::NewestOfEachType(list);
    for (size_t i : newest) {
      if (wanted.size() < kMaxArtifactsPerSelection) wanted.push_back({subject, list[i], nullptr});
    }
  }
  std::vector<size_t> to_fetch;
  {
    absl::MutexLock lock(&memo_->mu);
    for (size_t i = 0; i < wanted.size(); ++i) {
      auto it = memo_->artifacts.find(wanted[i].desc.digest);
      if (it != memo_->artifacts.end()) {
        wanted[i].artifact = it->second;
      } else {
        to_fetch.push_back(i);
      }
    }
  }
  auto fetch = [&](size_t i) {
    return FetchAndParse(referrers, ref, wanted[i].desc, request.credentials);
  };
  std::vector<absl::StatusOr<CompatArtifact>> fetched_artifacts;
  if (to_fetch.size() == 1) {
    fetched_artifacts.push_back(fetch(to_fetch[0]));
  } else if (!to_fetch.empty()) {
    std::vector<std::future<absl::StatusOr<CompatArtifact>>> futures;
    futures.reserve(to_fetch.size());
    fetched_artifacts.reserve(to_fetch.size());
    for (size_t i : to_fetch) futures.push_back(std::async(std::launch::async, fetch, i));
    for (auto& f : futures) fetched_artifacts.push_back(f.get());
  }
  for (size_t k = 0; k < to_fetch.size(); ++k) {
    Wanted& w = wanted[to_fetch[k]];
    if (!fetched_artifacts[k].ok()) {
      note_failure(std::string(fetched_artifacts[k].status().message()));
      continue;
    }
    w.artifact = std::make_shared<const CompatArtifact>(*std::move(fetched_artifacts[k]));
    absl::MutexLock lock(&memo_->mu);
    if (memo_->artifacts.size() >= Memo::kMaxEntries) memo_->artifacts.clear();
    memo_->artifacts[w.desc.digest] = w.artifact;
  }
  if (absl::Now() > deadline) return out_of_time("while fetching compatibility artifacts");
  for (Wanted& w : wanted) {
    if (w.artifact != nullptr) image.artifacts[w.subject].push_back(std::move(w.artifact));
  }
  if (prefetch.valid()) image.content_fetched_ahead = prefetch.get();
  image.round_trips = client_->round_trips() - trips_before;
  return image;
}

absl::StatusOr<Selection> SelectionPipeline::Select(const SelectionRequest& request) const {
  const absl::Time start = absl::Now();
  const std::shared_ptr<const Config> config = this->config();
  const int64_t trips_before = client_->round_trips();
  const HostProfile& host = request.host != nullptr ? *request.host : host_;
  const HostProfile* const hosts[] = {&host};
  auto image = FetchWith(request, hosts, *config);
  if (!image.ok()) return image.status();
  Selection sel = DecideSelection(*image, host, config->PolicyFor(request.runtime_handler),
                                  request.policy, &host == &host_ ? evaluations_.get() : nullptr);
  const Descriptor* chosen = sel.chosen();
  if (image->fetched_ahead) {
    std::vector<VerifiedBlob>& content = image->content_fetched_ahead;
    if (chosen != nullptr && !content.empty() && content.front().digest == chosen->digest) {
      sel.chosen_content = std::move(content);
    }
  } else if (request.fetch_chosen_content && image->artifacts_looked_up && chosen != nullptr &&
             !sel.decision.fallback) {
    // Decided from memory: the round trips are the ones containerd would
    // make for the same manifest and config, made here instead.
    sel.chosen_content =
        FetchImageContent(*client_, *image->registry_reference, chosen->media_type, chosen->digest,
                          chosen->size, request.credentials, image->deadline);
  }
  sel.round_trips = client_->round_trips() - trips_before;
  sel.elapsed = absl::Now() - start;
  return sel;
}

}  // namespace imgsel
