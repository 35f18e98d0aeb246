#include "matcher/json_cursor.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "simdjson.h"

namespace imgsel {
namespace {

using Stage1 = simdjson::internal::dom_parser_implementation;

static_assert(kJsonPadding == simdjson::SIMDJSON_PADDING);

// Documents up to this size are indexed on a parser kept per thread (its
// token array is 4 bytes per input byte); larger ones get a parser of their
// own that goes with the cursor, so a rare huge index does not pin memory.
constexpr size_t kKeptCapacity = size_t{1} << 20;

Stage1* ThreadStage1(size_t size, std::unique_ptr<Stage1>& own) {
  thread_local std::unique_ptr<Stage1> kept;
  thread_local size_t kept_capacity = 0;
  const simdjson::implementation* active = simdjson::get_active_implementation();
  if (size > kKeptCapacity) {
    if (active->create_dom_parser_implementation(size, 1, own) != simdjson::SUCCESS) {
      return nullptr;
    }
    return own.get();
  }
  if (!kept) {
    if (active->create_dom_parser_implementation(kKeptCapacity / 16, 1, kept) !=
        simdjson::SUCCESS) {
      kept.reset();
      return nullptr;
    }
    kept_capacity = kKeptCapacity / 16;
  }
  if (kept_capacity < size) {
    if (kept->set_capacity(kKeptCapacity) != simdjson::SUCCESS) {
      kept.reset();
      kept_capacity = 0;
      return nullptr;
    }
    kept_capacity = kKeptCapacity;
  }
  return kept.get();
}

}  // namespace

JsonCursor::JsonCursor(const char* json, size_t size, char* scratch, size_t max_depth)
    : bytes_(reinterpret_cast<const uint8_t*>(json)),
      begin_(no_tokens_),
      last_(no_tokens_),
      max_depth_(static_cast<uint32_t>(std::min<size_t>(max_depth, UINT32_MAX))),
      size_(size),
      scratch_(reinterpret_cast<uint8_t*>(scratch)),
      no_tokens_{static_cast<uint32_t>(size), static_cast<uint32_t>(size)} {
  Stage1* stage1 = ThreadStage1(size, own_stage1_);
  if (stage1 == nullptr) {
    error_ = Error::kSyntax;
    error_message_ = "out of memory for the JSON token index";
    return;
  }
  const simdjson::error_code err = stage1->stage1(bytes_, size, simdjson::stage1_mode::regular);
  if (err != simdjson::SUCCESS) {
    error_ = Error::kSyntax;
    error_message_ = simdjson::error_message(err);
    return;
  }
  const uint32_t count = stage1->n_structural_indexes;
  if (count == 0) {
    error_ = Error::kSyntax;
    error_message_ = simdjson::error_message(simdjson::EMPTY);
    return;
  }
  stage1_ = stage1;
  any_backslash_ = std::memchr(json, '\\', size) != nullptr;
  uint32_t* tokens = stage1->structural_indexes.get();
  // Stage 1 ends the list with the document's size (and room after it); set
  // here so that Peek() past the last token reads the '\0' after the document.
  tokens[count] = static_cast<uint32_t>(size);
  begin_ = tokens;
  last_ = tokens + count;
}

JsonCursor::~JsonCursor() = default;

size_t JsonCursor::Offset(Pos p) const { return p < last_ ? *p : size_; }

bool JsonCursor::Unescape(Pos p, const uint8_t* text, absl::string_view& out) {
  uint8_t* const dst = scratch_;
  const uint8_t* end = stage1_->parse_string(text, dst);
  if (end == nullptr) {
    FailAt(p, "invalid escape in a string");
    return false;
  }
  out = absl::string_view(reinterpret_cast<const char*>(dst), static_cast<size_t>(end - dst));
  scratch_ += out.size();
  return true;
}

JsonCursor::Got JsonCursor::SlowNumber(Pos p, size_t begin, size_t end, int64_t* value) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element number;
  if (parser.parse(bytes_ + begin, end - begin).get(number) != simdjson::SUCCESS ||
      !number.is_number()) {
    FailAt(p, "not a valid number");
    return Got::kInvalid;
  }
  if (value != nullptr && number.get_int64().get(*value) != simdjson::SUCCESS) {
    return Got::kWrongType;
  }
  return Got::kValue;
}

JsonCursor::Got JsonCursor::SlowInt64(Pos& p, int64_t& out) {
  const Got got = SlowNumber(p, p[0], TokenEnd(p), &out);
  if (got == Got::kValue) ++p;
  if (got == Got::kInvalid) p = last_;
  return got;
}

JsonCursor::Pos JsonCursor::ScalarFrom(Pos p) {
  const char c = Peek(p);
  if (c == '"') {
    absl::string_view unused;
    ReadString(p, unused);
    return p;
  }
  if (c == '\0') return FailAt(p, "expected a value");
  const size_t begin = p[0];
  if (c == 't' || c == 'f' || c == 'n') {
    const absl::string_view text(reinterpret_cast<const char*>(bytes_) + begin,
                                 TokenEnd(p) - begin);
    if (text != "true" && text != "false" && text != "null") {
      return FailAt(p, "not a valid literal");
    }
    return p + 1;
  }
  if (c == '-' || (c >= '0' && c <= '9')) {
    const size_t end = TokenEnd(p);
    int64_t unused;
    if (!PlainInteger(bytes_ + begin, bytes_ + end, unused) &&
        SlowNumber(p, begin, end, nullptr) == Got::kInvalid) {
      return last_;
    }
    return p + 1;
  }
  return FailAt(p, "expected a value");
}

JsonCursor::Pos JsonCursor::SkipFrom(Pos p) {
  // The closers of the containers this call opened, innermost last.
  std::string open;
  for (;;) {
    char c = Peek(p);
    if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      if (!Enter(p, close)) return p;
      if (Peek(p) == close) {
        Leave(p);
      } else {
        open.push_back(close);
        absl::string_view key;
        bool first = true;
        if (c == '{' && !NextField(p, first, key)) return p;
        continue;  // a value follows
      }
    } else {
      p = ScalarFrom(p);
      if (!ok()) return p;
    }
    // A value ended: close the containers that end here, or move to the
    // next value.
    for (;;) {
      if (open.empty()) return p;
      const char close = open.back();
      c = Peek(p);
      if (c == ',') {
        if (close == '}') {
          absl::string_view key;
          bool first = false;
          if (!NextField(p, first, key)) return p;
        } else {
          ++p;
        }
        break;
      }
      if (c == close) {
        Leave(p);
        open.pop_back();
        continue;
      }
      return FailAt(p, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
  }
}

bool JsonCursor::AtEnd(Pos& p) {
  if (!ok()) return false;
  if (p != last_) return Fail(p, "unexpected content after the document");
  return true;
}

JsonCursor::Pos JsonCursor::FailAt(Pos p, const char* what) {
  if (error_ == Error::kNone) {
    error_ = Error::kSyntax;
    error_message_ = what;
    error_offset_ = Offset(p);
  }
  return last_;
}

JsonCursor::Pos JsonCursor::FailDepthAt(Pos p) {
  if (error_ == Error::kNone) {
    error_ = Error::kDepth;
    error_message_ = absl::StrCat("nested deeper than ", max_depth_, " levels");
    error_offset_ = Offset(p);
  }
  return last_;
}

}  // namespace imgsel
