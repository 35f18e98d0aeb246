// ParseIndex walks simdjson's stage-1 token index itself (matcher/json_cursor.h).
// These tests hold it equal to the reference reading through simdjson's DOM
// (tests/matcher/dom_index_oracle.h): on hand-written JSON of every kind and
// on thousands of corrupted indexes, both accept or both refuse; a refusal is
// of the same class (not valid JSON, too deep, or the same schema message);
// an accepted document yields the same descriptors, lists and reasons.
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "matcher/index.h"
#include "tests/fuzz/json_mutator.h"
#include "tests/matcher/dom_index_oracle.h"

namespace imgsel {
namespace {

// A refusal of the document as JSON is one class: when a document is both
// too deep and broken further on, which of the two is found first differs
// (simdjson's DOM checks that the outermost brackets match before it walks).
// DepthLimitAtItsEdge holds the depth errors equal on their own.
std::string Class(const absl::Status& s) {
  const std::string m(s.message());
  if (absl::StrContains(m, ": not valid JSON") || absl::StrContains(m, "nested deeper than")) {
    return "refused as JSON";
  }
  return m;
}

std::string Lists(StringList l) {
  std::string out;
  for (auto s : l) absl::StrAppend(&out, "[", s, "]");
  return out;
}

std::string Annotations(AnnotationList l) {
  std::string out;
  for (const auto& [k, v] : l) absl::StrAppend(&out, "[", k, "=", v, "]");
  return out;
}

// Everything a reader of a ParsedIndex sees, as one text.
std::string Describe(const ParsedIndex& index) {
  std::ostringstream out;
  out << "kind=" << static_cast<int>(index.kind) << " mediaType=" << index.media_type
      << " annotations=" << Annotations(index.annotations) << "\n";
  if (index.kind == DocumentKind::kManifest) return out.str();
  for (size_t i = 0; i < index.manifests.size(); ++i) {
    const Descriptor& d = index.manifests[i];
    out << i << ": mt=" << d.media_type << " digest=" << d.digest << " size=" << d.size
        << " at=" << d.artifact_type << " invalid=" << d.invalid_reason
        << " ann=" << Annotations(d.annotations);
    if (d.platform) {
      const PlatformView& p = *d.platform;
      out << " platform={" << p.os << "|" << p.architecture << "|" << p.variant << "|"
          << p.os_version << "|" << Lists(p.os_features) << "|" << Lists(p.features) << "}";
    }
    out << "\n";
  }
  return out.str();
}

// Empty when the two readings agree, else what differs.
std::string Difference(const std::string& json, const ParseLimits& limits = {}) {
  auto got = ParseIndex(json, "doc", limits);
  auto want = oracle::DomParseIndex(json, "doc", limits);
  if (got.ok() != want.ok()) {
    return absl::StrCat("ParseIndex: ", got.ok() ? "OK" : got.status().ToString(),
                        "\nDOM: ", want.ok() ? "OK" : want.status().ToString());
  }
  if (!got.ok()) {
    if (Class(got.status()) != Class(want.status())) {
      return absl::StrCat("ParseIndex: ", got.status().ToString(),
                          "\nDOM: ", want.status().ToString());
    }
    return "";
  }
  const std::string a = Describe(*got), b = Describe(*want);
  return a == b ? "" : absl::StrCat("ParseIndex:\n", a, "DOM:\n", b);
}

std::string Printable(const std::string& s) {
  std::string out;
  for (char c : s.substr(0, 600)) {
    if (c >= 0x20 && c < 0x7f) {
      out += c;
    } else {
      absl::StrAppend(&out, "\\x", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
    }
  }
  return out;
}

constexpr char kDigest[] =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

std::string Entry(const std::string& rest) {
  return absl::StrCat(R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")",
                      kDigest, R"(","size":7)", rest, "}");
}

std::string Index(const std::string& entries, const std::string& extra = "") {
  return absl::StrCat(
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)",
      entries, "]", extra, "}");
}

// A realistic index: every field the reader knows, escapes, unknown fields
// of every JSON type, nested values.
std::string Seed() {
  return Index(
      absl::StrJoin(
          {
              Entry(R"(,"platform":{"os":"linux","architecture":"amd64"})"),
              Entry(R"(,"platform":{"os":"linux","architecture":"amd64","variant":"v3",)"
                    R"("features":["avx2","bmi2"]},"annotations":{"com.example.gpu":"nvidia"})"),
              Entry(R"(,"platform":{"os":"windows","architecture":"amd64",)"
                    R"("os.version":"10.0.17763.1","os.features":["win32k"]})"),
              Entry(R"(,"platform":{"os":"linux","architecture":"arm\u0036\u0034"},)"
                    R"("annotations":{"k\"q":"v\\w\/\n\u00e9\ud83d\ude00"})"),
              Entry(R"(,"urls":["http://x"],"data":"", "x":{"a":[1,-2.5e3,true,false,null,{}]},)"
                    R"("n":-0,"f":1.25E+2,"big":12345678901234567890)"),
              Entry(R"(,"artifactType":"application/spdx+json","platform":null)"),
              Entry(R"( , "platform" : { "os" : "linux" , "architecture" : "arm" , )"
                    R"("variant" : "v7" } )"),
          },
          ","),
      R"(,"annotations":{"org.opencontainers.image.created":"2026-01-01T00:00:00Z"},)"
      R"("subject":{"digest":"x","size":1})");
}

