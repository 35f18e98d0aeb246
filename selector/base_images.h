// Base images: what an entry was built FROM, as its manifest says, so that
// the compatibility artifacts of the base apply to the derived entry too.
//
// BuildKit writes two annotations on the manifest of each image it builds
// (image-spec annotations.md):
//
//   org.opencontainers.image.base.name     a reference: "docker.io/library/debian:bookworm"
//   org.opencontainers.image.base.digest   the digest the base resolved to
//
// The base is the document at base.digest in the repository base.name
// names (its tag, if any, is only a name: the digest decides). A base.digest
// without base.name is looked for in the derived image's own repository.
// base.name without base.digest names no fixed content and is not followed
// (a tag moves; what it named at build time is not known).
//
// When the base is an index (BuildKit records the digest the base's tag
// resolved to, usually an index), its entry for the derived entry's
// platform is the base: the entry the derived platform would run, by
// containerd's platform rule with the derived platform as the host (an
// exact os/arch/variant first, then older variants), the first in index
// order among equals; artifacts attached to the base index apply too, as
// an index's artifacts apply to every entry.
//
// Pure functions of their inputs; thread-safe.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "matcher/index.h"
#include "matcher/platform.h"
#include "registry/reference.h"
#include "selector/decide.h"

namespace imgsel {

inline constexpr absl::string_view kBaseNameAnnotation = "org.opencontainers.image.base.name";
inline constexpr absl::string_view kBaseDigestAnnotation = "org.opencontainers.image.base.digest";

// How far a chain of bases is followed (an entry's base is level 1), and how
// many base documents one selection reads at most.
inline constexpr int kMaxBaseDepth = 3;
inline constexpr size_t kMaxBaseDocuments = 32;

// A base an entry's manifest names, resolved to the repository and digest
// to read.
struct BaseImageRef {
  registry::Reference repository;  // digest set to `digest`, tag cleared
  std::string digest;
  // "docker.io/library/debian@sha256:...": how explanations name it.
  std::string Name() const { return absl::StrCat(repository.Name(), "@", digest); }
};

// The base `manifest` (a parsed image manifest: its document annotations)
// names, in `derived`'s repository when base.name is absent; nullopt when it
// names none (or only a base.name). InvalidArgument naming the annotation
// when base.digest is not a digest or base.name not a reference.
absl::StatusOr<std::optional<BaseImageRef>> BaseImageOf(const ParsedIndex& manifest,
                                                        const registry::Reference& derived);

// The position of the entry of `base_index` that stands for the base of an
// entry with platform `derived` (header comment); nullopt when none runs on
// that platform.
std::optional<size_t> BaseEntryFor(const ParsedIndex& base_index, const Platform& derived);

// The walk from a selection's entries to their bases, one registry round
// trip a step, which the pipeline drives:
//
//   trip 0   the entries' manifests are read (alongside the referrers of
//            the index and the entries)
//   trip k   the documents the chains reached are read and their referrers
//            listed, at once: one more round trip per level of bases (and
//            one more for a base that is an index: its entry)
//
// Each entry has a chain of its own (an index base's entry depends on the
// entry's platform); documents the chains share are read once. A chain
// ends at a document with no base, past kMaxBaseDepth levels, at a digest
// it has passed already (a cycle), when kMaxBaseDocuments distinct
// documents have been reached, at a base annotation that does not parse,
// and at a document that cannot be read (Failures: [compat] on_error
// decides, as for an artifact manifest: until it is read nobody knows
// what it requires). All but the last are warnings: nothing is known to
// be missed.
//
// Not thread-safe: one selection's fetch owns it.
class BaseChains {
 public:
  // A document to read: an entry's manifest (trip 0) or a base's.
  struct Document {
    std::string key;  // "<repository>@<digest>"
    registry::Reference repository;
    std::string digest;
  };
  struct Entry {
    std::string digest;
    Platform platform;  // normalised or not; picks an index base's entry
  };

  // The entries of the image in `image_repository` whose bases are wanted.
  BaseChains(const registry::Reference& image_repository, const std::vector<Entry>& entries);

  // The documents to read this trip, each once; empty when every chain has
  // ended. Bases among them are also the subjects to list this trip.
  std::vector<Document> Pending() const;

  // What this trip read, by Document::key (a parsed manifest or index, or
  // why not). Advances every chain; problems go to `warnings` and
  // `failures` (the latter for on_error to decide).
  void Advance(const std::map<std::string, absl::StatusOr<ParsedIndex>>& read,
               std::vector<std::string>& warnings, std::vector<std::string>& failures);

  // Per entry digest, the base subjects its chain reached, nearest first
  // (FetchedImage::bases).
  std::map<std::string, std::vector<FetchedImage::BaseSubject>> Subjects() const;

 private:
  struct Chain {
    std::string entry;
    Platform platform;
    int depth = 0;          // 0: at the entry itself
    std::string base;       // the base being read, as explanations name it
    bool in_index = false;  // the frontier is an entry of the base's index
    std::optional<Document> frontier;
    std::set<std::string> passed;
    std::vector<FetchedImage::BaseSubject> subjects;
  };
  void Reach(Chain& chain, Document next, std::vector<std::string>& warnings);

  std::vector<Chain> chains_;
  std::set<std::string> reached_;  // distinct base documents, for the cap
};

}  // namespace imgsel
