// A YAML document read within a node budget, as a compact read-only tree.
//
// YAML::Load builds yaml-cpp's own node graph first, and only then can a
// caller count what it holds. Two things make that unfit for documents from
// outside:
//
//   - an alias (`*a`) is the anchored node itself, shared: 2 KB of nested
//     aliases load as a small graph whose walk visits a million nodes, and
//     `&a [*a]` is a cycle (yaml-cpp registers an anchor when its node
//     starts, not when it ends);
//   - every yaml-cpp node costs about 480 bytes, so even a document without
//     aliases weighs ~100 times its size.
//
// ReadYamlTree takes yaml-cpp's event stream instead
// (YAML::Parser::HandleNextDocument) and builds its own tree as the events
// arrive:
//
//   event                         here
//   anchor `&a` or alias `*a`     refused at that event; reading stops
//   scalar, null, [ ... ], { ... }  one node, counted; the node past
//                                 `max_nodes` stops reading, so nothing past
//                                 the limit is ever built
//   tag (`!!str`)                 ignored, as yaml-cpp's own loader does
//
// The tree is exactly what YAML::Load would give for a document without
// anchors: the same kinds (a plain `~`, `null` or empty value is a null), the
// same scalars, duplicate keys kept in order, and each node at the position
// (line, column) yaml-cpp reports for it. Nodes live in one vector in
// document order (about 56 bytes each), so a walk never recurses and freeing
// a tree never does either.
//
// Only the first document is read; yaml-cpp's own depth guard refuses
// documents nested deeper than it parses safely.
//
// Contract: ReadYamlTree never throws. A YamlTree is immutable; a YamlNode is
// a view that is valid while its tree lives. Both may be read from several
// threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace imgsel {

// 1-based; 0 when unknown.
struct YamlPos {
  int line = 0;
  int column = 0;
};

class YamlTree;

class YamlNode {
 public:
  enum class Kind : uint8_t { kNull, kScalar, kSequence, kMap };

  Kind kind() const;
  bool IsNull() const { return kind() == Kind::kNull; }
  bool IsScalar() const { return kind() == Kind::kScalar; }
  bool IsSequence() const { return kind() == Kind::kSequence; }
  bool IsMap() const { return kind() == Kind::kMap; }

  // The text of a scalar; empty for any other kind.
  const std::string& Scalar() const;
  YamlPos pos() const;
  // Items of a sequence, pairs of a map; 0 for a scalar or a null.
  size_t size() const;

  // The items of a sequence (nothing for any other kind), in order.
  class Items;
  Items items() const;

  struct Pair;
  // The key/value pairs of a map (nothing for any other kind), in order,
  // duplicates included.
  class Pairs;
  Pairs pairs() const;

  // The value of the first pair whose key is the scalar `key`, as yaml-cpp's
  // `node[key]` finds it; nullopt when there is none or this is not a map.
  std::optional<YamlNode> Find(absl::string_view key) const;

  // Two views of the same node.
  bool operator==(const YamlNode& other) const = default;

 private:
  friend class YamlTree;
  YamlNode(const YamlTree* tree, uint32_t index) : tree_(tree), index_(index) {}
  // The node after this one's subtree: its next sibling, if it has one.
  YamlNode Next() const;

  const YamlTree* tree_ = nullptr;
  uint32_t index_ = 0;
};

struct YamlNode::Pair {
  YamlNode first;   // the key
  YamlNode second;  // the value
};

// Iterates the children of a node, stepping from sibling to sibling.
class YamlNode::Items {
 public:
  class iterator {
   public:
    YamlNode operator*() const { return node_; }
    iterator& operator++() {
      node_ = node_.Next();
      --left_;
      return *this;
    }
    bool operator!=(const iterator& other) const { return left_ != other.left_; }

   private:
    friend class Items;
    iterator(YamlNode node, size_t left) : node_(node), left_(left) {}
    YamlNode node_;
    size_t left_;
  };
  iterator begin() const { return iterator(first_, count_); }
  iterator end() const { return iterator(first_, 0); }

 private:
  friend class YamlNode;
  Items(YamlNode first, size_t count) : first_(first), count_(count) {}
  YamlNode first_;
  size_t count_;
};

class YamlNode::Pairs {
 public:
  class iterator {
   public:
    Pair operator*() const { return {key_, key_.Next()}; }
    iterator& operator++() {
      key_ = key_.Next().Next();
      --left_;
      return *this;
    }
    bool operator!=(const iterator& other) const { return left_ != other.left_; }

   private:
    friend class Pairs;
    iterator(YamlNode key, size_t left) : key_(key), left_(left) {}
    YamlNode key_;
    size_t left_;
  };
  iterator begin() const { return iterator(first_, count_); }
  iterator end() const { return iterator(first_, 0); }

 private:
  friend class YamlNode;
  Pairs(YamlNode first, size_t count) : first_(first), count_(count) {}
  YamlNode first_;
  size_t count_;
};

class YamlTree {
 public:
  // The root; nullopt for a stream with no document (empty, or comments only).
  std::optional<YamlNode> root() const;
  // Nodes read: every scalar (map keys included), null, sequence and map.
  size_t node_count() const { return nodes_.size(); }

 private:
  friend class YamlNode;
  friend class TreeBuilder;
  struct Node {
    std::string scalar;
    YamlPos pos;
    uint32_t end = 0;       // index one past this node's subtree
    uint32_t children = 0;  // direct children (a map's keys and values both)
    YamlNode::Kind kind = YamlNode::Kind::kNull;
  };
  std::vector<Node> nodes_;
};

// Why reading stopped.
struct YamlError {
  enum class Reason {
    kSyntax,        // yaml-cpp refused the text (its message)
    kAnchor,        // `&name`
    kAlias,         // `*name`
    kTooManyNodes,  // more than max_nodes
  };
  Reason reason = Reason::kSyntax;
  YamlPos pos;
  std::string message;  // kSyntax: what yaml-cpp said; kAnchor: the name; else empty
};

struct YamlReadResult {
  std::optional<YamlTree> tree;  // set iff error is not
  std::optional<YamlError> error;
};

// Reads the first document of `text`, stopping at the first anchor or alias
// and at node `max_nodes + 1`.
YamlReadResult ReadYamlTree(absl::string_view text, size_t max_nodes);

}  // namespace imgsel