TEST(IndexDifferential, HandWrittenDocuments) {
  const std::string cases[] = {
      // Valid JSON, various shapes.
      Seed(),
      Index(""),
      Index(Entry("")),
      Index("", R"(,"annotations":null)"),
      Index("{},{},[],1,\"x\",null,true"),
      R"({"manifests":[]})",
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","manifests":5})",
      R"({"config":{},"layers":[]})",
      R"({"manifests":[],"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json"})",
      R"({"manifests":[)" + Entry("") + R"(],"manifests":[]})",
      R"({"manifests":[],"manifests":[)" + Entry("") + "]}",
      R"({"annotations":{"a":"b"},"manifests":[],"annotations":{"c":"d"}})",
      R"({"annotations":{"a":1},"manifests":[],"annotations":{"c":"d"}})",
      R"({"mediaType":5,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]})",
      R"({"mediaType":"application/vnd.oci.image.index.v1+json","mediaType":5,"manifests":[]})",
      R"({"mediaType":"text/plain","manifests":[]})",
      R"({"schemaVersion":2})",
      R"({"manifests":{}})",
      R"({"manifests":"x"})",
      R"({})",
      "[]",
      "5",
      "\"s\"",
      "null",
      " \n\t{\"manifests\":[]} \n",
      // Entries with every schema problem, and problems in combination.
      Index(Entry(R"(,"size":-1)")),
      Index(Entry(R"(,"size":1.0)")),
      Index(Entry(R"(,"size":1e2)")),
      Index(Entry(R"(,"size":9223372036854775807)")),
      Index(Entry(R"(,"size":9223372036854775808)")),
      Index(Entry(R"(,"size":-9223372036854775808)")),
      Index(Entry(R"(,"size":18446744073709551615)")),
      Index(Entry(R"(,"size":"7")")),
      Index(Entry(R"(,"size":null)")),
      Index(Entry(R"(,"digest":"sha256:abc")")),
      Index(Entry(R"(,"digest":7,"size":-1)")),
      Index(Entry(R"(,"mediaType":1,"digest":2)")),
      Index(Entry(R"(,"platform":[])")),
      Index(Entry(R"(,"platform":{"os":"linux"})")),
      Index(Entry(R"(,"platform":{"os":"linux","architecture":5})")),
      Index(Entry(R"(,"platform":{"architecture":"amd64","features":"avx2"})")),
      Index(Entry(R"(,"platform":{"architecture":"amd64","features":["avx2",3]})")),
      Index(Entry(R"(,"platform":{"architecture":"amd64","os.features":{}})")),
      Index(Entry(R"(,"platform":{"os":"linux"},"size":-5)")),
      Index(Entry(R"(,"platform":{"os":"linux"},"platform":{"architecture":"arm64"})")),
      Index(Entry(R"(,"platform":{"architecture":"arm64"},"platform":{"os":"linux"})")),
      Index(Entry(R"(,"platform":{"architecture":"arm64"},"platform":null)")),
      Index(Entry(R"(,"annotations":{"a":1})")),
      Index(Entry(R"(,"annotations":[])")),
      Index(Entry(R"(,"annotations":{"a":"b","c":[1,{"d":2}]})")),
      Index(Entry(R"(,"artifactType":{})")),
      Index(R"({"size":1})"),
      Index(R"({"digest":")" + std::string(kDigest) + R"("})"),
      Index("42"),
      Index("[1]"),
      Index("\"x\""),
      Index(
          R"({"digest":"sha256:\u0030123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","size":1})"),
      // Not valid JSON.
      "",
      " ",
      "{",
      "}",
      "{\"manifests\":[]",
      "{\"manifests\":[]}}",
      "{\"manifests\":[]} x",
      "{\"manifests\":[],}",
      "{,\"manifests\":[]}",
      "{\"manifests\" []}",
      "{\"manifests\":[,]}",
      "{\"manifests\":[{},]}",
      "{\"manifests\":[{}{}]}",
      "{\"manifests\":[],\"a\":tru}",
      "{\"manifests\":[],\"a\":truex}",
      "{\"manifests\":[],\"a\":nul}",
      "{\"manifests\":[],\"a\":01}",
      "{\"manifests\":[],\"a\":1.}",
      "{\"manifests\":[],\"a\":-}",
      "{\"manifests\":[],\"a\":1e400}",
      "{\"manifests\":[],\"a\":123456789012345678901234567890}",
      "{\"manifests\":[],\"a\":1e-400}",
      "{\"manifests\":[],\"a\":\"\\q\"}",
      "{\"manifests\":[],\"a\":\"\\u12\"}",
      "{\"manifests\":[],\"a\":\"\\ud800\"}",
      "{\"manifests\":[],\"a\":\"a\x01\"}",
      "{\"manifests\":[],\"a\":\"\xff\"}",
      "{\"manifests\":[],\"a\":\"unclosed}",
      "{\"manifests\":[],\"a\":'x'}",
      "{\"manifests\":[],\"a\":[1 2]}",
      "{\"manifests\":[],\"a\":{\"b\"}}",
      "{\"manifests\":[],\"a\":{\"b\":}}",
      "{\"manifests\":[],\"a\":{1:2}}",
      "{\"manifests\":[],\"a\":[}",
      "{\"manifests\":[],\"a\":{]}",
      "{\"manifests\":[],\"a\":\"x\"\"y\"}",
      "{\"manifests\":[],\"a\":\"x\"y}",
      "{\"manifests\":[],\"a\":1\"y\"}",
      "{\"manifests\":[],\"a\":true\"y\"}",
      "{\"manifests\":[],\"a\":\x00}",
      "{\"manifests\":[],\"a\\x\":1}",
      Index(Entry(R"(,"size":7 7)")),
      Index(Entry(R"(,"size":-)")),
      Index(Entry(R"(,"size":1.)")),
      Index(Entry(R"(,"size":--1)")),
      Index(Entry(R"(,"size":1e400)")),
      Index(Entry(R"(,"size":99999999999999999999999)")),
      Index(Entry(R"(,"size":"x","size":tru)")),
      Index(Entry(R"(,"size":-1,"x":[)")),
      Index(Entry(R"(,"digest":1,"x":"\z")")),
      Index(Entry(R"(,"platform":{"os":1,"x":nul})")),
      Index(Entry(R"(,"annotations":{"a":1,"b":[}})")),
      "[1,2] 3",
      "5 5",
      "{\"mediaType\":5,\"x\":[}",
  };
  int n = 0;
  for (const std::string& json : cases) {
    EXPECT_EQ(Difference(json), "") << "case " << n << ": " << Printable(json);
    ++n;
  }
}

