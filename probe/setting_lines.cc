#include "probe/setting_lines.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace imgsel::probe {

absl::StatusOr<std::map<std::string, std::string>> ParseSettingLines(
    absl::string_view text,
    absl::FunctionRef<absl::StatusOr<std::pair<std::string, std::string>>(absl::string_view)>
        parse) {
  std::map<std::string, std::string> out;
  int line_no = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line_no;
    absl::string_view line = absl::StripAsciiWhitespace(raw);
    if (line.empty() || line[0] == '#') continue;
    auto setting = parse(line);
    if (!setting.ok()) {
      return absl::Status(setting.status().code(),
                          absl::StrCat("line ", line_no, ": ", setting.status().message()));
    }
    out[std::move(setting->first)] = std::move(setting->second);
  }
  return out;
}

}  // namespace imgsel::probe
