#include "selector/base_images.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "oci/digest.h"

namespace imgsel {

absl::StatusOr<std::optional<BaseImageRef>> BaseImageOf(const ParsedIndex& manifest,
                                                        const registry::Reference& derived) {
  std::optional<absl::string_view> name, digest;
  for (const auto& [key, value] : manifest.annotations) {
    if (key == kBaseNameAnnotation) name = value;
    if (key == kBaseDigestAnnotation) digest = value;
  }
  if (!digest) return std::nullopt;
  if (absl::Status valid = ValidateDigest(*digest); !valid.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("annotation ", kBaseDigestAnnotation, ": ", valid.message()));
  }
  BaseImageRef base;
  if (name && !name->empty()) {
    auto parsed = registry::ParseReference(*name);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("annotation ", kBaseNameAnnotation, ": ", parsed.status().message()));
    }
    base.repository = *std::move(parsed);
  } else {
    base.repository = derived;
  }
  base.digest = std::string(*digest);
  base.repository.tag.clear();
  base.repository.digest = base.digest;
  return base;
}

std::optional<size_t> BaseEntryFor(const ParsedIndex& base_index, const Platform& derived) {
  Platform as_host = NormalizePlatform(derived);
  as_host.features.clear();
  const PlatformMatcher matcher(as_host);
  std::optional<size_t> best;
  int best_rank = 0;
  for (size_t i = 0; i < base_index.manifests.size(); ++i) {
    const Descriptor& d = base_index.manifests[i];
    if (!d.invalid_reason.empty() || !d.artifact_type.empty() || !d.platform) continue;
    std::optional<int> rank = matcher.Rank(*d.platform);
    if (rank && (!best || *rank < best_rank)) {
      best = i;
      best_rank = *rank;
    }
  }
  return best;
}

namespace {

BaseChains::Document DocumentAt(const registry::Reference& repository, absl::string_view digest) {
  BaseChains::Document d;
  d.repository = repository;
  d.repository.tag.clear();
  d.repository.digest = std::string(digest);
  d.digest = std::string(digest);
  d.key = absl::StrCat(repository.Name(), "@", digest);
  return d;
}

}  // namespace

BaseChains::BaseChains(const registry::Reference& image_repository,
                       const std::vector<Entry>& entries) {
  for (const Entry& e : entries) {
    Chain chain;
    chain.entry = e.digest;
    chain.platform = e.platform;
    chain.frontier = DocumentAt(image_repository, e.digest);
    chain.passed.insert(chain.frontier->key);
    chains_.push_back(std::move(chain));
  }
}

std::vector<BaseChains::Document> BaseChains::Pending() const {
  std::vector<Document> out;
  std::set<std::string> seen;
  for (const Chain& chain : chains_) {
    if (chain.frontier && seen.insert(chain.frontier->key).second) out.push_back(*chain.frontier);
  }
  return out;
}

void BaseChains::Reach(Chain& chain, Document next, std::vector<std::string>& warnings) {
  if (!chain.passed.insert(next.key).second) {
    warnings.push_back(absl::StrCat("base images of ", chain.entry, ": ", next.key,
                                    " comes round again (a cycle); not followed further"));
    chain.frontier.reset();
    return;
  }
  if (!reached_.count(next.key) && reached_.size() >= kMaxBaseDocuments) {
    warnings.push_back(absl::StrCat("base images of ", chain.entry, ": ", next.key,
                                    " not read: a selection reads at most ", kMaxBaseDocuments,
                                    " base documents"));
    chain.frontier.reset();
    return;
  }
  reached_.insert(next.key);
  chain.subjects.push_back({next.key, chain.base});
  chain.frontier = std::move(next);
}

void BaseChains::Advance(const std::map<std::string, absl::StatusOr<ParsedIndex>>& read,
                         std::vector<std::string>& warnings, std::vector<std::string>& failures) {
  for (Chain& chain : chains_) {
    if (!chain.frontier) continue;
    const Document at = *std::move(chain.frontier);
    chain.frontier.reset();
    auto it = read.find(at.key);
    if (it == read.end()) continue;  // not asked for: the caller stopped early
    const absl::StatusOr<ParsedIndex>& doc = it->second;
    const std::string what = chain.depth == 0 ? absl::StrCat("manifest of entry ", chain.entry)
                                              : absl::StrCat("base image ", chain.base);
    if (!doc.ok()) {
      failures.push_back(absl::StrCat(what, ": ", doc.status().message()));
      continue;
    }
    if (doc->kind != DocumentKind::kManifest) {
      if (chain.depth == 0 || chain.in_index) {
        warnings.push_back(absl::StrCat(what, ": ", at.key,
                                        " is an index where a manifest was expected; its base "
                                        "images are not followed"));
        continue;
      }
      std::optional<size_t> position = BaseEntryFor(*doc, chain.platform);
      if (!position) {
        warnings.push_back(absl::StrCat(what, ": no entry for ", FormatPlatform(chain.platform),
                                        "; its artifacts for that platform are not read"));
        continue;
      }
      chain.in_index = true;
      Reach(chain, DocumentAt(at.repository, doc->manifests[*position].digest), warnings);
      continue;
    }
    auto base = BaseImageOf(*doc, at.repository);
    if (!base.ok()) {
      warnings.push_back(absl::StrCat(what, ": ", base.status().message(), "; not followed"));
      continue;
    }
    if (!base->has_value()) continue;  // the end of the chain
    if (chain.depth == kMaxBaseDepth) {
      warnings.push_back(absl::StrCat("base images of ", chain.entry, ": ", (*base)->Name(),
                                      " not followed: at most ", kMaxBaseDepth, " levels are"));
      continue;
    }
    ++chain.depth;
    chain.in_index = false;
    chain.base = (*base)->Name();
    Reach(chain, DocumentAt((*base)->repository, (*base)->digest), warnings);
  }
}

std::map<std::string, std::vector<FetchedImage::BaseSubject>> BaseChains::Subjects() const {
  std::map<std::string, std::vector<FetchedImage::BaseSubject>> out;
  for (const Chain& chain : chains_) {
    if (!chain.subjects.empty()) out[chain.entry] = chain.subjects;
  }
  return out;
}

}  // namespace imgsel
