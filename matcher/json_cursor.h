// A forward-only, validating walk over one JSON document.
//
// simdjson parses in two stages. Stage 1 (SIMD, the kernel for this CPU
// chosen at run time) validates UTF-8, rejects unescaped control characters
// and unclosed strings, and records the offset of every token: each of
// `{ } [ ] : ,`, the opening quote of every string and the first byte of
// every number and literal. Stage 2 of simdjson's DOM then builds a tape and
// copies every string into its own buffer, which a reader walks a second
// time. JsonCursor replaces stage 2 for readers that know the shape they
// expect (the image index): it walks the token offsets once, checks the JSON
// grammar as it goes, and hands out strings as views into the input - only a
// string holding a backslash is unescaped (with simdjson's own unescaper) into
// a scratch buffer.
//
//   token text       the bytes from a token's offset to the next token's,
//                    trailing whitespace dropped: `"abc"`, `-12.5e3`, `true`
//   string           text from `"` to the closing `"`; escapes unescaped
//   number           the JSON grammar; anything but a plain integer of at
//                    most 18 digits is checked by simdjson's own number parser
//   literal          text exactly `true`, `false` or `null`
//
// What is valid JSON is exactly what simdjson's DOM accepts (the same stage 1,
// the same string and number parsers, the same depth rule: no value may sit
// deeper than max_depth levels, the document itself being level 1 - so an
// empty array or object may sit at the last level); tests hold the two equal
// on thousands of corrupted documents.
//
// Reading protocol: the caller holds the position (a Pos, from begin()) in a
// local variable - so that the compiler keeps it in a register, which is
// most of the walk's speed - and hands it to each reader, which moves it on.
// The caller looks at Peek() and calls the reader for what it expects; a
// value of another type is passed over with Skip(), which still validates
// it. Every reader returns false once the document is found invalid (and
// moves the position to the end, where Peek() is '\0'); the first error
// (what and at which byte) is kept. Values a caller does not want must be
// passed with Skip() so that they are validated too.
//
// Not thread-safe. Stage 1 runs on a per-thread simdjson parser: a cursor is
// used on the thread that made it, and making another cursor on that thread
// ends the first one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "absl/base/attributes.h"
#include "absl/base/internal/endian.h"
#include "absl/base/optimization.h"
#include "absl/numeric/bits.h"
#include "absl/strings/string_view.h"

namespace simdjson::internal {
class dom_parser_implementation;
}  // namespace simdjson::internal

namespace imgsel {

// Readable bytes a document must be followed by (simdjson's SIMDJSON_PADDING).
inline constexpr size_t kJsonPadding = 64;

class JsonCursor {
 public:
  enum class Error { kNone, kSyntax, kDepth };
  enum class Got { kValue, kWrongType, kInvalid };
  // A position: the current token's entry in the token list.
  using Pos = const uint32_t*;

  // `json` is `size` bytes followed by kJsonPadding readable bytes, the
  // first of them '\0' (it marks the end for Peek()). Escaped strings are
  // unescaped into `scratch`, which holds size + kJsonPadding bytes and must
  // outlive the views handed out. Runs stage 1 at once: on an invalid
  // document ok() is false from the start.
  JsonCursor(const char* json, size_t size, char* scratch, size_t max_depth);
  ~JsonCursor();
  JsonCursor(const JsonCursor&) = delete;
  JsonCursor& operator=(const JsonCursor&) = delete;

  bool ok() const { return error_ == Error::kNone; }
  Error error() const { return error_; }
  // What is wrong ("expected ',' or '}'") and the byte offset where, or
  // npos for a problem of the whole input (invalid UTF-8, empty).
  const std::string& error_message() const { return error_message_; }
  size_t error_offset() const { return error_offset_; }

  // The first token (the end when stage 1 failed).
  Pos begin() const { return begin_; }

  // The first byte of the token at `p`; '\0' at the end (and after an
  // error, which moves the position to the end).
  char Peek(Pos p) const { return static_cast<char>(bytes_[*p]); }

  // Reads the string at `p`. kWrongType (nothing consumed) when the value is
  // not a string.
  ABSL_ATTRIBUTE_ALWAYS_INLINE Got String(Pos& p, absl::string_view& out) {
    if (ABSL_PREDICT_FALSE(Peek(p) != '"')) return ok() ? Got::kWrongType : Got::kInvalid;
    return ReadString(p, out) ? Got::kValue : Got::kInvalid;
  }

