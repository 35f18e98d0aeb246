// The bounded YAML reader against yaml-cpp's own loader: on documents
// without anchors it must read exactly what YAML::Load reads (kinds, text,
// order, duplicate keys, positions), since the spec reader's messages and
// meaning depend on it; and it must stop at its budget.
#include "matcher/yaml_tree.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/matcher/compat_test_util.h"
#include "yaml-cpp/yaml.h"

namespace imgsel {
namespace {

using testing::ReadTestData;

// Compares a subtree with yaml-cpp's; returns the first difference, or "".
std::string Diff(const YAML::Node& want, const YamlNode& got, const std::string& path) {
  auto where = [&](absl::string_view what) { return absl::StrCat(path, ": ", what); };
  const YAML::Mark m = want.Mark();
  if (got.pos().line != m.line + 1 || got.pos().column != m.column + 1) {
    return where(absl::StrCat("position ", got.pos().line, ":", got.pos().column, ", want ",
                              m.line + 1, ":", m.column + 1));
  }
  switch (want.Type()) {
    case YAML::NodeType::Null:
      return got.IsNull() ? "" : where("want a null");
    case YAML::NodeType::Scalar:
      if (!got.IsScalar()) return where("want a scalar");
      return got.Scalar() == want.Scalar()
                 ? ""
                 : where(absl::StrCat("\"", got.Scalar(), "\", want \"", want.Scalar(), "\""));
    case YAML::NodeType::Sequence: {
      if (!got.IsSequence()) return where("want a sequence");
      if (got.size() != want.size()) return where("sequence size");
      size_t i = 0;
      for (const YamlNode item : got.items()) {
        std::string d = Diff(want[i], item, absl::StrCat(path, "[", i, "]"));
        if (!d.empty()) return d;
        ++i;
      }
      return "";
    }
    case YAML::NodeType::Map: {
      if (!got.IsMap()) return where("want a map");
      if (got.size() != want.size()) return where("map size");
      auto it = want.begin();
      for (const YamlNode::Pair pair : got.pairs()) {
        const YAML::Node key = it->first;
        const YAML::Node value = it->second;
        std::string d = Diff(key, pair.first, absl::StrCat(path, " key"));
        if (d.empty()) d = Diff(value, pair.second, absl::StrCat(path, ".", pair.first.Scalar()));
        if (!d.empty()) return d;
        ++it;
      }
      return "";
    }
    case YAML::NodeType::Undefined:
      break;
  }
  return where("undefined in yaml-cpp");
}

class SameAsYamlCpp : public ::testing::TestWithParam<std::string> {};

TEST_P(SameAsYamlCpp, ReadsWhatYamlLoadReads) {
  const std::string& text = GetParam();
  YamlReadResult got = ReadYamlTree(text, 1 << 20);
  ASSERT_TRUE(got.tree.has_value()) << got.error->message;
  YAML::Node want = YAML::Load(text);
  std::optional<YamlNode> root = got.tree->root();
  if (!want || want.IsNull()) {
    EXPECT_TRUE(!root || root->IsNull());
    return;
  }
  ASSERT_TRUE(root.has_value());
  EXPECT_EQ(Diff(want, *root, "$"), "");
}

INSTANTIATE_TEST_SUITE_P(
    Documents, SameAsYamlCpp,
    ::testing::Values(
        ReadTestData("compat/realistic.yaml"), ReadTestData("compat/groups.json"),
        ReadTestData("compat/invalid.yaml"), ReadTestData("compat/host_gpu.json"), "",
        "# only a comment\n", "~\n", "a:\nb: ~\nc: null\nd: Null\ne: ''\nf: \"~\"\n",
        "[~, null, '', \"null\", !!str null, !!null '']\n", "k: !!str 12\nl: !custom {a: 1}\n",
        "lit: |\n  two\n  lines\nfold: >\n  one\n  line\n", "a: 1\na: 2\nb: {x: 1, x: 2}\n",
        "? [a, b]\n: c\n? d\n", "- - - deep\n    - x\n  - y\n- {a: [1, {b: c}]}\n",
        "first: 1\n---\nsecond: 2\n", "\"quoted\\tkey\": 'it''s'\nunicode: \"\\u00e9\"\n",
        "{\"json\": [1, 2.5, true, false, null, {\"n\": {}}, []]}"));

TEST(YamlTree, NodesAreCountedAndTheOnePastTheLimitStopsReading) {
  const std::string text = "a: [1, 2, 3]\n";  // map, a, [ ], 1, 2, 3: six nodes
  YamlReadResult at = ReadYamlTree(text, 6);
  ASSERT_TRUE(at.tree.has_value());
  EXPECT_EQ(at.tree->node_count(), 6u);
  YamlReadResult over = ReadYamlTree(text, 5);
  ASSERT_TRUE(over.error.has_value());
  EXPECT_EQ(over.error->reason, YamlError::Reason::kTooManyNodes);
  EXPECT_EQ(over.error->pos.line, 1);
  EXPECT_EQ(over.error->pos.column, 11) << "at the sixth node, the 3";
}

TEST(YamlTree, AnchorsStopReadingWithTheirNameAndPlace) {
  YamlReadResult r = ReadYamlTree("a: 1\nb: &big [1, 2]\nc: *big\n", 100);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->reason, YamlError::Reason::kAnchor);
  EXPECT_EQ(r.error->message, "big");
  EXPECT_EQ(r.error->pos.line, 2);
}

// `&a [*a]` is a cycle in yaml-cpp's graph; here it never gets built.
TEST(YamlTree, ASelfReferenceIsRefusedNotWalked) {
  YamlReadResult r = ReadYamlTree("a: &a [*a]\n", 100);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->reason, YamlError::Reason::kAnchor);
}

TEST(YamlTree, SyntaxErrorsKeepYamlCppsWordsAndPlace) {
  YamlReadResult r = ReadYamlTree("a: [1, 2\n", 100);
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->reason, YamlError::Reason::kSyntax);
  EXPECT_FALSE(r.error->message.empty());
  EXPECT_GT(r.error->pos.line, 0);
}

TEST(YamlTree, FindReturnsTheFirstOfDuplicateKeys) {
  YamlReadResult r = ReadYamlTree("a: 1\nb: 2\na: 3\n", 100);
  ASSERT_TRUE(r.tree.has_value());
  std::optional<YamlNode> a = r.tree->root()->Find("a");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->Scalar(), "1");
  EXPECT_FALSE(r.tree->root()->Find("z").has_value());
  EXPECT_EQ(r.tree->root()->size(), 3u);
}

}  // namespace
}  // namespace imgsel
