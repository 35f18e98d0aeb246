// The explanation of a Decision: one sentence per Reason, written from the
// decision's own data (select.h: ForEachReason, ExplainCandidate).
#include <algorithm>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "matcher/features.h"
#include "matcher/select.h"
#include "matcher/select_internal.h"

namespace imgsel {

namespace select_internal {

std::string QuotedName(absl::string_view name) {
  if (IsWellFormedFeatureName(name)) return std::string(name);
  std::string out = "\"";
  for (size_t i = 0; i < name.size() && i < kMaxFeatureNameBytes; ++i) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    }
  }
  if (name.size() > kMaxFeatureNameBytes) out += "...";
  out += "\"";
  return out;
}

}  // namespace select_internal

namespace {

using select_internal::EffectiveRank;
using select_internal::kAllWrittenNames;
using select_internal::OsVersionOf;

// An entry's platform as a part of a sentence (see Sentence::Add).
struct EntryPlatform {
  const Descriptor& entry;
};

// One reason sentence at a time, written through a raw position into a
// buffer the thread keeps: its capacity is reused from one sentence and one
// call to the next, and a std::string append per piece cost more than the
// pieces. One Sentence per thread at a time.
class Sentence {
 public:
  Sentence() : buf_(Buffer()) {}
  Sentence(const Sentence&) = delete;
  Sentence& operator=(const Sentence&) = delete;

  void Clear() { at_ = 0; }
  absl::string_view View() const { return {buf_.data(), at_}; }

  // Appends each part in turn: text as it is, a number in decimal, an
  // entry's platform formatted.
  template <typename... Parts>
  void Add(const Parts&... parts) {
    (AddOne(parts), ...);
  }

 private:
  static std::string& Buffer() {
    thread_local std::string buffer;
    return buffer;
  }
  void Append(absl::string_view s) {
    if (s.empty()) return;  // an empty view may have no data for memcpy
    if (buf_.size() - at_ < s.size()) [[unlikely]] {
      buf_.resize(std::max(2 * buf_.size() + 256, at_ + s.size()));
    }
    std::memcpy(buf_.data() + at_, s.data(), s.size());
    at_ += s.size();
  }
  template <typename T>
  void AddOne(const T& part) {
    if constexpr (std::is_same_v<T, EntryPlatform>) {
      if (part.entry.platform) {
        AppendPlatform(*part.entry.platform, [this](absl::string_view s) { Append(s); });
      } else {
        Append("(none)");
      }
    } else if constexpr (std::is_integral_v<T>) {
      Append(absl::AlphaNum(part).Piece());
    } else {
      Append(absl::string_view(part));
    }
  }

  std::string& buf_;
  size_t at_ = 0;
};

// Adds why `loser` is ranked below `winner` to `out`: the first ranking key
// that differs.
void AddLostBecause(const Decision& decision, const Candidate& loser, const Candidate& winner,
                    Sentence& out) {
  out.Add("ranked below position ", winner.position, ": ");
  if (loser.score != winner.score) {
    out.Add("lower score (", loser.score, " < ", winner.score, ")");
  } else if (EffectiveRank(loser) != EffectiveRank(winner)) {
    if (loser.platform_rank < 0) {
      out.Add("no platform (ranked last)");
    } else {
      out.Add("less specific platform (rank ", loser.platform_rank, " > ", winner.platform_rank,
              ")");
    }
  } else if (absl::string_view lv = OsVersionOf(decision, loser),
             wv = OsVersionOf(decision, winner);
             decision.windows_host && lv != wv) {
    out.Add("older os.version (", lv.empty() ? "none" : lv, " < ", wv, ")");
  } else if (loser.specificity != winner.specificity) {
    if (loser.need_within_winner) {
      out.Add("less specific (position ", winner.position,
              " needs all this entry needs, and more)");
    } else {
      out.Add("less specific (specificity ", loser.specificity, " < ", winner.specificity, ")");
    }
  } else if (loser.os_features != winner.os_features) {
    out.Add("fewer os.features (", loser.os_features, " < ", winner.os_features, ")");
  } else {
    out.Add("tie, later in the index");
  }
}

}  // namespace

size_t Decision::eligible_count() const {
  size_t n = 0;
  for (const auto& c : candidates) n += c.eligible ? 1 : 0;
  return n;
}

