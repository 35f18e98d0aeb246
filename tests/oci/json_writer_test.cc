#include "oci/json_writer.h"

#include <gtest/gtest.h>

#include <string>

namespace imgsel {
namespace {

std::string Quoted(const std::string& value) {
  JsonWriter w(0);
  w.String(value);
  return w.str();
}

// Whatever bytes a string carries, what is written is valid JSON: control
// characters escaped, UTF-8 kept, every byte that is not UTF-8 as U+FFFD.
TEST(JsonWriterTest, StringsAreAlwaysValidJson) {
  const std::pair<std::string, std::string> cases[] = {
      {"plain", "\"plain\""},
      {"q\"b\\", "\"q\\\"b\\\\\""},
      {"a\nb\tc\x01\x1b", "\"a\\nb\\tc\\u0001\\u001b\""},
      {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e",
       "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e\""},
      {"bad\xffkey", "\"bad\\ufffdkey\""},
      {"\x80", "\"\\ufffd\""},                                   // a lone continuation byte
      {"\xc0\xaf", "\"\\ufffd\\ufffd\""},                        // overlong '/'
      {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""},             // a surrogate
      {"\xe2\x82", "\"\\ufffd\\ufffd\""},                        // cut short
      {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},  // above U+10FFFF
      {"\xf5", "\"\\ufffd\""},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(Quoted(in), want) << want;
}

}  // namespace
}  // namespace imgsel
