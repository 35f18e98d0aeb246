// The on-disk cache: content-addressed blobs and short-lived records.
//
//   <dir>/blobs/sha256/<hex>    manifests and blobs, named by their digest
//   <dir>/records/<hex>         small records under a key (referrers lists),
//                               with the time they were written
//   <dir>/tmp/                  files being written
//   <dir>/lock                  flock'd while evicting
//
// Every blob is verified against its digest on read; a file that does not
// match is deleted and reported absent, so corruption costs a refetch, never
// a wrong answer. Writes go to tmp/ and are renamed into place, so readers in
// any process see a whole file or none. A read touches the file's mtime, and
// when the total passes `max_bytes` the least recently used files are
// removed (under the lock, down to 90% of the bound). Records expire after
// the TTL the reader asks for (negative answers are records too).
//
// Thread-safe, and safe to share between processes.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace imgsel::registry {

struct CacheOptions {
  std::string dir;
  int64_t max_bytes = int64_t{256} << 20;
};

class DiskCache {
 public:
  // Creates the directories; an error names the path that failed.
  static absl::StatusOr<std::unique_ptr<DiskCache>> Open(const CacheOptions& options);

  // The verified bytes of `digest`, or nullopt (absent, unreadable or corrupt).
  std::optional<std::string> GetBlob(absl::string_view digest);
  // Stores bytes under their digest; DataLoss if they do not match it.
  absl::Status PutBlob(absl::string_view digest, absl::string_view bytes);

  // The record under `key` if written less than `ttl` ago.
  std::optional<std::string> GetRecord(absl::string_view key, absl::Duration ttl);
  absl::Status PutRecord(absl::string_view key, absl::string_view bytes);

  // Bytes currently stored (a scan of the directory).
  int64_t ScanBytes() const;
  // When the total is over max_bytes, removes least recently used files down
  // to 90% of it.
  absl::Status Evict();

  const std::string& dir() const { return options_.dir; }

 private:
  explicit DiskCache(CacheOptions options, int64_t used);
  absl::Status WriteAtomically(const std::string& path, absl::string_view bytes);
  std::string BlobPath(absl::string_view digest) const;
  std::string RecordPath(absl::string_view key) const;
  void AddUsage(int64_t bytes);

  CacheOptions options_;
  // An estimate between scans (other processes write too); Evict rescans.
  std::atomic<int64_t> used_bytes_;
};

}  // namespace imgsel::registry
