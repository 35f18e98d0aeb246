// SpecCache: parsed compatibility specs by layer digest, shared by every
// selection in the process (the pipeline's FetchAndParse reads through it).
//
// A layer is content-addressed (the registry client checks every blob
// against its digest), so parsing it always gives the same outcome:
//
//   once per layer      callers asking for a layer that is being parsed wait
//                       for that parse (single flight) rather than parse it
//                       again: N pulls of one image parse its spec once
//   failures too        the outcome, spec or error, is kept: a spec that is
//                       invalid or over its budget (compat_spec.h) costs one
//                       parse, not one per pull
//   bounded             at most kMaxEntries outcomes and kMaxFootprint bytes
//                       of them (an estimate, below); when an outcome would
//                       pass either, the finished ones are dropped (specs are
//                       few and a parse is cheap; an LRU would buy nothing)
//
// A waiter waits at most one parse, which the spec budget bounds (well
// under 100 ms for the largest spec it allows).
//
// Thread-safe: Get may be called from many threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "matcher/compat_spec.h"

namespace imgsel {

class SpecCache {
 public:
  // What a parse gave; shared by every caller that asked for that layer.
  using Outcome = std::shared_ptr<const absl::StatusOr<CompatSpec>>;
  // ParseCompatSpec, or a stand-in in tests.
  using Parser = std::function<absl::StatusOr<CompatSpec>(
      absl::string_view bytes, SpecFormat format, absl::string_view source, bool strict_json)>;

  static constexpr size_t kMaxEntries = 1024;
  // Outcomes are charged 16 bytes per byte of the layer (a parsed spec's
  // strings and vectors) plus kMaxCompatRegexpMemory per regexp (what RE2 may
  // hold once it has matched); an error, its message. 64 MiB keeps about 80
  // realistic specs, or three at the edge of the budget.
  static constexpr size_t kMaxFootprint = 64 << 20;

  // `on_wait` is called whenever a caller starts waiting for another's
  // parse of the same layer (with the cache locked: it must not call back);
  // tests observe single flight with it.
  explicit SpecCache(Parser parse = ParseCompatSpec, std::function<void()> on_wait = {});

  // The one cache of the process.
  static SpecCache& Shared();

  // The outcome of parsing layer `digest` (whose content is `bytes`) as
  // `format` (strict JSON when `strict_json`: a `+json` layer): from
  // memory, from a parse under way, or parsed now. Errors name the digest
  // as their source ("sha256:...:12:5: ...").
  Outcome Get(absl::string_view digest, SpecFormat format, absl::string_view bytes,
              bool strict_json = false);

  // Parses started since creation.
  int64_t parses() const;

 private:
  struct Entry {
    bool done = false;  // guarded by the cache's mutex
    Outcome outcome;
  };

  static size_t FootprintOf(const absl::StatusOr<CompatSpec>& outcome, size_t layer_bytes);

  const Parser parse_;
  const std::function<void()> on_wait_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
  size_t footprint_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t parses_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace imgsel
