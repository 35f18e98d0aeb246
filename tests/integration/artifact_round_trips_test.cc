// How many registry round trips a cold selection with compatibility
// artifacts costs, one after the other, when the index has 4 and 32
// entries with an artifact on the index and on every entry (issue 16), and
// that a warm selection asks the registry for nothing.
//
// A real docker-registry (distribution 2.8: no referrers API, so listings
// go through the sha256-<hex> tag schema) on loopback, behind a
// RoundTripProxy that holds every request 40 ms (20 ms each way, the
// round trip of a registry in a nearby region; the printed figures), and
// behind a second one holding 150 ms (where the bounds are asserted: see
// kSteadyDelay). The images are generated
// here as OCI layouts (distinct linux/amd64 entries, every one eligible on
// the x86-64-v3 host profile), pushed with skopeo, and given a spec the
// host passes with `imgsel attach`. The selection runs in this process
// through SelectionPipeline with an empty cache directory, by the index's
// digest through each proxy.
//
// What a user relies on: the sequential round trips after the index is
// resolved stay at the floor of list, artifact manifest, artifact blob
// (3) for an index of 4 entries and of 32 alike, and one more for a level
// of base images, whose documents are read alongside the entries'
// referrers. What keeps 32 entries at the floor: every subject listed at
// once (kMaxParallelSubjects, registry/referrers.h), a first round that
// fits the request slots per registry (max_concurrent_per_registry), and
// one GET per distinct blob (the spec attached everywhere is one blob);
// ExpectedDepth adds these up. docs/BENCHMARKS.md, "Artifact round
// trips", has the measured figures.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "config/config.h"
#include "matcher/host_profile.h"
#include "oci/digest.h"
#include "registry/referrers.h"
#include "selector/pipeline.h"
#include "tests/integration/harness.h"
#include "tests/integration/round_trip_proxy.h"
#include "tests/registry/real_registry.h"

#ifndef IMGSEL_BINARY
#error "IMGSEL_BINARY must name the imgsel binary"
#endif

namespace imgsel::integration {
namespace {

namespace fs = std::filesystem;

// The figures' proxy holds every request 40 ms: 20 ms each way.
constexpr absl::Duration kFigureDelay = absl::Milliseconds(40);
// The bounds are asserted through a second proxy holding 150 ms: a round
// of about 100 parallel requests (32 entries) on a loaded 2-core machine,
// or under ASan, can take its threads longer than 40 ms to send, which the
// depth then counts as a round trip more; 150 ms is well above that, so
// the count stays the client's.
constexpr absl::Duration kSteadyDelay = absl::Milliseconds(150);

// The subjects ReferrersClient::List lists at once.
constexpr int kSubjectsAtOnce = static_cast<int>(registry::kMaxParallelSubjects);
// [registry] max_concurrent_per_registry's default: requests in flight.
const int kSlots = RegistryConfig{}.max_concurrent_per_registry;

constexpr char kPassingSpec[] =
    "version: v1alpha1\n"
    "compatibilities:\n"
    "- description: any kernel from 1 on\n"
    "  rules:\n"
    "  - name: kernel\n"
    "    matchFeatures:\n"
    "    - feature: kernel.version\n"
    "      matchExpressions:\n"
    "        major: {op: Ge, value: [\"1\"]}\n";

// An OCI image layout written blob by blob.
class LayoutWriter {
 public:
  explicit LayoutWriter(std::string dir) : dir_(std::move(dir)) {
    fs::create_directories(dir_ + "/blobs/sha256");
    std::ofstream(dir_ + "/oci-layout") << R"({"imageLayoutVersion":"1.0.0"})";
  }
  // The descriptor of `bytes`, written as a blob; `extra` adds members.
  std::string Put(const std::string& media_type, const std::string& bytes,
                  const std::string& extra = "") {
    const std::string digest = Sha256Digest(bytes);
    std::ofstream(absl::StrCat(dir_, "/blobs/sha256/", digest.substr(7)), std::ios::binary)
        << bytes;
    last_digest_ = digest;
    return absl::StrCat(R"({"mediaType":")", media_type, R"(","digest":")", digest, R"(","size":)",
                        bytes.size(), extra, "}");
  }
  // index.json naming `descriptor` by `tag`.
  void Tag(const std::string& descriptor, const std::string& tag) {
    std::string named = descriptor;
    named.insert(
        named.size() - 1,
        absl::StrCat(R"(,"annotations":{"org.opencontainers.image.ref.name":")", tag, R"("})"));
    std::ofstream(dir_ + "/index.json")
        << R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
        << R"("manifests":[)" << named << "]}";
  }
  const std::string& last_digest() const { return last_digest_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::string last_digest_;
};

constexpr char kLayerBytes[] = "imgsel round-trip layer\n";

// An image manifest for linux/amd64 of its own config (`name` makes it
// distinct) with the one shared layer; `annotations` are members of its
// annotations object (may be empty). Returns its descriptor.
std::string PutImage(LayoutWriter& layout, const std::string& name,
                     const std::string& annotations = "") {
  const std::string layer = layout.Put("application/vnd.oci.image.layer.v1.tar", kLayerBytes);
  const std::string layer_digest = layout.last_digest();
  const std::string config = layout.Put(
      "application/vnd.oci.image.config.v1+json",
      absl::StrCat(R"({"architecture":"amd64","os":"linux","config":{"Labels":{"entry":")", name,
                   R"("}},"rootfs":{"type":"layers","diff_ids":[")", layer_digest, R"("]}})"));
  return layout.Put(
      "application/vnd.oci.image.manifest.v1+json",
      absl::StrCat(
          R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)",
          R"("config":)", config, R"(,"layers":[)", layer, "]",
          annotations.empty() ? "" : absl::StrCat(R"(,"annotations":{)", annotations, "}"), "}"));
}

