#include "selector/spec_cache.h"

#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace imgsel {

SpecCache::SpecCache(Parser parse, std::function<void()> on_wait)
    : parse_(std::move(parse)), on_wait_(std::move(on_wait)) {}

SpecCache& SpecCache::Shared() {
  static auto* cache = new SpecCache();
  return *cache;
}

int64_t SpecCache::parses() const {
  absl::MutexLock lock(&mu_);
  return parses_;
}

size_t SpecCache::FootprintOf(const absl::StatusOr<CompatSpec>& outcome, size_t layer_bytes) {
  if (!outcome.ok()) return outcome.status().message().size();
  size_t regexps = 0;
  auto count = [&regexps](const std::vector<FeatureTerm>& terms) {
    for (const FeatureTerm& t : terms) {
      for (const auto& [element, e] : t.match_expressions) regexps += e.regexps.size();
      if (t.match_name) regexps += t.match_name->regexps.size();
    }
  };
  for (const CompatSet& set : outcome->sets) {
    for (const CompatRule& rule : set.rules) {
      count(rule.match_features);
      for (const auto& any : rule.match_any) count(any);
    }
  }
  return 16 * layer_bytes + regexps * static_cast<size_t>(kMaxCompatRegexpMemory);
}

SpecCache::Outcome SpecCache::Get(absl::string_view digest, SpecFormat format,
                                  absl::string_view bytes, bool strict_json) {
  // One layer read as two formats is two outcomes.
  const std::string key =
      absl::StrCat(digest, "#", static_cast<int>(format), strict_json ? "#json" : "");
  std::shared_ptr<Entry> entry;
  {
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = entries_.try_emplace(key);
    if (!inserted) {
      entry = it->second;  // kept alive here even if the map drops it
      if (!entry->done) {
        if (on_wait_) on_wait_();
        mu_.Await(absl::Condition(&entry->done));
      }
      return entry->outcome;
    }
    it->second = entry = std::make_shared<Entry>();
    ++parses_;
  }

  auto outcome = std::make_shared<const absl::StatusOr<CompatSpec>>(
      parse_(bytes, format, digest, strict_json));
  const size_t footprint = FootprintOf(*outcome, bytes.size());

  absl::MutexLock lock(&mu_);
  entry->outcome = outcome;
  entry->done = true;
  if (entries_.size() > kMaxEntries || footprint_ + footprint > kMaxFootprint) {
    // Full: drop every finished outcome but this one. Parses under way stay,
    // so their waiters and later callers still share them.
    absl::erase_if(entries_,
                   [&entry](const auto& kv) { return kv.second->done && kv.second != entry; });
    footprint_ = 0;
  }
  footprint_ += footprint;
  return outcome;
}

}  // namespace imgsel
