// imgseld's counters and latency histograms, rendered in the Prometheus text
// exposition format (version 0.0.4) for `[server] metrics`.
//
//   imgseld_pulls_total{outcome}            selected | untouched | fallback
//   imgseld_fallbacks_total{reason}         why a pull went to containerd as sent
//   imgseld_selects_total{result}           Selector API: ok | fallback | invalid | busy
//   imgseld_passthrough_total{method}       CRI calls forwarded unchanged
//   imgseld_upstream_errors_total{method}   ...that containerd answered with an error
//   imgseld_pull_seconds                    PullImage through the proxy, end to end
//   imgseld_pull_select_seconds             the selection inside a pull
//   imgseld_select_seconds                  Selector API Select
//   imgseld_config_reloads_total{result}    SIGHUP: ok | error
//   imgsel_build_info{version}              always 1; the version running
//
// The process's own figures (memory, CPU, threads, descriptors) are
// plugin/process_metrics.h's.
//
// Label values come from fixed lists (never from a request), so the series
// count is bounded. Every method is thread-safe and lock-free on the hot
// path.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace imgsel::plugin {

enum class PullOutcome { kSelected, kUntouched, kFallback, kRefused, kCount };

enum class FallbackReason {
  kRequest,     // the request could not be read
  kResolve,     // the registry could not be reached or answered an error
  kIndex,       // the index could not be parsed
  kTimeout,     // select_timeout ran out
  kBusy,        // too many selections in flight
  kNoFit,       // no entry fits this host (containerd decides)
  kArtifacts,   // compatibility artifacts failed, [compat] on_error = fallback
  kDigestPull,  // the pull by digest failed; retried as sent
  kRecord,      // the image record could not be written
  kCount
};

// kBusy: refused with RESOURCE_EXHAUSTED (no registry place or memory
// share free): the request was fine, the node was full.
enum class SelectResult { kOk, kFallback, kInvalid, kBusy, kCount };

enum class CriMethod {
  kListImages,
  kImageStatus,
  kPullImage,
  kRemoveImage,
  kImageFsInfo,
  kOther,
  kCount
};

// "/runtime.v1.ImageService/ListImages" -> kListImages (any CRI version).
CriMethod CriMethodFromPath(absl::string_view path);

class Histogram {
 public:
  static constexpr std::array<double, 14> kBounds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30};
  void Observe(absl::Duration d);
  void Render(std::string& out, absl::string_view name, absl::string_view help) const;

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};  // last: +Inf
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_ns_{0};
};

class Metrics {
 public:
  Metrics() = default;
  // `version`: the build_info label, e.g. "0.4.0".
  explicit Metrics(std::string version) : version_(std::move(version)) {}

  void CountPull(PullOutcome outcome);
  void CountFallback(FallbackReason reason);
  void CountSelect(SelectResult result);
  void CountPassthrough(CriMethod method, bool upstream_error);
  void CountReload(bool ok);

  Histogram pull_seconds;
  Histogram pull_select_seconds;
  Histogram select_seconds;

  uint64_t pulls(PullOutcome o) const { return pulls_[static_cast<int>(o)].load(); }
  uint64_t fallbacks(FallbackReason r) const { return fallbacks_[static_cast<int>(r)].load(); }

  // The exposition text.
  std::string Render() const;

 private:
  std::array<std::atomic<uint64_t>, static_cast<int>(PullOutcome::kCount)> pulls_{};
  std::array<std::atomic<uint64_t>, static_cast<int>(FallbackReason::kCount)> fallbacks_{};
  std::array<std::atomic<uint64_t>, static_cast<int>(SelectResult::kCount)> selects_{};
  std::array<std::atomic<uint64_t>, static_cast<int>(CriMethod::kCount)> passthrough_{};
  std::array<std::atomic<uint64_t>, static_cast<int>(CriMethod::kCount)> upstream_errors_{};
  std::array<std::atomic<uint64_t>, 2> reloads_{};
  std::string version_ = "unknown";
};

absl::string_view FallbackReasonName(FallbackReason reason);
absl::string_view PullOutcomeName(PullOutcome outcome);

}  // namespace imgsel::plugin