TEST(IndexDifferential, DepthLimitAtItsEdge) {
  for (size_t max_depth : {size_t{3}, size_t{4}, size_t{5}, size_t{64}}) {
    ParseLimits limits;
    limits.max_depth = max_depth;
    for (size_t extra = 0; extra <= 70; ++extra) {
      const std::string json = absl::StrCat(R"({"manifests":[],"x":)", std::string(extra, '['),
                                            std::string(extra, ']'), "}");
      EXPECT_EQ(Difference(json, limits), "") << max_depth << " " << extra;
      const auto got = ParseIndex(json, "doc", limits);
      const auto want = oracle::DomParseIndex(json, "doc", limits);
      if (absl::StrContains(want.status().message(), "nested deeper than")) {
        EXPECT_EQ(got.status().ToString(), want.status().ToString()) << max_depth << " " << extra;
      }
      const std::string in_entry =
          Index(Entry(absl::StrCat(R"(,"platform":{"architecture":"a","x":)",
                                   std::string(extra, '['), std::string(extra, ']'), "}")));
      EXPECT_EQ(Difference(in_entry, limits), "") << max_depth << " " << extra << " in an entry";
    }
    // Depth reached by the index's own structure.
    EXPECT_EQ(
        Difference(Index(Entry(R"(,"platform":{"architecture":"a","features":["x"]})")), limits),
        "")
        << max_depth;
  }
}

