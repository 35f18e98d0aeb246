// The on-disk cache: blobs by scope and digest, and short-lived records.
//
//   <dir>/blobs/<scope id>-<alg>-<hex>   manifests and blobs: the digest, and
//                                        the scope (registry/repository) that
//                                        served them
//   <dir>/records/<hex>                  small records under a key (referrers
//                                        lists), with the time written and
//                                        a digest of both
//   <dir>/tmp/                           files being written
//   <dir>/lock                           flock'd while evicting
//
// A blob is found only under the scope that stored it: bytes one registry
// served never answer a request to another registry (or another repository),
// which may not have them or may not give them to this caller. Callers put
// the scope in record keys for the same reason. (`blobs/sha256/`, written by
// earlier versions, is only evicted.)
//
// Every blob is verified against its digest on read, and every record
// against the digest written with it; a file that does not match is deleted
// and reported absent, so corruption costs a refetch, never a wrong answer. Writes go to tmp/ and
// are renamed into place, so readers in any process see a whole file or none. Nothing larger than
// kMaxCacheFileBytes is written, which is also what a read accepts: nothing
// is stored that could not be read back. A read touches the file's mtime,
// and when the total passes `max_bytes` the least recently used files are
// removed (under the lock, down to 90% of the bound). Records expire after
// the TTL the reader asks for (negative answers are records too), by the
// clock in CacheOptions.
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
#include "oci/clock.h"
#include "oci/digest.h"

namespace imgsel::registry {

// The largest file the cache writes or reads: a compatibility layer at the
// largest [compat] max_layer_bytes. Anything larger in the directory is not
// imgsel's and reads as a miss.
inline constexpr size_t kMaxCacheFileBytes = size_t{64} << 20;

struct CacheOptions {
  std::string dir;
  int64_t max_bytes = int64_t{256} << 20;
  // Ages records (oci/clock.h); not owned, outlives the cache.
  const Clock* clock = &Clock::Real();
};

class DiskCache {
 public:
  // Creates the directories; an error names the path that failed.
  static absl::StatusOr<std::unique_ptr<DiskCache>> Open(const CacheOptions& options);

  // The verified bytes of `digest` as stored under `scope` ("registry/repository"),
  // or nullopt (absent, unreadable, corrupt, or stored under another scope).
  std::optional<std::string> GetBlob(absl::string_view scope, absl::string_view digest);
  // Stores bytes under `scope` and their digest; DataLoss if they do not
  // match it, ResourceExhausted over kMaxCacheFileBytes.
  absl::Status PutBlob(absl::string_view scope, absl::string_view digest, absl::string_view bytes);
  // The same for bytes already hashed (oci/digest.h): they are not hashed
  // again. FailedPrecondition when `verified` is not for these bytes.
  absl::Status PutBlob(absl::string_view scope, const VerifiedDigest& verified,
                       absl::string_view bytes);

  // The record under `key` if written less than `ttl` ago by the options'
  // clock; a record stamped later than now (the clock went back) is stale.
  std::optional<std::string> GetRecord(absl::string_view key, absl::Duration ttl);
  // ResourceExhausted when key and bytes come to more than kMaxCacheFileBytes.
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
  std::string BlobPath(absl::string_view scope, absl::string_view digest) const;
  std::string RecordPath(absl::string_view key) const;
  void AddUsage(int64_t bytes);

  CacheOptions options_;
  // An estimate between scans (other processes write too); Evict rescans.
  std::atomic<int64_t> used_bytes_;
};

}  // namespace imgsel::registry
