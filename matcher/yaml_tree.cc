#include "matcher/yaml_tree.h"

#include <exception>
#include <istream>
#include <streambuf>
#include <utility>

#include "yaml-cpp/anchor.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/exceptions.h"
#include "yaml-cpp/mark.h"
#include "yaml-cpp/parser.h"

namespace imgsel {

YamlNode::Kind YamlNode::kind() const { return tree_->nodes_[index_].kind; }

const std::string& YamlNode::Scalar() const { return tree_->nodes_[index_].scalar; }

YamlPos YamlNode::pos() const { return tree_->nodes_[index_].pos; }

size_t YamlNode::size() const {
  const YamlTree::Node& n = tree_->nodes_[index_];
  if (n.kind == Kind::kSequence) return n.children;
  if (n.kind == Kind::kMap) return n.children / 2;
  return 0;
}

YamlNode YamlNode::Next() const { return YamlNode(tree_, tree_->nodes_[index_].end); }

YamlNode::Items YamlNode::items() const {
  return Items(YamlNode(tree_, index_ + 1), IsSequence() ? size() : 0);
}

YamlNode::Pairs YamlNode::pairs() const {
  return Pairs(YamlNode(tree_, index_ + 1), IsMap() ? size() : 0);
}

std::optional<YamlNode> YamlNode::Find(absl::string_view key) const {
  for (const Pair& p : pairs()) {
    if (p.first.IsScalar() && p.first.Scalar() == key) return p.second;
  }
  return std::nullopt;
}

std::optional<YamlNode> YamlTree::root() const {
  if (nodes_.empty()) return std::nullopt;
  return YamlNode(this, 0);
}

namespace {

// Reading stopped on purpose; the reason is in the builder.
struct StopReading {};

// An istream over bytes the caller owns, without copying them.
class ViewBuf : public std::streambuf {
 public:
  explicit ViewBuf(absl::string_view text) {
    char* p = const_cast<char*>(text.data());  // only ever read
    setg(p, p, p + text.size());
  }
};

YamlPos PosOf(const YAML::Mark& m) {
  if (m.line < 0) return {};
  return {m.line + 1, m.column + 1};
}

}  // namespace

// Builds a YamlTree from parser events; throws StopReading at the budget.
class TreeBuilder : public YAML::EventHandler {
 public:
  explicit TreeBuilder(size_t max_nodes) : max_nodes_(max_nodes) {}

  YamlTree tree;
  std::optional<YamlError> error;

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}

  void OnAnchor(const YAML::Mark& mark, const std::string& name) override {
    Stop(YamlError::Reason::kAnchor, mark, name);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override {
    Stop(YamlError::Reason::kAlias, mark, {});
  }

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    Add(mark, anchor, YamlNode::Kind::kNull, {});
  }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string& value) override {
    Add(mark, anchor, YamlNode::Kind::kScalar, value);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open_.push_back(Add(mark, anchor, YamlNode::Kind::kSequence, {}));
  }
  void OnSequenceEnd() override { Close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open_.push_back(Add(mark, anchor, YamlNode::Kind::kMap, {}));
  }
  void OnMapEnd() override { Close(); }

 private:
  [[noreturn]] void Stop(YamlError::Reason reason, const YAML::Mark& mark, std::string message) {
    error = YamlError{reason, PosOf(mark), std::move(message)};
    throw StopReading{};
  }

  uint32_t Add(const YAML::Mark& mark, YAML::anchor_t anchor, YamlNode::Kind kind,
               const std::string& scalar) {
    // OnAnchor comes first; this catches an anchor it did not name.
    if (anchor != YAML::NullAnchor) Stop(YamlError::Reason::kAnchor, mark, {});
    if (tree.nodes_.size() == max_nodes_) Stop(YamlError::Reason::kTooManyNodes, mark, {});
    if (!open_.empty()) ++tree.nodes_[open_.back()].children;
    const auto index = static_cast<uint32_t>(tree.nodes_.size());
    YamlTree::Node& n = tree.nodes_.emplace_back();
    n.kind = kind;
    n.pos = PosOf(mark);
    n.scalar = scalar;
    n.end = index + 1;
    return index;
  }

  void Close() {
    tree.nodes_[open_.back()].end = static_cast<uint32_t>(tree.nodes_.size());
    open_.pop_back();
  }

  const size_t max_nodes_;
  std::vector<uint32_t> open_;  // the sequences and maps not yet closed
};

YamlReadResult ReadYamlTree(absl::string_view text, size_t max_nodes) {
  YamlReadResult out;
  TreeBuilder builder(max_nodes);
  try {
    ViewBuf buf(text);
    std::istream in(&buf);
    YAML::Parser parser(in);
    parser.HandleNextDocument(builder);
  } catch (const StopReading&) {
    out.error = std::move(builder.error);
    return out;
  } catch (const YAML::Exception& e) {
    out.error = YamlError{YamlError::Reason::kSyntax, PosOf(e.mark), e.msg};
    return out;
  } catch (const std::exception& e) {
    out.error = YamlError{YamlError::Reason::kSyntax, {}, e.what()};
    return out;
  }
  out.tree = std::move(builder.tree);
  return out;
}

}  // namespace imgsel
