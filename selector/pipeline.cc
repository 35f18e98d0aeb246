#include "selector/pipeline.h"

#include <algorithm>
#include <future>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "matcher/compat_spec.h"
#include "oci/created.h"
#include "oci/media_types.h"
#include "registry/cache.h"
#include "registry/client.h"
#include "registry/reference.h"
#include "registry/referrers.h"
#include "selector/base_images.h"
#include "selector/config_platform.h"
#include "selector/memory_gate.h"
#include "selector/oci_layout.h"
#include "selector/registry_options.h"
#include "selector/selection_stage.h"
#include "selector/spec_cache.h"

namespace imgsel {
namespace {

const std::vector<std::string>& ArtifactTypes() {
  static const auto* types = new std::vector<std::string>{std::string(kNfdArtifactType),
                                                          std::string(kOciCompatArtifactType)};
  return *types;
}

const std::vector<std::string>& LayerTypes() {
  static const auto* types =
      new std::vector<std::string>(std::begin(kReadableLayerTypes), std::end(kReadableLayerTypes));
  return *types;
}

// At most this many artifact manifests are read for one selection.
constexpr size_t kMaxArtifactsPerSelection = 64;
// What is kept of one manifest's unread media types (they only name
// themselves in explanations).
constexpr size_t kMaxNotReadListed = 8;

// What the pipeline keeps of an artifact manifest: its kind (matcher's
// ArtifactKind), the media types it does not read, its creation time, and
// the layers to fetch should it be the newest of its kind. An artifact is
// content-addressed, so this is kept for good, like its evaluation.
struct ArtifactShape {
  registry::ArtifactManifest manifest;  // layers: the readable ones only
  std::string kind;                     // empty: nothing imgsel reads
  std::vector<std::string> not_read;
  std::optional<absl::Time> created;
};

absl::StatusOr<ArtifactShape> FetchShape(registry::ReferrersClient& referrers,
                                         const registry::Reference& ref,
                                         const registry::ArtifactDescriptor& desc,
                                         const registry::Credentials* creds) {
  auto manifest = referrers.FetchArtifactManifest(ref, desc, creds);
  if (!manifest.ok()) return manifest.status();
  ArtifactShape shape;
  std::vector<std::string> media_types;
  for (const registry::ArtifactLayerDescriptor& l : manifest->layers) {
    media_types.push_back(l.media_type);
  }
  shape.kind = ArtifactKind(manifest->artifact_type, media_types);
  shape.not_read = UnreadMediaTypes(media_types);
  if (shape.not_read.size() > kMaxNotReadListed) shape.not_read.resize(kMaxNotReadListed);
  shape.created = ArtifactCreated([&](absl::string_view key) -> std::optional<absl::string_view> {
    for (const auto& [k, v] : manifest->annotations) {
      if (k == key) return absl::string_view(v);
    }
    return std::nullopt;
  });
  // Past the per-artifact layer cap the fetch fails anyway: one more keeps
  // that failure without keeping a hostile manifest's every layer.
  std::vector<registry::ArtifactLayerDescriptor> readable;
  for (registry::ArtifactLayerDescriptor& l : manifest->layers) {
    if (readable.size() > static_cast<size_t>(registry::kMaxArtifactLayers)) break;
    if (SpecFormatForMediaType(l.media_type)) readable.push_back(std::move(l));
  }
  manifest->layers = std::move(readable);
  manifest->annotations.clear();  // the creation time is kept above
  shape.manifest = *std::move(manifest);
  return shape;
}

absl::StatusOr<CompatArtifact> FetchAndParse(registry::ReferrersClient& referrers,
                                             const registry::Reference& ref,
                                             const ArtifactShape& shape,
                                             const registry::Credentials* creds) {
  auto art = referrers.FetchArtifactLayers(ref, shape.manifest, LayerTypes(), creds);
  if (!art.ok()) return art.status();
  CompatArtifact out;
  out.id = art->digest;
  out.kind = shape.kind;
  out.not_read = shape.not_read;
  for (const auto& [k, v] : art->annotations) out.annotations[k] = v;
  for (const registry::ArtifactLayer& layer : art->layers) {
    auto format = SpecFormatForMediaType(layer.media_type);
    if (!format) continue;  // not a layer type imgsel understands
    // Parsed once per layer, failures included, however many pulls ask.
    SpecCache::Outcome parsed = SpecCache::Shared().Get(layer.digest, *format, layer.bytes,
                                                        IsJsonMediaType(layer.media_type));
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
  return out;
}

// fn(i) for i in [0, n): at once when n is 1, else one thread each (n is
// bounded by the caller); results in order.
template <typename Fn>
auto InParallel(size_t n, Fn fn) -> std::vector<decltype(fn(size_t{0}))> {
  using Result = decltype(fn(size_t{0}));
  std::vector<Result> out;
  out.reserve(n);
  if (n == 1) {
    out.push_back(fn(0));
    return out;
  }
  std::vector<std::future<Result>> futures;
  futures.reserve(n);
  for (size_t i = 0; i < n; ++i) futures.push_back(std::async(std::launch::async, fn, i));
  for (auto& f : futures) out.push_back(f.get());
  return out;
}

}  // namespace

struct SelectionPipeline::Memo {
  using Artifacts = std::shared_ptr<const std::vector<registry::ArtifactDescriptor>>;
  struct Listing {
    absl::Time stamped;  // by the pipeline's clock
    Artifacts artifacts;
  };
  static constexpr size_t kMaxEntries = 4096;

