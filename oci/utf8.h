// UTF-8 well-formedness (RFC 3629: no overlong forms, no surrogates,
// nothing above U+10FFFF), for the readers that refuse other bytes and the
// writers that replace them.
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace imgsel {

// The length of the well-formed sequence starting at p[0], a byte of 0x80
// or more, with `left` bytes available; 0 when it is not one.
size_t Utf8SequenceLength(const unsigned char* p, size_t left);

// The offset of the first byte that is not part of well-formed UTF-8, or
// absl::string_view::npos.
size_t FirstNonUtf8Byte(absl::string_view text);

// `text` as well-formed UTF-8, for writers that must never send anything
// else (a proto3 string field, which the reader refuses whole otherwise):
// every byte that does not begin a well-formed sequence becomes U+FFFD,
// and a sequence cut short by the end of `text` (text truncated inside a
// character) is dropped, so the text ends on the last whole character.
// Well-formed text comes back unchanged.
std::string ToValidUtf8(absl::string_view text);

}  // namespace imgsel
