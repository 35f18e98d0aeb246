// EncodeSelectAnswer against the generated message: for every kind of
// selection, the bytes imgseld sends parse to exactly the SelectResponse the
// generated classes build from the same Selection (the oracle below, which
// is how the answer was built before it was encoded directly).
#include "plugin/select_answer.h"

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "config/config.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "imgsel/v1/selector.pb.h"
#include "matcher/decision_json.h"
#include "matcher/host_profile.h"
#include "matcher/select.h"
#include "selector/pipeline.h"

namespace imgsel::plugin {
namespace {

namespace v1 = imgsel::v1;

// The oracle: the answer through the generated message classes.
void PlatformToProto(const PlatformView& p, v1::Platform* out) {
  out->set_os(std::string(p.os));
  out->set_architecture(std::string(p.architecture));
  out->set_variant(std::string(p.variant));
  out->set_os_version(std::string(p.os_version));
  for (absl::string_view f : p.os_features) out->add_os_features(std::string(f));
  for (absl::string_view f : p.features) out->add_features(std::string(f));
}

void DescriptorToProto(const Descriptor& d, v1::Descriptor* out) {
  out->set_media_type(std::string(d.media_type));
  out->set_digest(std::string(d.digest));
  out->set_size(d.size);
  if (d.platform) PlatformToProto(*d.platform, out->mutable_platform());
  for (const auto& [k, v] : d.annotations) {
    (*out->mutable_annotations())[std::string(k)] = std::string(v);
  }
}

v1::SelectResponse Oracle(const Selection& sel, bool with_json, bool basic) {
  v1::SelectResponse out;
  const Decision& d = sel.decision;
  if (const Descriptor* chosen = sel.chosen()) DescriptorToProto(*chosen, out.mutable_selected());
  out.set_fallback(d.fallback);
  out.set_fallback_reason(d.fallback_reason);
  out.set_nothing_to_choose(d.nothing_to_choose || !sel.is_index);
  out.set_policy(d.policy == PolicyKind::kFirstMatch ? v1::POLICY_FIRST_MATCH : v1::POLICY_BEST);
  out.set_host_platform(d.host_platform);
  out.set_reference(sel.reference);
  out.set_document_digest(sel.document_digest);
  out.set_document_media_type(sel.document_media_type);
  for (const std::string& w : sel.warnings) out.add_warnings(w);
  if (with_json) out.set_decision_json(DecisionToJson(d, 0));
  out.set_elapsed_us(static_cast<uint64_t>(absl::ToInt64Microseconds(sel.elapsed)));
  if (basic) return out;
  const Candidate* winner = d.selected();
  for (const Candidate& c : d.candidates) {
    v1::Candidate* pc = out.add_candidates();
    pc->set_position(static_cast<uint32_t>(c.position));
    DescriptorToProto(d.index.manifests[c.position], pc->mutable_entry());
    pc->set_eligible(c.eligible);
    pc->set_selected(&c == winner);
    pc->set_score(c.score);
    pc->set_platform_rank(c.platform_rank);
    for (std::string& r : ExplainCandidate(d, c)) pc->add_reasons(std::move(r));
  }
  for (const auto& [entry, results] : sel.compat) {
    for (const auto& shared : results) {
      if (shared == nullptr) continue;
      v1::CompatibilityResult* pr = out.add_compatibility();
      pr->set_entry_digest(entry);
      pr->set_artifact(shared->id);
      pr->set_kind(shared->kind);
      pr->set_on_index(shared->on_index);
      pr->set_from_base(shared->from_base);
      pr->set_matched(shared->matched);
      if (shared->weight) {
        pr->set_weight(*shared->weight);
        pr->set_has_weight(true);
      }
      for (const std::string& media_type : shared->not_read) pr->add_not_read(media_type);
    }
  }
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Digest(int i) {
  std::string hex = absl::StrCat(i);
  return absl::StrCat("sha256:", std::string(64 - hex.size(), 'c'), hex);
}

class SelectAnswerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto host = ParseHostProfile(ReadFile(std::string(IMGSEL_EXAMPLES) + "/hosts/amd64-v3.json"),
                                 "amd64-v3.json");
    ASSERT_TRUE(host.ok()) << host.status();
    Config config;
    PreferRule gpu;
    gpu.annotation = "com.example.gpu";
    gpu.weight = 5;
    config.policy.prefer.push_back(gpu);
    auto pipeline = SelectionPipeline::Create(config, *host);
    ASSERT_TRUE(pipeline.ok()) << pipeline.status();
    pipeline_ = *std::move(pipeline);
  }

  Selection SelectBytes(const std::string& index, PolicyKind policy = PolicyKind::kBest) {
    SelectionRequest req;
    req.index_bytes = index;
    req.reference = "registry.example/app:v1";
    req.policy = policy;
    auto sel = pipeline_->Select(req);
    EXPECT_TRUE(sel.ok()) << sel.status();
    return sel.ok() ? *std::move(sel) : Selection{};
  }

