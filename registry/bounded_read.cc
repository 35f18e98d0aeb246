#include "registry/bounded_read.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace imgsel {

absl::StatusOr<std::string> ReadFileBounded(const std::string& path, size_t max_bytes) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    struct stat st {};
    if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": is a directory, not a file"));
    }
    file.open(path, std::ios::binary);
    if (!file) {
      return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
    }
    in = &file;
  }
  std::string out;
  char buf[65536];
  while (*in) {
    in->read(buf, sizeof buf);
    out.append(buf, static_cast<size_t>(in->gcount()));
    if (out.size() > max_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(path == "-" ? "standard input" : path,
                                                     ": larger than the limit of ", max_bytes,
                                                     " bytes"));
    }
  }
  if (in->bad()) return absl::InternalError(absl::StrCat(path, ": read failed"));
  return out;
}

}  // namespace imgsel
