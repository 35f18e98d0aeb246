#include "registry/cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "oci/digest.h"
#include "oci/file_read.h"

namespace imgsel::registry {
namespace fs = std::filesystem;
namespace {

std::optional<std::string> ReadFile(const std::string& path) {
  auto bytes = ReadFileBounded(path, kMaxCacheFileBytes);
  if (!bytes.ok()) return std::nullopt;
  return *std::move(bytes);
}

void Touch(const std::string& path) { utimensat(AT_FDCWD, path.c_str(), nullptr, 0); }

std::string RandomSuffix() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return absl::StrCat(getpid(), ".", rng());
}

struct FileInfo {
  std::string path;
  int64_t size;
  struct timespec mtime;
};

std::vector<FileInfo> ListFiles(const std::string& dir) {
  std::vector<FileInfo> out;
  std::error_code ec;
  // blobs/sha256 holds the unscoped files of earlier versions: never read, evicted in turn.
  for (const char* sub : {"blobs", "blobs/sha256", "records"}) {
    for (auto it = fs::directory_iterator(fs::path(dir) / sub, ec);
         !ec && it != fs::directory_iterator(); it.increment(ec)) {
      struct stat st;
      std::string p = it->path().string();
      if (stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      out.push_back({p, static_cast<int64_t>(st.st_size), st.st_mtim});
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DiskCache>> DiskCache::Open(const CacheOptions& options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("cache directory is empty");
  if (options.max_bytes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cache size bound must be positive, got ", options.max_bytes));
  }
  for (const char* sub : {"blobs", "records", "tmp"}) {
    std::error_code ec;
    fs::path p = fs::path(options.dir) / sub;
    fs::create_directories(p, ec);
    if (ec) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot create cache directory ", p.string(), ": ", ec.message()));
    }
  }
  int64_t used = 0;
  for (const FileInfo& f : ListFiles(options.dir)) used += f.size;
  return std::unique_ptr<DiskCache>(new DiskCache(options, used));
}

DiskCache::DiskCache(CacheOptions options, int64_t used)
    : options_(std::move(options)), used_bytes_(used) {}

std::string DiskCache::BlobPath(absl::string_view scope, absl::string_view digest) const {
  // The scope is hashed: a repository name may be long and holds '/'.
  // ValidateDigest has checked `digest`, so "<alg>-<hex>" is a safe file name.
  size_t colon = digest.find(':');
  return absl::StrCat(options_.dir, "/blobs/", Sha256Digest(scope).substr(7, 32), "-",
                      digest.substr(0, colon), "-", digest.substr(colon + 1));
}

std::string DiskCache::RecordPath(absl::string_view key) const {
  return absl::StrCat(options_.dir, "/records/", Sha256Digest(key).substr(7));
}

absl::Status DiskCache::WriteAtomically(const std::string& path, absl::string_view bytes) {
  if (bytes.size() > kMaxCacheFileBytes) {
    return absl::ResourceExhaustedError(absl::StrCat("cache: ", bytes.size(), " bytes for ", path,
                                                     ", over the limit of ", kMaxCacheFileBytes,
                                                     " a read accepts"));
  }
  std::string tmp = absl::StrCat(options_.dir, "/tmp/", RandomSuffix());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cache: cannot create ", tmp, ": ", strerror(errno)));
  }
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      close(fd);
      unlink(tmp.c_str());
      return absl::UnavailableError(absl::StrCat("cache: cannot write ", tmp, ": ", strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return absl::UnavailableError(
        absl::StrCat("cache: cannot rename into ", path, ": ", strerror(err)));
  }
  AddUsage(static_cast<int64_t>(bytes.size()));
  return absl::OkStatus();
}

void DiskCache::AddUsage(int64_t bytes) {
  if (used_bytes_.fetch_add(bytes) + bytes > options_.max_bytes) {
    // Eviction failure only means the cache stays larger for a while.
    Evict().IgnoreError();
  }
}

std::optional<std::string> DiskCache::GetBlob(absl::string_view scope, absl::string_view digest) {
  if (!ValidateDigest(digest).ok()) return std::nullopt;
  std::string path = BlobPath(scope, digest);
  std::optional<std::string> bytes = ReadFile(path);
  if (!bytes) return std::nullopt;
  if (!VerifyDigest(*bytes, digest).ok()) {
    unlink(path.c_str());
    return std::nullopt;
  }
  Touch(path);
  return bytes;
}

absl::Status DiskCache::PutBlob(absl::string_view scope, absl::string_view digest,
                                absl::string_view bytes) {
  if (bytes.size() > kMaxCacheFileBytes) {
    return absl::ResourceExhaustedError(absl::StrCat("cache: blob ", digest.substr(0, 140), " of ",
                                                     bytes.size(), " bytes is over the limit of ",
                                                     kMaxCacheFileBytes));
  }
  absl::StatusOr<VerifiedDigest> verified = VerifyContent(bytes, digest);
  if (!verified.ok()) return verified.status();
  return PutBlob(scope, *verified, bytes);
}

absl::Status DiskCache::PutBlob(absl::string_view scope, const VerifiedDigest& verified,
                                absl::string_view bytes) {
  if (!verified.Covers(bytes)) {
    return absl::FailedPreconditionError(absl::StrCat("cache: blob ", verified.digest(),
                                                      " was verified for ", verified.size(),
                                                      " bytes, not these ", bytes.size()));
  }
  if (bytes.size() > kMaxCacheFileBytes) {
    return absl::ResourceExhaustedError(absl::StrCat("cache: blob ", verified.digest(), " of ",
                                                     bytes.size(), " bytes is over the limit of ",
                                                     kMaxCacheFileBytes));
  }
  return WriteAtomically(BlobPath(scope, verified.digest()), bytes);
}

std::optional<std::string> DiskCache::GetRecord(absl::string_view key, absl::Duration ttl) {
  std::string path = RecordPath(key);
  std::optional<std::string> text = ReadFile(path);
  if (!text) return std::nullopt;
  // "<sha256 of the rest>\n<unix nanos>\n<key>\n<bytes>": the digest catches
  // changed bytes anywhere after it (a record is not content-addressed, so
  // nothing else would); the key guards against a hash collision and a
  // foreign file. A file that fails either is removed: a miss, refetched.
  const absl::string_view all(*text);
  const size_t nl0 = all.find('\n');
  const size_t nl1 = nl0 == absl::string_view::npos ? nl0 : all.find('\n', nl0 + 1);
  const size_t nl2 = nl1 == absl::string_view::npos ? nl1 : all.find('\n', nl1 + 1);
  int64_t written = 0;
  if (nl2 == absl::string_view::npos ||
      !VerifyDigest(all.substr(nl0 + 1), all.substr(0, nl0)).ok() ||
      !absl::SimpleAtoi(all.substr(nl0 + 1, nl1 - nl0 - 1), &written) ||
      all.substr(nl1 + 1, nl2 - nl1 - 1) != key) {
    unlink(path.c_str());
    return std::nullopt;
  }
  if (!FreshAt(absl::FromUnixNanos(written), ttl, options_.clock->Now())) return std::nullopt;
  Touch(path);
  return std::string(all.substr(nl2 + 1));
}

absl::Status DiskCache::PutRecord(absl::string_view key, absl::string_view bytes) {
  if (key.find('\n') != absl::string_view::npos) {
    return absl::InvalidArgumentError("cache record key contains a newline");
  }
  const std::string body =
      absl::StrCat(absl::ToUnixNanos(options_.clock->Now()), "\n", key, "\n", bytes);
  return WriteAtomically(RecordPath(key), absl::StrCat(Sha256Digest(body), "\n", body));
}

int64_t DiskCache::ScanBytes() const {
  int64_t total = 0;
  for (const FileInfo& f : ListFiles(options_.dir)) total += f.size;
  return total;
}

absl::Status DiskCache::Evict() {
  std::string lock_path = absl::StrCat(options_.dir, "/lock");
  int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cache: cannot open ", lock_path, ": ", strerror(errno)));
  }
  // Another process evicting does the work for us.
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return absl::OkStatus();
  }
  std::vector<FileInfo> files = ListFiles(options_.dir);
  int64_t total = 0;
  for (const FileInfo& f : files) total += f.size;
  int64_t target = options_.max_bytes / 10 * 9;
  if (total > options_.max_bytes) {
    std::sort(files.begin(), files.end(), [](const FileInfo& a, const FileInfo& b) {
      if (a.mtime.tv_sec != b.mtime.tv_sec) return a.mtime.tv_sec < b.mtime.tv_sec;
      return a.mtime.tv_nsec < b.mtime.tv_nsec;
    });
    for (const FileInfo& f : files) {
      if (total <= target) break;
      if (unlink(f.path.c_str()) == 0) total -= f.size;
    }
  }
  // Stale temp files of crashed writers (older than an hour).
  std::error_code ec;
  for (auto it = fs::directory_iterator(fs::path(options_.dir) / "tmp", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    struct stat st;
    if (stat(it->path().c_str(), &st) == 0 && st.st_mtim.tv_sec + 3600 < time(nullptr)) {
      unlink(it->path().c_str());
    }
  }
  used_bytes_.store(total);
  flock(fd, LOCK_UN);
  close(fd);
  return absl::OkStatus();
}

}  // namespace imgsel::registry