  // Every view of `sel` encodes to what the oracle builds.
  static void ExpectSameAsOracle(const Selection& sel, const std::string& what) {
    for (bool basic : {false, true}) {
      for (bool json : {false, true}) {
        std::string wire = "prefix";  // appended to, not replaced
        EncodeSelectAnswer(sel, json, basic, &wire);
        ASSERT_EQ(wire.substr(0, 6), "prefix");
        v1::SelectResponse decoded;
        ASSERT_TRUE(decoded.ParseFromString(wire.substr(6))) << what;
        const v1::SelectResponse want = Oracle(sel, json, basic);
        std::string diff;
        google::protobuf::util::MessageDifferencer differ;
        differ.ReportDifferencesToString(&diff);
        EXPECT_TRUE(differ.Compare(want, decoded))
            << what << (basic ? " (basic)" : " (full)") << (json ? " with json" : "") << ":\n"
            << diff;
      }
    }
  }

  std::unique_ptr<SelectionPipeline> pipeline_;
};

TEST_F(SelectAnswerTest, ExampleIndexBothPolicies) {
  const std::string index = ReadFile(
      std::string(IMGSEL_EXAMPLES) +
      "/layout/blobs/sha256/25379efb0d455eb3a57777dffb980043481090ea07c60f68e2f5bf4edcbce8a7");
  ASSERT_FALSE(index.empty());
  ExpectSameAsOracle(SelectBytes(index), "example, best");
  ExpectSameAsOracle(SelectBytes(index, PolicyKind::kFirstMatch), "example, first-match");
}

// Every field shape the encoder writes: features and os.features lists,
// annotations (empty values, a key twice, long values that need 3-byte
// lengths), zero and large sizes, negative ranks, no platform, invalid
// entries, nothing that fits.
TEST_F(SelectAnswerTest, EveryFieldShape) {
  const std::string long_value(20000, 'v');
  const std::string index = absl::StrCat(
      R"({"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)",
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")", Digest(1),
      R"(","size":0,"platform":{"os":"linux","architecture":"amd64","features":["avx2","fma"]},)",
      R"("annotations":{"com.example.gpu":"","a":"1","a":"2"}},)",
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")", Digest(2),
      R"(","size":9007199254740993,"annotations":{"long":")", long_value, R"("}},)",
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")", Digest(3),
      R"(","size":1,"platform":{"os":"windows","architecture":"amd64","os.version":"10.0.17763.1",)",
      R"("os.features":["win32k"]}},)",
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bad","size":1},)",
      R"({"mediaType":"application/vnd.oci.image.index.v1+json","digest":")", Digest(5),
      R"(","size":1},)", R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")",
      Digest(6),
      R"(","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]})");
  const Selection sel = SelectBytes(index);
  ASSERT_NE(sel.chosen(), nullptr);
  ExpectSameAsOracle(sel, "every field shape");

  const std::string arm_only = absl::StrCat(
      R"({"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")",
      Digest(7), R"(","size":3,"platform":{"os":"linux","architecture":"arm64"}}]})");
  const Selection none = SelectBytes(arm_only);
  EXPECT_EQ(none.chosen(), nullptr);
  ExpectSameAsOracle(none, "nothing fits");

  const Selection manifest = SelectBytes(
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]})");
  ExpectSameAsOracle(manifest, "a single manifest");
}

// An answer larger than the buffer a thread keeps between answers (64 KiB):
// the buffer grows in the middle of nested messages, then shrinks back, and
// the next answer on the same thread is still exact.
TEST_F(SelectAnswerTest, AnswerLargerThanTheKeptBuffer) {
  std::string index = R"({"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)";
  for (int i = 1; i <= 6; ++i) {
    absl::StrAppend(&index, i > 1 ? "," : "",
                    R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")",
                    Digest(i), R"(","size":1,"platform":{"os":"linux","architecture":"amd64"},)",
                    R"("annotations":{"big":")", std::string(30000 + i, 'a' + i), R"("}})");
  }
  index += "]}";
  const Selection big = SelectBytes(index);
  ASSERT_NE(big.chosen(), nullptr);
  std::string wire;
  EncodeSelectAnswer(big, false, false, &wire);
  EXPECT_GT(wire.size(), 200000u);
  ExpectSameAsOracle(big, "an answer over 64 KiB");

  const std::string example = ReadFile(
      std::string(IMGSEL_EXAMPLES) +
      "/layout/blobs/sha256/25379efb0d455eb3a57777dffb980043481090ea07c60f68e2f5bf4edcbce8a7");
  ExpectSameAsOracle(SelectBytes(example), "the example after a large answer");
}

