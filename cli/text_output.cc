#include "cli/text_output.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "matcher/compat_eval.h"
#include "matcher/features.h"

namespace imgsel::cli {
namespace {

std::string ShortDigest(absl::string_view digest) {
  size_t colon = digest.find(':');
  if (colon == absl::string_view::npos || digest.size() < colon + 13) return std::string(digest);
  return std::string(digest.substr(0, colon + 13));
}

}  // namespace

std::string Printable(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      absl::StrAppendFormat(&out, "\\x%02x", u);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string RenderDecisionText(const Decision& decision, const std::string& source,
                               const HostProfile& host) {
  std::string out;
  absl::StrAppend(&out, "source:  ", Printable(source), "\n");
  absl::StrAppend(&out, "host:    ", FormatPlatform(host.platform), ", ", host.features.size(),
                  " features\n");
  absl::StrAppend(&out, "policy:  ", PolicyKindName(decision.policy), "\n");
  if (decision.fallback) {
    absl::StrAppend(&out, "FALLBACK: ", Printable(decision.fallback_reason), "\n");
  }
  if (decision.nothing_to_choose) {
    absl::StrAppend(&out, "\nA single manifest, not an index: nothing to choose.\n");
    return out;
  }
  absl::StrAppend(&out, "\n");
  absl::StrAppend(&out, absl::StrFormat("  %-4s %-4s %-22s %6s  %s\n", "rank", "pos", "platform",
                                        "score", "digest"));
  int rank = 0;
  for (const Candidate& c : decision.candidates) {
    const Descriptor& d = decision.index.manifests[c.position];
    std::string platform =
        d.platform ? FormatPlatform(NormalizePlatform(d.platform->ToPlatform())) : "(none)";
    if (d.platform && !d.platform->features.empty()) {
      absl::StrAppend(&platform, " +", d.platform->features.size(), "f");
    }
    bool winner = &c == decision.selected();
    std::string rank_text = c.eligible ? absl::StrCat(++rank) : "-";
    absl::StrAppend(&out, absl::StrFormat("%s %-4s %-4d %-22s %6s  %s\n", winner ? "*" : " ",
                                          rank_text, c.position, Printable(platform),
                                          c.eligible ? absl::StrCat(c.score) : "-",
                                          Printable(ShortDigest(d.digest))));
    for (const auto& r : ExplainCandidate(decision, c)) {
      absl::StrAppend(&out, "             ", Printable(r), "\n");
    }
  }
  absl::StrAppend(&out, "\n");
  if (const Descriptor* d = decision.selected_descriptor()) {
    absl::StrAppend(
        &out, "selected: manifests[", decision.selected()->position, "] ", Printable(d->digest),
        d->platform
            ? absl::StrCat(" (",
                           Printable(FormatPlatform(NormalizePlatform(d->platform->ToPlatform()))),
                           ")")
            : "",
        "\n");
  } else {
    absl::StrAppend(&out, "selected: nothing in this index runs on this host\n");
  }
  return out;
}

}  // namespace imgsel::cli

namespace imgsel::cli {

std::string RenderSelectionText(const Selection& s, const HostProfile& host) {
  std::string source = s.reference;
  if (!s.document_digest.empty()) absl::StrAppend(&source, " (", s.document_digest, ")");
  std::string out = RenderDecisionText(s.decision, source, host);
  for (const auto& [digest, artifacts] : s.compat) {
    absl::StrAppend(&out, "\ncompatibility artifacts for ", Printable(ShortDigest(digest)), ":\n");
    for (const auto& shared : artifacts) {
      const ArtifactResult& a = *shared;
      absl::StrAppend(
          &out, "  artifact ", Printable(ShortDigest(a.id)), " (",
          a.kind.empty() ? "nothing imgsel reads" : Printable(a.kind),
          a.on_index ? ", attached to the index" : "",
          a.from_base.empty() ? "" : absl::StrCat(", from base ", Printable(a.from_base)),
          "): ", a.kind.empty() ? "ignored" : (a.matched ? "matches" : "does not match"), "\n");
      for (const std::string& media_type : a.not_read) {
        absl::StrAppend(&out, "    not read: media type ", Printable(media_type), "\n");
      }
      for (const SpecResult& spec : a.specs) {
        if (!spec.name.empty()) absl::StrAppend(&out, "  profile ", Printable(spec.name), "\n");
        for (absl::string_view line : absl::StrSplit(RenderCompatResultText(spec), '\n')) {
          if (!line.empty()) absl::StrAppend(&out, "    ", Printable(line), "\n");
        }
      }
    }
  }
  for (const auto& warning : s.warnings) {
    absl::StrAppend(&out, "warning: ", Printable(warning), "\n");
  }
  absl::StrAppend(&out, "registry requests: ", s.round_trips,
                  ", time: ", absl::FormatDuration(s.elapsed), "\n");
  return out;
}

}  // namespace imgsel::cli
