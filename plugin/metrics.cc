#include "plugin/metrics.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace imgsel::plugin {
namespace {

constexpr absl::string_view kPullOutcomes[] = {"selected", "untouched", "fallback", "refused"};
constexpr absl::string_view kFallbackReasons[] = {"request",   "resolve",     "index",
                                                  "timeout",   "busy",        "no_fit",
                                                  "artifacts", "digest_pull", "record"};
constexpr absl::string_view kSelectResults[] = {"ok", "fallback", "invalid", "busy"};
static_assert(std::size(kSelectResults) == static_cast<size_t>(SelectResult::kCount));
constexpr absl::string_view kMethods[] = {"ListImages",  "ImageStatus", "PullImage",
                                          "RemoveImage", "ImageFsInfo", "other"};

template <size_t N>
void RenderCounter(std::string& out, absl::string_view name, absl::string_view help,
                   absl::string_view label, const absl::string_view (&values)[N],
                   const std::atomic<uint64_t>* counts) {
  absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " counter\n");
  for (size_t i = 0; i < N; ++i) {
    absl::StrAppend(&out, name, "{", label, "=\"", values[i], "\"} ", counts[i].load(), "\n");
  }
}

// A label value as the exposition format quotes it.
std::string LabelValue(absl::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

CriMethod CriMethodFromPath(absl::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash == absl::string_view::npos || !absl::StrContains(path, ".ImageService/")) {
    return CriMethod::kOther;
  }
  absl::string_view method = path.substr(slash + 1);
  for (int i = 0; i < static_cast<int>(CriMethod::kOther); ++i) {
    if (method == kMethods[i]) return static_cast<CriMethod>(i);
  }
  return CriMethod::kOther;
}

absl::string_view FallbackReasonName(FallbackReason reason) {
  return kFallbackReasons[static_cast<int>(reason)];
}
absl::string_view PullOutcomeName(PullOutcome outcome) {
  return kPullOutcomes[static_cast<int>(outcome)];
}

void Histogram::Observe(absl::Duration d) {
  const double s = absl::ToDoubleSeconds(d);
  size_t i = 0;
  while (i < kBounds.size() && s > kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(absl::ToInt64Nanoseconds(d)), std::memory_order_relaxed);
}

void Histogram::Render(std::string& out, absl::string_view name, absl::string_view help) const {
  absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " histogram\n");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    absl::StrAppend(&out, name, "_bucket{le=\"", absl::StrFormat("%g", kBounds[i]), "\"} ",
                    cumulative, "\n");
  }
  cumulative += buckets_[kBounds.size()].load(std::memory_order_relaxed);
  absl::StrAppend(&out, name, "_bucket{le=\"+Inf\"} ", cumulative, "\n");
  absl::StrAppend(&out, name, "_sum ",
                  absl::StrFormat("%.9g", sum_ns_.load(std::memory_order_relaxed) / 1e9), "\n");
  absl::StrAppend(&out, name, "_count ", count_.load(std::memory_order_relaxed), "\n");
}

void Metrics::CountPull(PullOutcome outcome) { ++pulls_[static_cast<int>(outcome)]; }
void Metrics::CountFallback(FallbackReason reason) { ++fallbacks_[static_cast<int>(reason)]; }
void Metrics::CountSelect(SelectResult result) { ++selects_[static_cast<int>(result)]; }
void Metrics::CountPassthrough(CriMethod method, bool upstream_error) {
  ++passthrough_[static_cast<int>(method)];
  if (upstream_error) ++upstream_errors_[static_cast<int>(method)];
}
void Metrics::CountReload(bool ok) { ++reloads_[ok ? 0 : 1]; }

std::string Metrics::Render() const {
  std::string out;
  out.reserve(6000);
  RenderCounter(out, "imgseld_pulls_total", "PullImage calls by outcome.", "outcome", kPullOutcomes,
                pulls_.data());
  RenderCounter(out, "imgseld_fallbacks_total",
                "PullImage calls forwarded as sent because selection could not be used.", "reason",
                kFallbackReasons, fallbacks_.data());
  RenderCounter(out, "imgseld_selects_total", "Selector API Select calls by result.", "result",
                kSelectResults, selects_.data());
  RenderCounter(out, "imgseld_passthrough_total", "CRI image calls forwarded unchanged.", "method",
                kMethods, passthrough_.data());
  RenderCounter(out, "imgseld_upstream_errors_total",
                "Forwarded CRI image calls that containerd answered with an error.", "method",
                kMethods, upstream_errors_.data());
  constexpr absl::string_view kReloadResults[] = {"ok", "error"};
  RenderCounter(out, "imgseld_config_reloads_total", "SIGHUP config reloads.", "result",
                kReloadResults, reloads_.data());
  pull_seconds.Render(out, "imgseld_pull_seconds", "PullImage through the proxy, end to end.");
  pull_select_seconds.Render(out, "imgseld_pull_select_seconds",
                             "Selection time inside PullImage.");
  select_seconds.Render(out, "imgseld_select_seconds", "Selector API Select latency.");
  absl::StrAppend(&out,
                  "# HELP imgsel_build_info The imgseld version running (always 1).\n"
                  "# TYPE imgsel_build_info gauge\nimgsel_build_info{version=\"",
                  LabelValue(version_), "\"} 1\n");
  return out;
}

}  // namespace imgsel::plugin