  // Reads the number at `p` as an int64. kWrongType (nothing consumed) when
  // the value is valid JSON but not an integer in range.
  ABSL_ATTRIBUTE_ALWAYS_INLINE Got Int64(Pos& p, int64_t& out) {
    const char c = Peek(p);
    if (ABSL_PREDICT_FALSE(c != '-' && (c < '0' || c > '9'))) {
      return ok() ? Got::kWrongType : Got::kInvalid;
    }
    if (ABSL_PREDICT_TRUE(PlainInteger(bytes_ + p[0], bytes_ + TokenEnd(p), out))) {
      ++p;
      return Got::kValue;
    }
    return SlowInt64(p, out);
  }

  // Validates and passes one value of any type.
  bool Skip(Pos& p) {
    p = SkipFrom(p);
    return ok();
  }

  // Objects: at '{', EnterObject(p); then `while (NextField(p, first, key))`
  // with `p` at each field's value, which the caller must consume. NextField
  // returns false at the closing '}' (consumed) or on an error.
  bool EnterObject(Pos& p) { return Enter(p, '}'); }
  ABSL_ATTRIBUTE_ALWAYS_INLINE bool NextField(Pos& p, bool& first, absl::string_view& key) {
    char c = Peek(p);
    if (first) {
      first = false;
      if (c == '}') return Leave(p);
    } else if (ABSL_PREDICT_TRUE(c == ',')) {
      ++p;
      c = Peek(p);
    } else if (c == '}') {
      return Leave(p);
    } else {
      return Fail(p, "expected ',' or '}'");
    }
    if (ABSL_PREDICT_FALSE(c != '"')) return Fail(p, "expected a string key");
    if (ABSL_PREDICT_FALSE(!ReadString(p, key))) return false;
    if (ABSL_PREDICT_FALSE(Peek(p) != ':')) return Fail(p, "expected ':' after the key");
    ++p;
    return true;
  }

  // Arrays: at '[', EnterArray(p); then `while (NextElement(p, first))` with
  // `p` at each element, which the caller must consume.
  bool EnterArray(Pos& p) { return Enter(p, ']'); }
  ABSL_ATTRIBUTE_ALWAYS_INLINE bool NextElement(Pos& p, bool& first) {
    const char c = Peek(p);
    if (c == ']') {
      // `[]`, or the end after an element; `[1,]` fails in the element reader.
      return Leave(p);
    }
    if (first) {
      first = false;
      return ok();
    }
    if (ABSL_PREDICT_FALSE(c != ',')) return Fail(p, "expected ',' or ']'");
    ++p;
    return true;
  }

  // True when every token has been read; an error ("trailing content")
  // otherwise.
  bool AtEnd(Pos& p);

 private:
  // Enters the container at `p`, which ends with `close`. A container at
  // level depth_ + 1 holds values one level deeper; an empty one holds none,
  // so it may sit at the last level.
  ABSL_ATTRIBUTE_ALWAYS_INLINE bool Enter(Pos& p, char close) {
    const auto closer = static_cast<uint8_t>(close);
    if (ABSL_PREDICT_FALSE(depth_ + 1 >= max_depth_) && bytes_[p[1]] != closer) {
      p = FailDepthAt(p);
      return false;
    }
    ++depth_;
    ++p;
    return true;
  }
  // Consumes the closer at `p`; always false (the container ended).
  bool Leave(Pos& p) {
    --depth_;
    ++p;
    return false;
  }
  ABSL_ATTRIBUTE_ALWAYS_INLINE bool Fail(Pos& p, const char* what) {
    p = FailAt(p, what);
    return false;
  }

  // The end of the text of the token at `p`, trailing whitespace dropped
  // (never below begin + 1: a token has at least its first byte). Pretty
  // JSON puts a line break and an indent after the last value of an
  // object, so the whitespace is counted eight bytes at a time; the bytes
  // before the token are read but never trimmed.
  ABSL_ATTRIBUTE_ALWAYS_INLINE size_t TokenEnd(Pos p) const {
    size_t end = p[1];
    const size_t keep = p[0] + 1;
    while (end > keep) {
      if (ABSL_PREDICT_FALSE(end < 8)) {  // the document's first bytes
        while (end > keep && IsSpace(bytes_[end - 1])) --end;
        break;
      }
      const uint64_t other = ~SpaceBytes(absl::little_endian::Load64(bytes_ + end - 8)) & kHighBits;
      const size_t trailing = other == 0 ? 8 : absl::countl_zero(other) >> 3;
      if (end - keep <= trailing) return keep;
      end -= trailing;
      if (trailing < 8) break;
    }
    return end;
  }
  static constexpr uint64_t kHighBits = 0x8080808080808080ULL;
  // The high bit of each byte of `x` that is JSON whitespace, exactly (no
  // borrow between bytes).
  static uint64_t SpaceBytes(uint64_t x) {
    auto equal = [x](uint8_t c) {
      const uint64_t v = x ^ (0x0101010101010101ULL * c);
      return ~(((v & ~kHighBits) + ~kHighBits) | v) & kHighBits;
    };
    return equal(' ') | equal('\n') | equal('\r') | equal('\t');
  }
  static bool IsSpace(uint8_t c) {
    constexpr uint64_t kSpaces = (1ULL << ' ') | (1ULL << '\n') | (1ULL << '\r') | (1ULL << '\t');
    return c <= ' ' && ((kSpaces >> c) & 1) != 0;
  }

