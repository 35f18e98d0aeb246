#include "plugin/metrics.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "plugin/decision_log.h"
#include "plugin/metrics_http.h"

namespace imgsel::plugin {
namespace {

TEST(MetricsTest, RendersCountersAndCumulativeHistograms) {
  Metrics m;
  m.CountPull(PullOutcome::kSelected);
  m.CountPull(PullOutcome::kSelected);
  m.CountPull(PullOutcome::kFallback);
  m.CountFallback(FallbackReason::kTimeout);
  m.CountPassthrough(CriMethod::kListImages, false);
  m.CountPassthrough(CriMethod::kRemoveImage, true);
  m.pull_seconds.Observe(absl::Microseconds(50));  // first bucket
  m.pull_seconds.Observe(absl::Milliseconds(3));   // le=0.005
  m.pull_seconds.Observe(absl::Seconds(100));      // +Inf only
  const std::string text = m.Render();
  for (const char* line : {
           "# TYPE imgseld_pulls_total counter",
           "imgseld_pulls_total{outcome=\"selected\"} 2",
           "imgseld_pulls_total{outcome=\"fallback\"} 1",
           "imgseld_fallbacks_total{reason=\"timeout\"} 1",
           "imgseld_fallbacks_total{reason=\"record\"} 0",
           "imgseld_passthrough_total{method=\"ListImages\"} 1",
           "imgseld_upstream_errors_total{method=\"RemoveImage\"} 1",
           "# TYPE imgseld_pull_seconds histogram",
           "imgseld_pull_seconds_bucket{le=\"0.0001\"} 1",
           "imgseld_pull_seconds_bucket{le=\"0.0025\"} 1",
           "imgseld_pull_seconds_bucket{le=\"0.005\"} 2",
           "imgseld_pull_seconds_bucket{le=\"30\"} 2",
           "imgseld_pull_seconds_bucket{le=\"+Inf\"} 3",
           "imgseld_pull_seconds_count 3",
       }) {
    EXPECT_TRUE(absl::StrContains(text, std::string(line) + "\n")) << line << "\n" << text;
  }
}

TEST(MetricsTest, MethodsFromAnyCriVersion) {
  EXPECT_EQ(CriMethodFromPath("/runtime.v1.ImageService/PullImage"), CriMethod::kPullImage);
  EXPECT_EQ(CriMethodFromPath("/runtime.v1alpha2.ImageService/PullImage"), CriMethod::kPullImage);
  EXPECT_EQ(CriMethodFromPath("/runtime.v1.ImageService/ImageFsInfo"), CriMethod::kImageFsInfo);
  EXPECT_EQ(CriMethodFromPath("/runtime.v1.RuntimeService/PullImage"), CriMethod::kOther);
  EXPECT_EQ(CriMethodFromPath("/runtime.v1.ImageService/Whatever"), CriMethod::kOther);
}

TEST(MetricsTest, OnlyLoopbackAddresses) {
  struct Case {
    const char* address;
    bool ok;
    const char* host;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"127.0.0.1:9464", true, "127.0.0.1"},
           {"localhost:9464", true, "127.0.0.1"},
           {"[::1]:9464", true, "::1"},
           {"0.0.0.0:9464", false, ""},
           {"10.0.0.5:9464", false, ""},
           {"[::]:9464", false, ""},
           {"127.0.0.1", false, ""},
           {"127.0.0.1:99999", false, ""},
       }) {
    auto a = ParseLoopbackAddress(c.address);
    EXPECT_EQ(a.ok(), c.ok) << c.address;
    if (a.ok()) {
      EXPECT_EQ(a->host, c.host) << c.address;
    }
  }
}

TEST(DecisionLogTest, OneJsonLineWithoutSecrets) {
  DecisionLine line;
  line.image = "host/app:v1";
  line.outcome = "fallback";
  line.reason = "resolve";
  line.detail = "say \"hi\"\n";
  line.select_time = absl::Milliseconds(2);
  const std::string text = FormatDecisionLine(line, absl::FromUnixSeconds(0));
  EXPECT_EQ(text.find('\n'), text.size() - 1);
  EXPECT_TRUE(absl::StartsWith(text, "{\"ts\":\"1970-01-01T00:00:00.000Z\",\"msg\":\"pull\""));
  EXPECT_TRUE(absl::StrContains(text, "\"detail\":\"say \\\"hi\\\"\\n\"")) << text;
  EXPECT_TRUE(absl::StrContains(text, "\"select_ms\":2.000")) << text;
}

}  // namespace
}  // namespace imgsel::plugin