TEST_F(SelectAnswerTest, CompatibilityResultsWarningsAndFallback) {
  const std::string index = ReadFile(
      std::string(IMGSEL_EXAMPLES) +
      "/layout/blobs/sha256/25379efb0d455eb3a57777dffb980043481090ea07c60f68e2f5bf4edcbce8a7");
  Selection sel = SelectBytes(index);
  auto matched = std::make_shared<ArtifactResult>();
  matched->id = Digest(10);
  matched->kind = "application/vnd.nfd.image-compatibility.v1alpha1";
  matched->matched = true;
  matched->weight = -7;
  matched->from_base = "docker.io/library/debian@" + Digest(13);
  auto on_index = std::make_shared<ArtifactResult>();
  on_index->id = Digest(11);
  on_index->kind = "application/vnd.nfd.image-compatibility.v1alpha1";
  on_index->on_index = true;
  on_index->not_read = {"text/plain", "application/vnd.other.community.v1+json"};
  sel.compat[Digest(1)] = {matched, nullptr, on_index};
  sel.compat[Digest(2)] = {};
  sel.warnings = {"artifact sha256:…: ignored (on_error = \"ignore\")", ""};
  sel.document_digest = Digest(12);
  sel.document_media_type = "application/vnd.oci.image.index.v1+json";
  sel.decision.fallback = true;
  sel.decision.fallback_reason = "registry unreachable: ünïcode reason";
  sel.elapsed = absl::Microseconds(123456789);
  ExpectSameAsOracle(sel, "compatibility, warnings, fallback");
}

// A registry's message cut at a byte count inside a character, and bytes
// that are not UTF-8 at all: the answer still parses with the generated
// classes (proto3 refuses a string field that is not UTF-8), the cut
// character is dropped and every other bad byte is U+FFFD.
TEST_F(SelectAnswerTest, EveryStringIsUtf8WhateverTheSelectionHolds) {
  const std::string fffd = "\xEF\xBF\xBD";
  // "HTTP 500 " and 64 bytes of a registry's error code made of
  // 3-byte characters: the last one cut after its second byte.
  std::string code;
  for (int i = 0; i < 22; ++i) code += "\xE2\x80\x98";
  const std::string cut = "GET /v2/app/manifests/v1: HTTP 500 " + code.substr(0, 64);
  const std::string whole_chars = "GET /v2/app/manifests/v1: HTTP 500 " + code.substr(0, 63);
  const std::string not_utf8 = "registry said \xFF\xFE\xC0\xAF here";
  const std::string replaced = "registry said " + fffd + fffd + fffd + fffd + " here";

  const std::string index = ReadFile(
      std::string(IMGSEL_EXAMPLES) +
      "/layout/blobs/sha256/25379efb0d455eb3a57777dffb980043481090ea07c60f68e2f5bf4edcbce8a7");
  Selection sel = SelectBytes(index);
  sel.reference = "registry.example/app:v1";
  sel.warnings = {cut, not_utf8};
  auto artifact = std::make_shared<ArtifactResult>();
  artifact->id = Digest(10);
  artifact->kind = "kind \xC3";
  sel.compat[Digest(1)] = {artifact};
  for (const std::string& reason : {cut, not_utf8}) {
    sel.decision.fallback = true;
    sel.decision.fallback_reason = reason;
    for (bool basic : {false, true}) {
      std::string wire;
      EncodeSelectAnswer(sel, /*with_json=*/true, basic, &wire);
      v1::SelectResponse decoded;
      ASSERT_TRUE(decoded.ParseFromString(wire)) << absl::CEscape(reason);
      EXPECT_EQ(decoded.fallback_reason(), reason == cut ? whole_chars : replaced);
      ASSERT_EQ(decoded.warnings_size(), 2);
      EXPECT_EQ(decoded.warnings(0), whole_chars);
      EXPECT_EQ(decoded.warnings(1), replaced);
      if (!basic) {
        ASSERT_EQ(decoded.compatibility_size(), 1);
        EXPECT_EQ(decoded.compatibility(0).kind(), "kind ");
      }
      EXPECT_EQ(decoded.selected().digest(), sel.chosen()->digest);
    }
  }
  // The answer to a selection that ended in an error.
  for (const std::string& reason : {cut, not_utf8}) {
    std::string wire;
    EncodeFallbackAnswer("registry.example/app:v1", PolicyKind::kFirstMatch, reason,
                         absl::Microseconds(42),
                         [&](absl::string_view bytes) { wire = std::string(bytes); });
    v1::SelectResponse decoded;
    ASSERT_TRUE(decoded.ParseFromString(wire)) << absl::CEscape(reason);
    EXPECT_TRUE(decoded.fallback());
    EXPECT_EQ(decoded.fallback_reason(), reason == cut ? whole_chars : replaced);
    EXPECT_EQ(decoded.reference(), "registry.example/app:v1");
    EXPECT_EQ(decoded.policy(), v1::POLICY_FIRST_MATCH);
    EXPECT_EQ(decoded.elapsed_us(), 42u);
  }
}

}  // namespace
}  // namespace imgsel::plugin
