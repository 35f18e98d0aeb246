// UTF-8 for writers: ToValidUtf8 keeps well-formed text as it is, replaces
// each byte that cannot begin a character, and drops a character cut short
// by the end of the text.
#include "oci/utf8.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/escaping.h"

namespace imgsel {
namespace {

TEST(ToValidUtf8Test, Table) {
  const std::string fffd = "\xEF\xBF\xBD";
  struct Case {
    std::string in;
    std::string out;
  };
  const Case cases[] = {
      {"", ""},
      {"plain ascii", "plain ascii"},
      {"\xC3\xA9t\xC3\xA9 \xE2\x80\x98q\xE2\x80\x99 \xF0\x9F\x90\xB3",
       "\xC3\xA9t\xC3\xA9 \xE2\x80\x98q\xE2\x80\x99 \xF0\x9F\x90\xB3"},
      // Bytes that cannot begin a character, anywhere.
      {"a\xFF!", "a" + fffd + "!"},
      {"\x80\x80", fffd + fffd},
      {"\xC0\xAF", fffd + fffd},                        // overlong '/'
      {"\xED\xA0\x80", fffd + fffd + fffd},             // a surrogate
      {"\xF4\x90\x80\x80", fffd + fffd + fffd + fffd},  // above U+10FFFF
      {"\xE2\x80!", fffd + fffd + "!"},                 // cut short, then more text
      // Cut inside the last character: ends on the one before.
      {"caf\xC3", "caf"},
      {"q\xE2\x80", "q"},
      {"q\xE2", "q"},
      {"\xE0\xA0", ""},
      {"w\xF0\x9F\x90", "w"},
      {"w\xF0", "w"},
      {"w\xF4\x8F", "w"},
      // ... unless what is there could never have been a character.
      {"w\xE0\x80", "w" + fffd + fffd},  // E0 80 only begins overlong forms
      {"w\xF4\x90", "w" + fffd + fffd},  // above U+10FFFF
      {"w\xF5", "w" + fffd},
      {"\xFF\xC3", fffd},
  };
  for (const Case& c : cases) {
    const std::string got = ToValidUtf8(c.in);
    EXPECT_EQ(got, c.out) << absl::CEscape(c.in) << " -> " << absl::CEscape(got);
    EXPECT_EQ(FirstNonUtf8Byte(got), absl::string_view::npos) << absl::CEscape(c.in);
  }
}

}  // namespace
}  // namespace imgsel