TEST(IndexDifferential, EntryLimitCountsEveryEntry) {
  ParseLimits limits;
  limits.max_entries = 2;
  for (
      const std::string& json : std::vector<std::string>{
          Index("{},{},{}"), Index("{},{}"), Index("{},{},{},[}"),
          std::string(
              R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","manifests":[{},{},{}]})")}) {
    EXPECT_EQ(Difference(json, limits), "") << json;
  }
}

// Large documents (the per-thread token index grows, then a document over
// 1 MiB gets a parser of its own) and documents whose every string is
// escaped (the unescape scratch at its fullest).
TEST(IndexDifferential, LargeAndEscapedDocuments) {
  auto many = [](int n, bool escaped) {
    std::vector<std::string> entries;
    for (int i = 0; i < n; ++i) {
      const std::string os = escaped ? "\\u006cinux\\t\\\"" : "linux";
      entries.push_back(Entry(absl::StrCat(R"(,"platform":{"os":")", os,
                                           R"(","architecture":"amd64"},"annotations":{")",
                                           escaped ? "\\u0061\\u0062" : "ab", i, R"(":")",
                                           escaped ? "\\/\\/\\/\\/" : "////", R"("})")));
    }
    return Index(absl::StrJoin(entries, ","));
  };
  ParseLimits limits;
  limits.max_bytes = 8 << 20;
  for (const auto& [n, escaped] : std::vector<std::pair<int, bool>>{
           {10, true}, {400, false}, {400, true}, {5000, false}, {9000, true}, {10, false}}) {
    const std::string json = many(n, escaped);
    EXPECT_EQ(Difference(json, limits), "") << n << " entries, escaped " << escaped;
    auto index = ParseIndex(json, "doc", limits);
    ASSERT_TRUE(index.ok()) << index.status();
    ASSERT_EQ(index->manifests.size(), static_cast<size_t>(n));
    EXPECT_EQ(index->manifests.back().platform->os, escaped ? "linux\t\"" : "linux");
  }
  EXPECT_GT(many(9000, true).size(), size_t{1} << 20);
}

TEST(IndexDifferential, CorruptedIndexes) {
  constexpr int kVariants = 30000;
  std::mt19937 rng(20261201);
  const std::string seed = Seed();
  int failures = 0, accepted = 0;
  for (int i = 0; i < kVariants; ++i) {
    const std::string json = testing::Mutate(seed, rng);
    const std::string diff = Difference(json);
    if (ParseIndex(json).ok()) ++accepted;
    if (!diff.empty() && ++failures <= 5) {
      ADD_FAILURE() << "variant " << i << ": " << Printable(json) << "\n" << diff;
    }
  }
  EXPECT_EQ(failures, 0);
  // Both outcomes must be exercised, or the comparison proves little.
  EXPECT_GT(accepted, kVariants / 20);
  EXPECT_LT(accepted, kVariants - kVariants / 20);
}

}  // namespace
}  // namespace imgsel