  absl::Mutex mu;
  absl::flat_hash_map<std::string, Listing> listings ABSL_GUARDED_BY(mu);
  // Parsed artifacts by digest: content-addressed, the same for every host.
  absl::flat_hash_map<std::string, std::shared_ptr<const CompatArtifact>> artifacts
      ABSL_GUARDED_BY(mu);
  // By artifact digest: what its manifest says (kind, layers to fetch).
  absl::flat_hash_map<std::string, std::shared_ptr<const ArtifactShape>> shapes ABSL_GUARDED_BY(mu);
  // Entry and base image documents by "<repository>@<digest>", parsed:
  // what their base annotations say (base_images.h). Bounded apart: each
  // holds its document.
  static constexpr size_t kMaxDocuments = 1024;
  absl::flat_hash_map<std::string, ParsedIndex> documents ABSL_GUARDED_BY(mu);
};

SelectionPipeline::SelectionPipeline(std::shared_ptr<const Config> config, HostProfile host)
    : config_(std::move(config)),
      host_(std::move(host)),
      memo_(std::make_unique<Memo>()),
      evaluations_(std::make_unique<EvaluationMemo>(host_)),
      referrers_ttl_(config_->compat.referrers_ttl) {}

SelectionPipeline::~SelectionPipeline() = default;

absl::StatusOr<std::unique_ptr<SelectionPipeline>> SelectionPipeline::Create(Config config,
                                                                             HostProfile host,
                                                                             const Clock* clock) {
  auto shared = std::make_shared<const Config>(std::move(config));
  std::unique_ptr<SelectionPipeline> p(new SelectionPipeline(shared, std::move(host)));
  p->clock_ = clock;
  if (!shared->compat.cache_dir.empty()) {
    registry::CacheOptions cache;
    cache.clock = clock;
    cache.dir = shared->compat.cache_dir;
    cache.max_bytes = shared->compat.cache_max_bytes;
    // The cache only saves registry round trips: a directory that cannot be
    // set up (read-only, full, not permitted) leaves the pipeline without
    // it, said in cache_warning(), rather than without selections at all.
    auto opened = registry::DiskCache::Open(cache);
    if (opened.ok()) {
      p->cache_ = *std::move(opened);
    } else {
      p->cache_warning_ = absl::StrCat("[compat] cache_dir: ", opened.status().message(),
                                       "; running without a disk cache");
    }
  }
  registry::ClientOptions options = RegistryClientOptions(shared->registry);
  options.max_blob_bytes = static_cast<size_t>(shared->compat.max_layer_bytes);
  options.referrers_ttl = shared->compat.referrers_ttl;
  options.cache = p->cache_.get();
  options.clock = clock;
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
  // A registry that named no media type: the document's, by its shape if it
  // declares none.
  if (image.document_media_type.empty()) {
    image.document_media_type = std::string(DocumentMediaType(image.index));
  }
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
  image.groups = config.compat.groups;
  image.artifacts_looked_up = image.index.kind != DocumentKind::kManifest &&
                              config.compat.enabled && request.policy == PolicyKind::kBest;
  if (!image.artifacts_looked_up) {
    image.round_trips = client_->round_trips() - trips_before;
    return image;
  }

  // Only entries that can win on some host need their artifacts.
  std::vector<std::string> subjects;
  std::vector<BaseChains::Entry> entries;  // whose base images are followed
  if (!image.document_digest.empty()) subjects.push_back(image.document_digest);
  std::set<std::string> seen(subjects.begin(), subjects.end());
  for (const HostProfile* host : hosts) {
    for (size_t position : EligibleEntries(image.index, *host, policy, options)) {
      const Descriptor& entry = image.index.manifests[position];
      std::string digest(entry.digest);
      if (!seen.insert(digest).second) continue;
      subjects.push_back(digest);
      Platform platform;
      if (entry.platform) {
        platform = entry.platform->ToPlatform();
      } else if (auto it = image.config_platforms.find(digest);
                 it != image.config_platforms.end()) {
        platform = it->second;
      }
      if (config.compat.base_images) entries.push_back({std::move(digest), std::move(platform)});
    }
  }
  registry::ReferrersClient referrers(client_.get(), deadline);
  const absl::Time now = clock_->Now();

  // Where each subject is listed, by its key in image.artifacts: the
  // image's own by digest, a base image's as "<repository>@<digest>" in its
  // own repository. The pull's credentials go only to the image's own
  // registry; a base on another gets what the Docker config holds for it.
  struct Source {
    registry::Reference repo;
    std::string digest;
    const registry::Credentials* creds = nullptr;
  };
  std::map<std::string, Source> sources;
  std::vector<std::string> subject_order;  // the image's own first
  for (const std::string& subject : subjects) {
    sources[subject] = {ref, subject, request.credentials};
    subject_order.push_back(subject);
  }
  auto credentials_for = [&](const registry::Reference& repo) {
    return repo.registry == ref.registry ? request.credentials : nullptr;
  };

  // Referrers lists: memory first, the rest from the client (disk cache or
  // registry, subjects in parallel).
  std::map<std::string, Memo::Artifacts> listings;
  auto not_in_memory = [&](const std::vector<std::string>& keys) {
    std::vector<std::string> missing;
    absl::MutexLock lock(&memo_->mu);
    for (const std::string& key : keys) {
      const Source& source = sources.at(key);
      auto it = memo_->listings.find(absl::StrCat(source.repo.Name(), "@", source.digest));
      if (it != memo_->listings.end() && FreshAt(it->second.stamped, referrers_ttl_, now)) {
        listings[key] = it->second.artifacts;
      } else {
        missing.push_back(key);
      }
    }
    return missing;
  };
  std::vector<std::string> missing = not_in_memory(subjects);
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
  // The likely winner's manifest, as the prefetch reads it: its base
  // annotations come from these bytes rather than a second GET.
  std::string likely_digest;
  auto likely_manifest = std::make_shared<std::promise<absl::StatusOr<std::string>>>();
  std::shared_future<absl::StatusOr<std::string>> likely_read = likely_manifest->get_future();
  if (request.fetch_chosen_content && !missing.empty()) {
    // A guess, so the one extra ranking (pipeline.h): the index without
    // artifacts, for the first host.
    const Decision guess = imgsel::Select(image.index, *hosts.front(), policy, options);
    if (const Descriptor* likely = guess.selected_descriptor()) {
      image.fetched_ahead = true;
      likely_digest = std::string(likely->digest);
      prefetch =
          std::async(std::launch::async, FetchImageContent, std::ref(*client_), std::cref(ref),
                     likely->media_type, likely->digest, likely->size, request.credentials,
                     deadline, [likely_manifest](absl::StatusOr<std::string> bytes) {
                       likely_manifest->set_value(std::move(bytes));
                     });
    }
  }
  // Called from one thread at a time (the listing's joins order them).
  auto note_failure = [&](std::string why) {
    if (config.compat.fallback_on_error) {
      image.artifact_failure = std::move(why);
    } else {
      image.warnings.push_back(absl::StrCat(why, " (ignored: [compat] on_error = \"ignore\")"));
    }
  };
  // Lists `keys` of `sources`: one ReferrersClient::List per repository,
  // repositories in parallel.
  auto list = [&](const std::vector<std::string>& keys) {
    std::map<std::string, std::vector<std::string>> by_repository;
    for (const std::string& key : keys) by_repository[sources.at(key).repo.Name()].push_back(key);
    std::vector<const std::vector<std::string>*> groups;
    groups.reserve(by_repository.size());
    for (const auto& [name, group] : by_repository) groups.push_back(&group);
    std::vector<std::vector<registry::SubjectReferrers>> lists =
        InParallel(groups.size(), [&](size_t g) {
          const Source& first = sources.at(groups[g]->front());
          std::vector<std::string> digests;
          for (const std::string& key : *groups[g]) digests.push_back(sources.at(key).digest);
          return referrers.List(first.repo, digests, ArtifactTypes(), first.creds);
        });
    absl::MutexLock lock(&memo_->mu);
    if (memo_->listings.size() >= Memo::kMaxEntries) memo_->listings.clear();
    for (size_t g = 0; g < groups.size(); ++g) {
      for (size_t i = 0; i < lists[g].size() && i < groups[g]->size(); ++i) {
        registry::SubjectReferrers& listed = lists[g][i];
        const std::string& key = (*groups[g])[i];
        const Source& source = sources.at(key);
        if (!listed.status.ok()) {
          note_failure(absl::StrCat("referrers of ", key, ": ", listed.status.message()));
          continue;
        }
        auto shared = std::make_shared<const std::vector<registry::ArtifactDescriptor>>(
            std::move(listed.artifacts));
        memo_->listings[absl::StrCat(source.repo.Name(), "@", source.digest)] = {now, shared};
        listings[key] = std::move(shared);
      }
    }
  };
  // Manifests (or indexes) by digest, parsed: memory first (a document
  // addressed by its digest never changes), the rest in parallel.
  auto read_documents = [&](const std::vector<BaseChains::Document>& documents) {
    std::map<std::string, absl::StatusOr<ParsedIndex>> read;
    std::vector<size_t> to_read;
    {
      absl::MutexLock lock(&memo_->mu);
      for (size_t i = 0; i < documents.size(); ++i) {
        auto it = memo_->documents.find(documents[i].key);
        if (it != memo_->documents.end()) {
          read.emplace(documents[i].key, it->second);
        } else {
          to_read.push_back(i);
        }
      }
    }
    std::vector<absl::StatusOr<ParsedIndex>> fetched =
        InParallel(to_read.size(), [&](size_t k) -> absl::StatusOr<ParsedIndex> {
          const BaseChains::Document& d = documents[to_read[k]];
          if (!likely_digest.empty() && d.digest == likely_digest &&
              d.repository.Name() == ref.Name()) {
            // Set by the prefetch once its manifest GET has ended, which
            // the deadline bounds.
            const absl::StatusOr<std::string>& bytes = likely_read.get();
            if (!bytes.ok()) return bytes.status();
            return ParseIndex(*bytes, d.key);
          }
          auto m = client_->FetchManifest(d.repository, d.digest, credentials_for(d.repository),
                                          deadline);
          if (!m.ok()) return m.status();
          return ParseIndex(m->bytes, d.key);
        });
    absl::MutexLock lock(&memo_->mu);
    if (memo_->documents.size() >= Memo::kMaxDocuments) memo_->documents.clear();
    for (size_t k = 0; k < to_read.size(); ++k) {
      if (fetched[k].ok()) memo_->documents[documents[to_read[k]].key] = *fetched[k];
      read.emplace(documents[to_read[k]].key, std::move(fetched[k]));
    }
    return read;
  };
  // One round trip: the referrers of `keys` and the documents the base
  // chains stand at, at once.
  BaseChains chains(ref, entries);
  std::vector<std::string> base_failures;
  auto trip = [&](const std::vector<std::string>& to_list) {
    std::future<void> listing;
    if (!to_list.empty()) listing = std::async(std::launch::async, list, std::cref(to_list));
    auto read = read_documents(chains.Pending());
    if (listing.valid()) listing.get();
    chains.Advance(read, image.warnings, base_failures);
  };
  trip(missing);
  if (absl::Now() > deadline) return out_of_time("while listing compatibility artifacts");
  // Then a round trip per level of base images (base_images.h).
  for (std::vector<BaseChains::Document> bases = chains.Pending(); !bases.empty();
       bases = chains.Pending()) {
    std::vector<std::string> keys;
    for (BaseChains::Document& d : bases) {
      if (sources.count(d.key)) continue;
      const registry::Credentials* creds = credentials_for(d.repository);
      sources[d.key] = {std::move(d.repository), std::move(d.digest), creds};
      subject_order.push_back(d.key);
      keys.push_back(d.key);
    }
    trip(not_in_memory(keys));
    if (absl::Now() > deadline) return out_of_time("while reading base images");
  }
  for (std::string& failure : base_failures) note_failure(std::move(failure));
  image.bases = chains.Subjects();

  // Every listed artifact's kind, from its manifest (memory first: an
  // artifact is content-addressed); then per subject the newest of each
  // kind imgsel reads (matcher's NewestOfEachKind), whose layers alone are
  // fetched and parsed; artifacts with nothing imgsel reads are listed as
  // not read and change nothing.
  struct Listed {
    std::string subject;
    const registry::ArtifactDescriptor& desc;  // kept alive by `listings`
    std::shared_ptr<const ArtifactShape> shape;
  };
  std::vector<Listed> listed;
  size_t over_cap = 0;  // listed past kMaxArtifactsPerSelection
  for (const std::string& subject : subject_order) {
    auto found = listings.find(subject);
    if (found == listings.end()) continue;
    for (const registry::ArtifactDescriptor& desc : *found->second) {
      if (listed.size() == kMaxArtifactsPerSelection) {
        ++over_cap;
        continue;
      }
      listed.push_back({subject, desc, nullptr});
    }
  }
  if (over_cap > 0) {
    image.warnings.push_back(absl::StrCat(over_cap, " compatibility artifacts past the first ",
                                          kMaxArtifactsPerSelection, " not read"));
  }
  std::vector<size_t> to_read;
  {
    absl::MutexLock lock(&memo_->mu);
    for (size_t i = 0; i < listed.size(); ++i) {
      auto it = memo_->shapes.find(listed[i].desc.digest);
      if (it != memo_->shapes.end()) {
        listed[i].shape = it->second;
      } else {
        to_read.push_back(i);
      }
    }
  }
  std::vector<absl::StatusOr<ArtifactShape>> shapes = InParallel(to_read.size(), [&](size_t k) {
    const Source& source = sources.at(listed[to_read[k]].subject);
    return FetchShape(referrers, source.repo, listed[to_read[k]].desc, source.creds);
  });
  for (size_t k = 0; k < to_read.size(); ++k) {
    if (!shapes[k].ok()) {
      note_failure(std::string(shapes[k].status().message()));
      continue;
    }
    auto shape = std::make_shared<const ArtifactShape>(*std::move(shapes[k]));
    absl::MutexLock lock(&memo_->mu);
    if (memo_->shapes.size() >= Memo::kMaxEntries) memo_->shapes.clear();
    memo_->shapes[listed[to_read[k]].desc.digest] = shape;
    listed[to_read[k]].shape = std::move(shape);
  }
  if (absl::Now() > deadline) return out_of_time("while reading compatibility artifacts");
  struct Wanted {
    std::string subject;
    const ArtifactShape& shape;  // kept alive by `listed`
    std::shared_ptr<const CompatArtifact> artifact;
  };
  std::vector<Wanted> wanted;
  std::map<std::string, std::vector<const Listed*>> by_subject;
  for (const Listed& l : listed) {
    if (l.shape != nullptr) by_subject[l.subject].push_back(&l);
  }
  for (const auto& [subject, subject_list] : by_subject) {
    // A reference of its own: a lambda may not capture a structured binding
    // (C++20 as clang 14 reads it).
    const std::vector<const Listed*>& list = subject_list;
    const std::vector<size_t> newest = NewestOfEachKind(
        list.size(), [&](size_t i) -> absl::string_view { return list[i]->shape->kind; },
        [&](size_t i) { return list[i]->shape->created; });
    for (size_t i : newest) wanted.push_back({subject, *list[i]->shape, nullptr});
    for (const Listed* l : list) {
      if (!l->shape->kind.empty()) continue;
      // Not for imgsel: named in the explanation, evaluated as nothing.
      auto unread = std::make_shared<CompatArtifact>();
      unread->id = l->shape->manifest.digest;
      unread->not_read = l->shape->not_read;
      wanted.push_back({subject, *l->shape, std::move(unread)});
    }
  }
  std::vector<size_t> to_fetch;
  {
    absl::MutexLock lock(&memo_->mu);
    for (size_t i = 0; i < wanted.size(); ++i) {
      if (wanted[i].artifact != nullptr) continue;
      auto it = memo_->artifacts.find(wanted[i].shape.manifest.digest);
      if (it != memo_->artifacts.end()) {
        wanted[i].artifact = it->second;
      } else {
        to_fetch.push_back(i);
      }
    }
  }
  std::vector<absl::StatusOr<CompatArtifact>> fetched_artifacts =
      InParallel(to_fetch.size(), [&](size_t k) {
        const Source& source = sources.at(wanted[to_fetch[k]].subject);
        return FetchAndParse(referrers, source.repo, wanted[to_fetch[k]].shape, source.creds);
      });
  for (size_t k = 0; k < to_fetch.size(); ++k) {
    Wanted& w = wanted[to_fetch[k]];
    if (!fetched_artifacts[k].ok()) {
      note_failure(std::string(fetched_artifacts[k].status().message()));
      continue;
    }
    w.artifact = std::make_shared<const CompatArtifact>(*std::move(fetched_artifacts[k]));
    absl::MutexLock lock(&memo_->mu);
    if (memo_->artifacts.size() >= Memo::kMaxEntries) memo_->artifacts.clear();
    memo_->artifacts[w.shape.manifest.digest] = w.artifact;
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
