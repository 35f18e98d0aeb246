// A small streaming JSON writer: the one place imgsel produces JSON text.
//
// Contract: callers emit a well-formed sequence (Key only inside objects,
// values balanced); the writer escapes strings per RFC 8259 and never fails.
// Not thread-safe; one writer per document.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"

namespace imgsel {

class JsonWriter {
 public:
  // indent == 0 writes compact JSON; otherwise pretty-prints with that many spaces.
  explicit JsonWriter(int indent = 0) : indent_(indent) {}

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(absl::string_view key);
  JsonWriter& String(absl::string_view value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();

  // The document so far; complete once every Begin has its End.
  const std::string& str() const { return out_; }
  std::string Take() { return std::move(out_); }
  // The finished document: a pretty one ends with a newline, as files should.
  std::string TakeDocument() {
    if (indent_) out_.push_back('\n');
    return std::move(out_);
  }

  static void AppendEscaped(std::string& out, absl::string_view s);

 private:
  void BeforeValue();
  void Newline();

  struct Level {
    bool is_object;
    bool empty = true;
  };
  int indent_;
  bool after_key_ = false;
  std::vector<Level> stack_;
  std::string out_;
};

}  // namespace imgsel