// What was pushed: the index and its entries, by digest.
struct PushedImage {
  std::string index;
  std::vector<std::string> entries;
};

absl::Status Push(const std::string& layout, const std::string& tag, const std::string& target) {
  std::string out;
  absl::Status s = RunCommand(
      {"/usr/bin/skopeo", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
       absl::StrCat("oci:", layout, ":", tag), absl::StrCat("docker://", target)},
      absl::Seconds(60), &out);
  if (!s.ok()) return absl::InternalError(absl::StrCat("skopeo: ", s.message(), ": ", out));
  return absl::OkStatus();
}

absl::Status Attach(const std::string& subject, const std::string& spec) {
  std::string out;
  absl::Status s =
      RunCommand({IMGSEL_BINARY, "attach", subject, spec, "--plain-http"}, absl::Seconds(60), &out);
  if (!s.ok()) return absl::InternalError(absl::StrCat("imgsel attach: ", s.message(), ": ", out));
  return absl::OkStatus();
}

class ArtifactRoundTrips : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (const char* bin : {"/usr/bin/docker-registry", "/usr/bin/skopeo"}) {
      if (access(bin, X_OK) != 0) skip_ = absl::StrCat(bin, " not installed");
    }
    if (!skip_.empty()) return;
    char tmpl[] = "/tmp/imgsel-rtt-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      skip_ = "mkdtemp failed";
      return;
    }
    dir_ = tmpl;
    std::string why;
    registry_ = registry::testing::RealRegistry::Start(&why).release();
    if (registry_ == nullptr) {
      skip_ = why;
      return;
    }
    const std::string& host = registry_->host();
    const int port = std::stoi(host.substr(host.rfind(':') + 1));
    figure_proxy_ = RoundTripProxy::Start(port, kFigureDelay, &why).release();
    steady_proxy_ = RoundTripProxy::Start(port, kSteadyDelay, &why).release();
    if (figure_proxy_ == nullptr || steady_proxy_ == nullptr) skip_ = why;
    spec_ = dir_ + "/kernel-1.yaml";
    std::ofstream(spec_) << kPassingSpec;
  }
  static void TearDownTestSuite() {
    delete figure_proxy_;
    figure_proxy_ = nullptr;
    delete steady_proxy_;
    steady_proxy_ = nullptr;
    delete registry_;
    registry_ = nullptr;
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  void SetUp() override {
    if (!skip_.empty()) {
      if (getenv("IMGSEL_REQUIRE_INTEGRATION") != nullptr) FAIL() << skip_;
      GTEST_SKIP() << skip_;
    }
  }

  // An index of `entries` distinct linux/amd64 images (platform variant
  // none, v1, v2, v3 in turn: all eligible on an x86-64-v3 host) pushed as
  // <registry>/<repo>:v1, the spec attached to the index and every entry.
  // With `base`, the first entry's manifest names a base image (pushed to
  // the same repository as :base, with the spec attached too) by its
  // digest alone, so the base is read from the image's own repository.
  static absl::StatusOr<PushedImage> PushIndex(const std::string& repo, int entries, bool base) {
    const std::string layout_dir = absl::StrCat(dir_, "/", repo);
    LayoutWriter layout(layout_dir);
    const std::string target = absl::StrCat(registry_->host(), "/", repo);
    std::string base_digest;
    if (base) {
      LayoutWriter base_layout(layout_dir + "-base");
      base_layout.Tag(PutImage(base_layout, repo + "-base"), "base");
      base_digest = base_layout.last_digest();
      if (absl::Status s = Push(base_layout.dir(), "base", target + ":base"); !s.ok()) return s;
      if (absl::Status s = Attach(absl::StrCat(target, "@", base_digest), spec_); !s.ok()) {
        return s;
      }
    }
    PushedImage pushed;
    std::vector<std::string> descriptors;
    const char* variants[] = {"", "v1", "v2", "v3"};
    for (int i = 0; i < entries; ++i) {
      const std::string variant = variants[i % 4];
      const std::string annotations =
          base && i == 0
              ? absl::StrCat(R"("org.opencontainers.image.base.digest":")", base_digest, R"(")")
              : "";
      std::string d = PutImage(layout, absl::StrCat(repo, "-", i), annotations);
      pushed.entries.push_back(layout.last_digest());
      d.insert(
          d.size() - 1,
          absl::StrCat(R"(,"platform":{"os":"linux","architecture":"amd64")",
                       variant.empty() ? "" : absl::StrCat(R"(,"variant":")", variant, "\""), "}"));
      descriptors.push_back(d);
    }
    layout.Tag(layout.Put("application/vnd.oci.image.index.v1+json",
                          absl::StrCat(R"({"schemaVersion":2,)",
                                       R"("mediaType":"application/vnd.oci.image.index.v1+json",)",
                                       R"("manifests":[)", absl::StrJoin(descriptors, ","), "]}")),
               "v1");
    pushed.index = layout.last_digest();
    if (absl::Status s = Push(layout_dir, "v1", target + ":v1"); !s.ok()) return s;
    std::vector<std::string> subjects = pushed.entries;
    subjects.push_back(pushed.index);
    for (const std::string& subject : subjects) {
      if (absl::Status s = Attach(absl::StrCat(target, "@", subject), spec_); !s.ok()) return s;
    }
    return pushed;
  }

  // A fresh pipeline (empty cache directory) for the x86-64-v3 example host
  // with a kernel 6.1 (which the spec asks about).
  static absl::StatusOr<std::unique_ptr<SelectionPipeline>> FreshPipeline(const std::string& name) {
    const std::string cache = absl::StrCat(dir_, "/cache-", name);
    fs::create_directories(cache);
    auto config =
        ParseConfig(absl::StrCat("version = 1\n[compat]\ncache_dir = \"", cache, "\"\n"), "test");
    if (!config.ok()) return config.status();
    auto host = ParseHostProfile(ReadFile(IMGSEL_EXAMPLES "/hosts/amd64-v3.json"), "amd64-v3.json");
    if (!host.ok()) return host.status();
    host->nfd.attributes["kernel.version"] = {{"major", "6"}, {"minor", "1"}};
    return SelectionPipeline::Create(*std::move(config), *std::move(host));
  }

  // What one selection asked the registry for.
  struct Measured {
    Selection selection;
    std::vector<RoundTripProxy::Request> requests;  // all of them
    bool index_fetched = false;                     // the index was asked for (a cold selection)
    int after_index_depth = 0;                      // sequential round trips after the index GET
    size_t after_index_requests = 0;
  };

  static absl::StatusOr<Measured> SelectThroughProxy(const SelectionPipeline& pipeline,
                                                     RoundTripProxy& proxy, absl::Duration delay,
                                                     const std::string& repo,
                                                     const std::string& index) {
    const size_t before = proxy.requests().size();
    SelectionRequest request;
    request.reference = absl::StrCat("127.0.0.1:", proxy.port(), "/", repo, "@", index);
    auto selection = pipeline.Select(request);
    if (!selection.ok()) return selection.status();
    const std::vector<RoundTripProxy::Request> all = proxy.requests();
    Measured m{*std::move(selection), {all.begin() + before, all.end()}};
    auto index_get = std::find_if(m.requests.begin(), m.requests.end(), [&](const auto& r) {
      return absl::StrContains(r.line, absl::StrCat("/manifests/", index));
    });
    if (index_get != m.requests.end()) {
      m.index_fetched = true;
      const std::vector<RoundTripProxy::Request> after(index_get + 1, m.requests.end());
      m.after_index_depth = RoundTripProxy::Depth(after, delay);
      m.after_index_requests = after.size();
    }
    return m;
  }

  static std::string Describe(const std::vector<RoundTripProxy::Request>& log) {
    std::string out;
    const absl::Time t0 = log.empty() ? absl::Now() : log.front().arrived;
    for (const auto& r : log) {
      absl::StrAppend(&out, "\n  +", absl::ToInt64Milliseconds(r.arrived - t0), " ms ", r.line);
    }
    return out;
  }

  // Every entry was decided with its own and the index's artifact (and,
  // for `based`, its base's), and the selection did not fall back.
  static void ExpectEveryArtifactApplied(const Measured& m, const PushedImage& image,
                                         const std::string& based = "") {
    EXPECT_FALSE(m.selection.decision.fallback) << m.selection.decision.fallback_reason;
    ASSERT_NE(m.selection.chosen(), nullptr);
    for (const std::string& entry : image.entries) {
      auto it = m.selection.compat.find(entry);
      ASSERT_NE(it, m.selection.compat.end()) << entry << " was not decided with artifacts";
      EXPECT_EQ(it->second.size(), entry == based ? 3u : 2u) << entry;
    }
  }

  static inline std::string skip_;
  static inline std::string dir_;
  static inline std::string spec_;
  static inline registry::testing::RealRegistry* registry_ = nullptr;
  static inline RoundTripProxy* figure_proxy_ = nullptr;
  static inline RoundTripProxy* steady_proxy_ = nullptr;

  // The proxies a selection is measured through, the figures' first.
  struct Probe {
    RoundTripProxy* proxy;
    absl::Duration delay;
  };
  static std::vector<Probe> Probes() {
    return {{figure_proxy_, kFigureDelay}, {steady_proxy_, kSteadyDelay}};
  }
};