  // True when [p, p + n) holds a backslash. Reads whole 8-byte words, up to
  // 7 bytes past the end, which the padding allows.
  ABSL_ATTRIBUTE_ALWAYS_INLINE static bool HasBackslash(const uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; i += 8) {
      const uint64_t x = absl::little_endian::Load64(p + i) ^ 0x5c5c5c5c5c5c5c5cULL;
      // The lowest flagged byte is the first backslash (flags above it may
      // be false); beyond n it is not part of the string.
      const uint64_t zero = (x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL;
      if (zero != 0) return i + (absl::countr_zero(zero) >> 3) < n;
    }
    return false;
  }

  ABSL_ATTRIBUTE_ALWAYS_INLINE bool ReadString(Pos& p, absl::string_view& out) {
    const size_t begin = p[0];
    size_t end = p[1];
    // Compact JSON: the next token follows the closing quote at once.
    if (ABSL_PREDICT_FALSE(bytes_[end - 1] != '"' || end < begin + 2)) {
      end = TokenEnd(p);
      if (end < begin + 2 || bytes_[end - 1] != '"') return Fail(p, "malformed string");
    }
    const uint8_t* text = bytes_ + begin + 1;
    const size_t length = end - begin - 2;
    if (ABSL_PREDICT_FALSE(any_backslash_) && HasBackslash(text, length)) {
      if (!Unescape(p, text, out)) {
        p = last_;
        return false;
      }
    } else {
      out = absl::string_view(reinterpret_cast<const char*>(text), length);
    }
    ++p;
    return true;
  }

  // A plain integer: -?(0|[1-9][0-9]*) with at most 18 digits, so it fits an
  // int64 without checking. Everything else goes to simdjson's number parser.
  ABSL_ATTRIBUTE_ALWAYS_INLINE static bool PlainInteger(const uint8_t* p, const uint8_t* end,
                                                        int64_t& value) {
    const bool negative = p < end && *p == '-';
    p += negative;
    const size_t digits = static_cast<size_t>(end - p);
    if (digits == 0 || digits > 18 || (p[0] == '0' && digits > 1)) return false;
    int64_t v = 0;
    for (; p < end; ++p) {
      const unsigned d = static_cast<unsigned>(*p) - '0';
      if (d > 9) return false;
      v = v * 10 + d;
    }
    value = negative ? -v : v;
    return true;
  }

  // The out-of-line paths take the position by value (so that the callers'
  // stays in a register) and return the new one, the end on an error.
  Got SlowInt64(Pos& p, int64_t& out);
  Pos SkipFrom(Pos p);
  Pos ScalarFrom(Pos p);
  bool Unescape(Pos p, const uint8_t* text, absl::string_view& out);
  // Checks a number token with simdjson's parser; `value` gets the int64 when
  // it is one (kWrongType when it is valid but not an int64).
  Got SlowNumber(Pos p, size_t begin, size_t end, int64_t* value);
  size_t Offset(Pos p) const;
  ABSL_ATTRIBUTE_NOINLINE Pos FailAt(Pos p, const char* what);
  ABSL_ATTRIBUTE_NOINLINE Pos FailDepthAt(Pos p);

  const uint8_t* bytes_;
  Pos begin_;
  Pos last_;  // past the last token: holds the document's size
  uint32_t depth_ = 0;
  uint32_t max_depth_;
  // Whether the document holds a backslash at all: most hold none, and then
  // no string needs looking at for escapes.
  bool any_backslash_ = true;
  size_t size_;
  uint8_t* scratch_;
  // Stage 1's parser: this thread's, or own_stage1_ for a large document.
  std::unique_ptr<simdjson::internal::dom_parser_implementation> own_stage1_;
  const simdjson::internal::dom_parser_implementation* stage1_ = nullptr;
  // The token list before stage 1 succeeds: only the end, so that Peek()
  // reads the '\0' after the document.
  uint32_t no_tokens_[2];
  Error error_ = Error::kNone;
  std::string error_message_;
  size_t error_offset_ = std::string::npos;
};

}  // namespace imgsel
