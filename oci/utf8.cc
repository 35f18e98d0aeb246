#include "oci/utf8.h"

#include <cstring>

namespace imgsel {
namespace {

// True when p[0..left) begins a well-formed sequence that needs more than
// `left` bytes: text that ends inside a character.
bool IsCutSequence(const unsigned char* p, size_t left) {
  const unsigned char c = p[0];
  const size_t need = c >= 0xc2 && c <= 0xdf   ? 2
                      : c >= 0xe0 && c <= 0xef ? 3
                      : c >= 0xf0 && c <= 0xf4 ? 4
                                               : 0;
  if (left >= need) return false;
  // The bytes present, completed with the smallest continuation each
  // position allows after this lead byte.
  unsigned char whole[4] = {0x80, 0x80, 0x80, 0x80};
  if (c == 0xe0) whole[1] = 0xa0;
  if (c == 0xf0) whole[1] = 0x90;
  std::memcpy(whole, p, left);
  return Utf8SequenceLength(whole, need) == need;
}

}  // namespace

size_t Utf8SequenceLength(const unsigned char* p, size_t left) {
  auto cont = [&](size_t i, unsigned char lo = 0x80, unsigned char hi = 0xbf) {
    return i < left && p[i] >= lo && p[i] <= hi;
  };
  const unsigned char c = p[0];
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c == 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (c == 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

size_t FirstNonUtf8Byte(absl::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = 0; i < text.size();) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const size_t n = Utf8SequenceLength(p + i, text.size() - i);
    if (n == 0) return i;
    i += n;
  }
  return absl::string_view::npos;
}

std::string ToValidUtf8(absl::string_view text) {
  size_t bad = FirstNonUtf8Byte(text);
  if (bad == absl::string_view::npos) return std::string(text);
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  std::string out(text.substr(0, bad));
  for (size_t i = bad; i < text.size();) {
    if (p[i] < 0x80) {
      out.push_back(static_cast<char>(p[i++]));
      continue;
    }
    const size_t left = text.size() - i;
    if (const size_t n = Utf8SequenceLength(p + i, left); n > 0) {
      out.append(text.data() + i, n);
      i += n;
    } else if (IsCutSequence(p + i, left)) {
      break;
    } else {
      out.append("\xEF\xBF\xBD");  // U+FFFD
      ++i;
    }
  }
  return out;
}

}  // namespace imgsel