// The sequential round trips a cold selection of an index of `entries`
// (each with an artifact, as the index) may take after the index GET, from
// the client's caps. Subjects S = entries + 1.
//   listing: ceil(S / 64) rounds (64 subjects at once; the first round asks
//            the referrers API and the sha256- tag together), one more when
//            that first round and the entries' manifests read alongside it
//            need more than the registry's request slots (128);
//   artifact manifests: ceil(S / 128) (one per subject);
//   artifact blobs: one round: one GET per distinct blob, and here every
//            artifact has the same one (the same spec everywhere).
// For 4 entries and for 32: 1 + 0 + 1 + 1 = 3, the floor.
int ExpectedDepth(int entries) {
  const int subjects = entries + 1;
  auto rounds = [](int n, int at_once) { return (n + at_once - 1) / at_once; };
  const int first_round = 2 * std::min(subjects, kSubjectsAtOnce) + entries;
  return rounds(subjects, kSubjectsAtOnce) + (first_round > kSlots ? 1 : 0) +
         rounds(subjects, kSlots) + 1;
}

TEST_F(ArtifactRoundTrips, ColdSelectionStaysAtTheReferrersFloorAndWarmAsksNothing) {
  // The floor, list, artifact manifest, blob, whatever the index's size.
  EXPECT_EQ(ExpectedDepth(4), 3);
  EXPECT_EQ(ExpectedDepth(32), 3);
  struct Case {
    int entries;
  };
  const Case cases[] = {{4}, {32}};
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.entries, " entries"));
    const std::string repo = absl::StrCat("rtt-", c.entries);
    auto image = PushIndex(repo, c.entries, /*base=*/false);
    ASSERT_TRUE(image.ok()) << image.status();
    for (const Probe& probe : Probes()) {
      SCOPED_TRACE(absl::StrCat("delay ", absl::FormatDuration(probe.delay)));
      auto pipeline =
          FreshPipeline(absl::StrCat(repo, "-", absl::ToInt64Milliseconds(probe.delay)));
      ASSERT_TRUE(pipeline.ok()) << pipeline.status();

      const absl::Time start = absl::Now();
      auto cold = SelectThroughProxy(**pipeline, *probe.proxy, probe.delay, repo, image->index);
      const absl::Duration cold_wall = absl::Now() - start;
      ASSERT_TRUE(cold.ok()) << cold.status();
      ASSERT_TRUE(cold->index_fetched) << Describe(cold->requests);
      ExpectEveryArtifactApplied(*cold, *image);

      const absl::Time warm_start = absl::Now();
      auto warm = SelectThroughProxy(**pipeline, *probe.proxy, probe.delay, repo, image->index);
      const absl::Duration warm_wall = absl::Now() - warm_start;
      ASSERT_TRUE(warm.ok()) << warm.status();
      ExpectEveryArtifactApplied(*warm, *image);

      std::cout << c.entries << " entries, " << absl::FormatDuration(probe.delay)
                << " a request, cold: " << cold->after_index_depth
                << " sequential round trips after the index (" << cold->after_index_requests
                << " requests; " << cold->requests.size() << " in all), wall "
                << absl::FormatDuration(cold_wall) << "; warm: " << warm->requests.size()
                << " requests, wall " << absl::FormatDuration(warm_wall) << std::endl;
      // 4 entries hold the floor at either delay; the 32 entries' bound is
      // asserted where scheduling cannot add to it.
      if (c.entries == 4 || probe.delay == kSteadyDelay) {
        EXPECT_LE(cold->after_index_depth, ExpectedDepth(c.entries)) << Describe(cold->requests);
      }
      EXPECT_EQ(warm->requests.size(), 0u) << Describe(warm->requests);
      EXPECT_EQ(warm->selection.decision.selected_descriptor()->digest,
                cold->selection.decision.selected_descriptor()->digest);
    }
  }
}