void ForEachReason(const Decision& decision, const Candidate& c,
                   absl::FunctionRef<void(absl::string_view)> sink) {
  const Descriptor& d = decision.index.manifests[c.position];
  // `sink` must not call ForEachReason itself: the sentence's buffer is the
  // thread's.
  Sentence line;
  auto emit = [&](const auto&... parts) {
    line.Clear();
    line.Add(parts...);
    sink(line.View());
  };
  for (uint32_t i = c.reasons_begin; i < c.reasons_end; ++i) {
    const Reason& r = decision.reasons[i];
    switch (r.code) {
      case ReasonCode::kInvalid:
        emit("rejected: ", d.invalid_reason);
        break;
      case ReasonCode::kNestedIndex:
        sink("rejected: a nested index (imgsel selects among manifests only)");
        break;
      case ReasonCode::kNotManifest:
        emit("rejected: mediaType \"", d.media_type, "\" is not an image manifest");
        break;
      case ReasonCode::kArtifact:
        emit("rejected: an artifact (artifactType \"", decision.texts[r.index],
             "\"), not an image");
        break;
      case ReasonCode::kPlatformMismatch:
        emit("rejected: platform ", EntryPlatform{d}, " does not run on host ",
             decision.host_platform);
        break;
      case ReasonCode::kOsVersionMismatch:
        emit("rejected: os.version ", d.platform ? d.platform->os_version : "",
             " does not run on host os.version ",
             decision.host_os_version.empty() ? "(unknown)" : decision.host_os_version);
        break;
      case ReasonCode::kOsFeaturesMissing:
        emit("rejected: requires os.features ", decision.texts[r.index], ", which host ",
             decision.host_platform, " lacks");
        break;
      case ReasonCode::kConfigPlatform:
        emit("no platform in the index; its image config names ", decision.texts[r.index],
             ", which matches host ", decision.host_platform, " (ranked after entries with one)");
        break;
      case ReasonCode::kConfigPlatformMismatch:
        emit("rejected: no platform in the index; its image config names ", decision.texts[r.index],
             ", which does not run on host ", decision.host_platform);
        break;
      case ReasonCode::kPlatformMatch:
        emit("platform ", EntryPlatform{d}, " matches host ", decision.host_platform, " (rank ",
             r.value, ")");
        break;
      case ReasonCode::kNoPlatform:
        sink("no platform: accepted, ranked after entries with one");
        break;
      case ReasonCode::kMissingFeatures:
        emit("rejected: requires ", decision.texts[r.index], ", which this host lacks");
        break;
      case ReasonCode::kUnknownFeatures:
        emit("rejected: requires unknown feature ", decision.texts[r.index],
             " (set [features] unknown = \"ignore\" to allow)");
        break;
      case ReasonCode::kUnknownIgnored:
        emit("passed over unknown feature ", decision.texts[r.index],
             " ([features] unknown = \"ignore\")");
        break;
      case ReasonCode::kFeaturesSatisfied:
        if (r.index == kAllWrittenNames) {
          // Every name the entry lists (the common case: no text was kept).
          line.Clear();
          line.Add("requires ");
          for (size_t n = 0; d.platform && n < d.platform->features.size(); ++n) {
            line.Add(n ? ", " : "", d.platform->features[n]);
          }
          line.Add(": all present on this host");
          sink(line.View());
        } else {
          emit("requires ", decision.texts[r.index], ": all present on this host");
        }
        break;
      case ReasonCode::kCompatDetail:
        sink(decision.texts[r.index]);
        break;
      case ReasonCode::kCompatFailed:
        sink("rejected: no compatibility set of its artifacts matches this host");
        break;
      case ReasonCode::kCompatWeight:
        emit(r.value > 0 ? "+" : "", r.value, " from the matching compatibility set");
        break;
      case ReasonCode::kPrefer:
        emit(r.value >= 0 ? "+" : "", r.value, " from prefer ", decision.rule_labels[r.index]);
        break;
    }
  }
  if (&c == decision.selected()) {
    size_t eligible = decision.eligible_count();
    emit("selected: best of ", eligible, " eligible entr", eligible == 1 ? "y" : "ies", " (score ",
         c.score, ")");
  } else if (c.eligible) {
    line.Clear();
    AddLostBecause(decision, c, *decision.selected(), line);
    sink(line.View());
  }
}

std::vector<std::string> ExplainCandidate(const Decision& decision, const Candidate& c) {
  std::vector<std::string> out;
  ForEachReason(decision, c, [&](absl::string_view line) { out.emplace_back(line); });
  return out;
}

}  // namespace imgsel
