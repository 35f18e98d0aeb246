#include "selector/file_read.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
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

absl::Status WriteFileAtomic(const std::string& path, const std::string& contents) {
  std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
      return absl::InternalError(absl::StrCat(tmp, ": cannot create: ", std::strerror(errno)));
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      return absl::InternalError(absl::StrCat(tmp, ": write failed"));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string err = std::strerror(errno);
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat(path, ": rename failed: ", err));
  }
  return absl::OkStatus();
}

}  // namespace imgsel