TEST_F(ArtifactRoundTrips, ALevelOfBaseImagesCostsOneRoundTripMore) {
  const std::string repo = "rtt-based";
  auto image = PushIndex(repo, 4, /*base=*/true);
  ASSERT_TRUE(image.ok()) << image.status();
  for (const Probe& probe : Probes()) {
    SCOPED_TRACE(absl::StrCat("delay ", absl::FormatDuration(probe.delay)));
    auto pipeline = FreshPipeline(absl::StrCat(repo, "-", absl::ToInt64Milliseconds(probe.delay)));
    ASSERT_TRUE(pipeline.ok()) << pipeline.status();

    const absl::Time start = absl::Now();
    auto cold = SelectThroughProxy(**pipeline, *probe.proxy, probe.delay, repo, image->index);
    const absl::Duration cold_wall = absl::Now() - start;
    ASSERT_TRUE(cold.ok()) << cold.status();
    ASSERT_TRUE(cold->index_fetched) << Describe(cold->requests);
    ExpectEveryArtifactApplied(*cold, *image, /*based=*/image->entries.front());
    auto warm = SelectThroughProxy(**pipeline, *probe.proxy, probe.delay, repo, image->index);
    ASSERT_TRUE(warm.ok()) << warm.status();

    std::cout << "4 entries, one built on a base with its own artifact, "
              << absl::FormatDuration(probe.delay)
              << " a request, cold: " << cold->after_index_depth
              << " sequential round trips after the index (" << cold->after_index_requests
              << " requests; " << cold->requests.size() << " in all), wall "
              << absl::FormatDuration(cold_wall) << "; warm: " << warm->requests.size()
              << " requests" << std::endl;
    EXPECT_LE(cold->after_index_depth, 4) << Describe(cold->requests);
    EXPECT_EQ(warm->requests.size(), 0u) << Describe(warm->requests);
  }
}

}  // namespace
}  // namespace imgsel::integration
