#include "probe/host_files.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "oci/file_read.h"

namespace imgsel::probe {
namespace {

absl::Status ErrnoStatus(int err, absl::string_view what, absl::string_view path) {
  std::string msg = absl::StrCat(path, ": ", what, ": ", std::strerror(err));
  if (err == ENOENT || err == ENOTDIR) return absl::NotFoundError(msg);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(msg);
  return absl::UnavailableError(msg);
}

}  // namespace

HostFiles::HostFiles(std::string root) : root_(std::move(root)) {
  while (!root_.empty() && root_.back() == '/') root_.pop_back();
}

std::string HostFiles::Path(absl::string_view host_path) const {
  return absl::StrCat(root_, host_path);
}

absl::StatusOr<std::string> HostFiles::Read(absl::string_view host_path, size_t max_bytes) const {
  return ReadFileBounded(Path(host_path), max_bytes, FifoOpen::kNoWait);
}

absl::StatusOr<std::string> HostFiles::ReadValue(absl::string_view host_path) const {
  absl::StatusOr<std::string> s = Read(host_path);
  if (!s.ok()) return s.status();
  return std::string(absl::StripAsciiWhitespace(*s));
}

bool HostFiles::Exists(absl::string_view host_path) const {
  struct stat st;
  return ::stat(Path(host_path).c_str(), &st) == 0;
}

absl::StatusOr<std::vector<std::string>> HostFiles::List(absl::string_view host_dir) const {
  std::string path = Path(host_dir);
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return ErrnoStatus(errno, "cannot list", path);
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(dir)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    if (names.size() == kMaxDirEntries) break;
    names.emplace_back(e->d_name);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace imgsel::probe
