#include "oci/file_read.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace imgsel {
namespace {

absl::Status ErrnoStatus(int err, absl::string_view what, absl::string_view name) {
  std::string msg = absl::StrCat(name, ": ", what, ": ", std::strerror(err));
  if (err == ENOENT || err == ENOTDIR) return absl::NotFoundError(msg);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(msg);
  return absl::UnavailableError(msg);
}

// Closes the descriptor it was given when it goes (standard input stays open).
class OpenFile {
 public:
  OpenFile(int fd, bool owned) : fd_(fd), owned_(owned) {}
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;
  ~OpenFile() {
    if (owned_ && fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }

 private:
  int fd_;
  bool owned_;
};

}  // namespace

absl::StatusOr<std::string> ReadFileBounded(const std::string& path, size_t max_bytes,
                                            FifoOpen fifo) {
  const bool stdin_ = path == "-";
  const std::string name = stdin_ ? "standard input" : path;
  int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY;
  if (fifo == FifoOpen::kNoWait) flags |= O_NONBLOCK;
  OpenFile file(stdin_ ? STDIN_FILENO : ::open(path.c_str(), flags), !stdin_);
  if (file.fd() < 0) return ErrnoStatus(errno, "cannot open", name);
  struct stat st {};
  if (::fstat(file.fd(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": is a directory, not a file"));
  }
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(file.fd(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "cannot read", name);
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": larger than the limit of ", max_bytes, " bytes"));
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace imgsel
