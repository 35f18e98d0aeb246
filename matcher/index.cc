#include "matcher/index.h"

#include <cstring>
#include <deque>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "matcher/json_cursor.h"
#include "oci/digest.h"

namespace imgsel {
namespace {

using Got = JsonCursor::Got;

// Everything one ParsedIndex views: the padded copy of the document (strings
// without escapes are views into it), the unescaped strings, the descriptors,
// and the pools their lists point into.
struct IndexStorage {
  // The document, its padding, then room for its unescaped strings.
  std::unique_ptr<char[]> bytes;
  size_t bytes_capacity = 0;
  std::vector<Descriptor> descriptors;     // the first `count` are the index's
  std::vector<absl::string_view> strings;  // features and os.features of all entries
  std::vector<Annotation> annotations;     // of all entries
  std::vector<Annotation> index_annotations;
  std::deque<std::string> problems;  // invalid_reason texts (stable addresses)
  // Per descriptor, where its lists start in the pools while they still grow.
  struct Ranges {
    uint32_t features = 0, features_n = 0;
    uint32_t os_features = 0, os_features_n = 0;
    uint32_t annotations = 0, annotations_n = 0;
  };
  std::vector<Ranges> ranges;

  // Copies `json` in, padded; returns the copy and the unescape scratch
  // (size + kJsonPadding as JsonCursor needs, and one padding more).
  std::pair<const char*, char*> Load(absl::string_view json) {
    const size_t need = 2 * (json.size() + kJsonPadding) + kJsonPadding;
    if (bytes_capacity < need) {
      bytes.reset(new char[need]);
      bytes_capacity = need;
    }
    char* copy = bytes.get();
    if (!json.empty()) std::memcpy(copy, json.data(), json.size());
    std::memset(copy + json.size(), 0, kJsonPadding);
    return {copy, copy + json.size() + kJsonPadding};
  }

  // The entries' pools, emptied when a document repeats `manifests`.
  void ClearEntries() {
    strings.clear();
    annotations.clear();
  }

  // Descriptors are kept (each is reset as it is read), so a recycled
  // storage does not construct them again.
  void Clear() {
    ClearEntries();
    index_annotations.clear();
    problems.clear();
  }
};

// Storage is recycled: when the last ParsedIndex viewing one goes, it returns
// here with its buffers, so repeated selections neither allocate nor fault in
// fresh pages. At most kMaxPooled are kept, each at most kMaxPooledBytes of
// document buffer.
class StoragePool {
 public:
  static std::shared_ptr<IndexStorage> Acquire() {
    std::unique_ptr<IndexStorage> s;
    {
      absl::MutexLock lock(&mu_);
      if (!free_->empty()) {
        s = std::move(free_->back());
        free_->pop_back();
      }
    }
    if (!s) s = std::make_unique<IndexStorage>();
    s->Clear();
    return std::shared_ptr<IndexStorage>(s.release(), Release);
  }

 private:
  static constexpr size_t kMaxPooled = 8;
  static constexpr size_t kMaxPooledBytes = 2 << 20;

  static void Release(IndexStorage* raw) {
    std::unique_ptr<IndexStorage> s(raw);
    if (s->bytes_capacity > kMaxPooledBytes) return;
    absl::MutexLock lock(&mu_);
    if (free_->size() < kMaxPooled) free_->push_back(std::move(s));
  }

  static absl::Mutex mu_;
  static std::vector<std::unique_ptr<IndexStorage>>* free_ ABSL_GUARDED_BY(mu_);
};

absl::Mutex StoragePool::mu_(absl::kConstInit);
std::vector<std::unique_ptr<IndexStorage>>* StoragePool::free_ =
    new std::vector<std::unique_ptr<IndexStorage>>();

// Where a value sits, formatted only when there is an error to report.
struct Loc {
  size_t entry;
  bool platform = false;  // inside manifests[entry].platform
  bool top = false;       // the index itself
  std::string str() const {
    if (top) return "index";
    return platform ? absl::StrCat("manifests[", entry, "].platform")
                    : absl::StrCat("manifests[", entry, "]");
  }
};

// A key already known to have the name's length (the readers switch on the
// length first) against the name: a fixed-size compare the compiler inlines.
template <size_t N>
inline ABSL_ATTRIBUTE_ALWAYS_INLINE bool SameBytes(absl::string_view key, const char (&name)[N]) {
  return std::memcmp(key.data(), name, N - 1) == 0;
}

// The one pass over a document. Problems of the schema (a wrong type, a
// missing field) are collected as text in a `why` string, the first one
// winning; values after a problem are still walked, so that a document that
// is not valid JSON is refused whatever it holds. Every reader returns false
// only when the cursor found the document invalid.
class Reader {
 public:
  using Pos = JsonCursor::Pos;

  Reader(JsonCursor& cursor, IndexStorage& s) : c_(cursor), s_(s) {}

  ABSL_ATTRIBUTE_ALWAYS_INLINE bool String(Pos& at, absl::string_view& out, std::string& why,
                                           const Loc& where, absl::string_view key) {
    const Got got = c_.String(at, out);
    if (ABSL_PREDICT_TRUE(got == Got::kValue)) return true;
    if (got == Got::kInvalid) return false;
    at = NotAString(at, why, where, key);
    return c_.ok();
  }

  // Out of line, so it takes the position by value and returns the new one.
  ABSL_ATTRIBUTE_NOINLINE Pos NotAString(Pos at, std::string& why, const Loc& where,
                                         absl::string_view key) {
    why = absl::StrCat(where.str(), ".", key, ": expected a string");
    c_.Skip(at);
    return at;
  }

  // Appends to the string pool; sets the range.
  ABSL_ATTRIBUTE_ALWAYS_INLINE bool StringArray(Pos& at, uint32_t& begin, uint32_t& count,
                                                std::string& why, const Loc& where,
                                                absl::string_view key) {
    if (c_.Peek(at) != '[') {
      why = absl::StrCat(where.str(), ".", key, ": expected an array of strings");
      return c_.Skip(at);
    }
    c_.EnterArray(at);
    begin = static_cast<uint32_t>(s_.strings.size());
    bool first = true;
    while (c_.NextElement(at, first)) {
      absl::string_view sv;
      const Got got = why.empty() ? c_.String(at, sv) : Got::kWrongType;
      if (got == Got::kValue) {
        s_.strings.push_back(sv);
        continue;
      }
      if (got == Got::kInvalid) return false;
      if (why.empty()) why = absl::StrCat(where.str(), ".", key, ": expected an array of strings");
      if (!c_.Skip(at)) return false;
    }
    count = static_cast<uint32_t>(s_.strings.size() - begin);
    return c_.ok();
  }

  ABSL_ATTRIBUTE_ALWAYS_INLINE bool Annotations(Pos& at, std::vector<Annotation>& pool,
                                                uint32_t& begin, uint32_t& count, std::string& why,
                                                const Loc& where) {
    const char c = c_.Peek(at);
    if (c == 'n') return c_.Skip(at);  // null: none (Skip refuses anything but `null`)
    if (c != '{') {
      why = absl::StrCat(where.str(), ".annotations: expected an object of strings");
      return c_.Skip(at);
    }
    c_.EnterObject(at);
    begin = static_cast<uint32_t>(pool.size());
    bool first = true;
    absl::string_view key;
    while (c_.NextField(at, first, key)) {
      absl::string_view sv;
      const Got got = why.empty() ? c_.String(at, sv) : Got::kWrongType;
      if (got == Got::kValue) {
        pool.emplace_back(key, sv);
        continue;
      }
      if (got == Got::kInvalid) return false;
      if (why.empty()) {
        why = absl::StrCat(where.str(), ".annotations[\"", key, "\"]: expected a string");
      }
      if (!c_.Skip(at)) return false;
    }
    count = static_cast<uint32_t>(pool.size() - begin);
    return c_.ok();
  }

  ABSL_ATTRIBUTE_ALWAYS_INLINE bool Platform(Pos& at, PlatformView& p, IndexStorage::Ranges& r,
                                             std::string& why, const Loc& where) {
    if (c_.Peek(at) != '{') {
      why = absl::StrCat(where.str(), ": expected an object");
      return c_.Skip(at);
    }
    c_.EnterObject(at);
    bool first = true;
    absl::string_view k;
    while (c_.NextField(at, first, k)) {
      bool ok = true;
      if (!why.empty()) {
        ok = c_.Skip(at);
      } else {
        switch (k.size()) {  // one comparison per field, as for descriptors
          case 2:
            ok = SameBytes(k, "os") ? String(at, p.os, why, where, "os") : c_.Skip(at);
            break;
          case 12:
            ok = SameBytes(k, "architecture")
                     ? String(at, p.architecture, why, where, "architecture")
                     : c_.Skip(at);
            break;
          case 7:
            ok = SameBytes(k, "variant") ? String(at, p.variant, why, where, "variant")
                                         : c_.Skip(at);
            break;
          case 10:
            ok = SameBytes(k, "os.version") ? String(at, p.os_version, why, where, "os.version")
                                            : c_.Skip(at);
            break;
          case 11:
            ok = SameBytes(k, "os.features")
                     ? StringArray(at, r.os_features, r.os_features_n, why, where, "os.features")
                     : c_.Skip(at);
            break;
          case 8:
            ok = SameBytes(k, "features")
                     ? StringArray(at, r.features, r.features_n, why, where, "features")
                     : c_.Skip(at);
            break;
          default:
            ok = c_.Skip(at);
            break;
        }
      }
      if (!ok) return false;
    }
    if (!c_.ok()) return false;
    if (why.empty() && p.architecture.empty()) {
      why = absl::StrCat(where.str(), ".architecture: missing");
    }
    return true;
  }

  // Fills `d` from the manifests[] element at `at` in a single pass over its
  // fields and returns the position after it (the end, with the cursor's
  // error set, when the document is invalid). Out of line, taking the
  // position by value, so that inside it the position stays in a register.
  ABSL_ATTRIBUTE_NOINLINE Pos Descriptor(Pos at, size_t i, imgsel::Descriptor& d,
                                         IndexStorage::Ranges& r) {
    // Field by field: a whole-struct clear compiles to `rep stos`, whose
    // start-up cost dominated this loop.
    d.media_type = {};
    d.digest = {};
    d.size = 0;
    d.platform.reset();
    d.annotations = {};
    d.artifact_type = {};
    d.invalid_reason = {};
    r = {};
    if (!Read(at, i, d, r)) return at;
    if (ABSL_PREDICT_FALSE(!why_.empty())) {
      s_.problems.push_back(std::move(why_));
      why_.clear();
      d.invalid_reason = s_.problems.back();
      d.platform.reset();
      r = {};
    }
    return at;
  }

 private:
  // The fields in document order; the first problem wins, and the checks
  // after the fields (digest, size, then the platform) come in that order.
  ABSL_ATTRIBUTE_ALWAYS_INLINE bool Read(Pos& at, size_t i, imgsel::Descriptor& d,
                                         IndexStorage::Ranges& r) {
    const Loc loc{i};
    std::string& why = why_;
    if (c_.Peek(at) != '{') {
      why = absl::StrCat(loc.str(), ": expected an object");
      return c_.Skip(at);
    }
    c_.EnterObject(at);
    bool has_digest = false, has_size = false, has_platform = false;
    // The last `platform` field counts; its problem (in platform_why_) is
    // reported after the digest and size checks.
    std::string& platform_why = platform_why_;
    platform_why.clear();
    bool first = true;
    absl::string_view k;
    // Dispatch on the key's length first: one comparison per field.
    while (c_.NextField(at, first, k)) {
      bool ok = true;
      if (!why.empty()) {
        ok = c_.Skip(at);
      } else {
        switch (k.size()) {
          case 9:
            ok = SameBytes(k, "mediaType") ? String(at, d.media_type, why, loc, "mediaType")
                                           : c_.Skip(at);
            break;
          case 6:
            if (SameBytes(k, "digest")) {
              ok = String(at, d.digest, why, loc, "digest");
              has_digest = true;
            } else {
              ok = c_.Skip(at);
            }
            break;
          case 4:
            ok = SameBytes(k, "size") ? Size(at, d, why, loc, has_size) : c_.Skip(at);
            break;
          case 12:
            ok = SameBytes(k, "artifactType")
                     ? String(at, d.artifact_type, why, loc, "artifactType")
                     : c_.Skip(at);
            break;
          case 11:
            ok = SameBytes(k, "annotations")
                     ? Annotations(at, s_.annotations, r.annotations, r.annotations_n, why, loc)
                     : c_.Skip(at);
            break;
          case 8:
            if (SameBytes(k, "platform")) {
              platform_why.clear();
              r.features = r.features_n = r.os_features = r.os_features_n = 0;
              has_platform = c_.Peek(at) != 'n';
              if (has_platform) {
                ok = Platform(at, d.platform.emplace(), r, platform_why, Loc{i, true});
              } else {
                d.platform.reset();
                ok = c_.Skip(at);
              }
            } else {
              ok = c_.Skip(at);
            }
            break;
          default:
            ok = c_.Skip(at);
            break;
        }
      }
      if (!ok) return false;
    }
    if (!c_.ok()) return false;
    if (!why.empty()) return true;
    if (!has_digest) {
      why = absl::StrCat(loc.str(), ".digest: missing");
    } else if (!IsValidDigest(d.digest)) {
      why = absl::StrCat(loc.str(), ".digest: ", ValidateDigest(d.digest).message());
    } else if (!has_size) {
      why = absl::StrCat(loc.str(), ".size: missing");
    } else if (has_platform && !platform_why.empty()) {
      why.swap(platform_why);
    }
    return true;
  }

  ABSL_ATTRIBUTE_ALWAYS_INLINE bool Size(Pos& at, imgsel::Descriptor& d, std::string& why,
                                         const Loc& loc, bool& has_size) {
    int64_t size;
    const Got got = c_.Int64(at, size);
    if (got == Got::kInvalid) return false;
    if (got == Got::kWrongType) {
      why = absl::StrCat(loc.str(), ".size: expected an integer");
      return c_.Skip(at);
    }
    if (size < 0) {
      why = absl::StrCat(loc.str(), ".size: negative (", size, ")");
      return true;
    }
    d.size = size;
    has_size = true;
    return true;
  }

  JsonCursor& c_;
  IndexStorage& s_;
  // One each for the whole walk: filled only on a problem.
  std::string why_;
  std::string platform_why_;
};

absl::Status NotValidJson(absl::string_view source, const JsonCursor& c, size_t max_depth) {
  if (c.error() == JsonCursor::Error::kDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": JSON nested deeper than ", max_depth, " levels"));
  }
  if (c.error_offset() == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": not valid JSON: ", c.error_message()));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": not valid JSON at byte ", c.error_offset(), ": ", c.error_message()));
}

}  // namespace

Platform PlatformView::ToPlatform() const {
  Platform p;
  p.os = std::string(os);
  p.architecture = std::string(architecture);
  p.variant = std::string(variant);
  p.os_version = std::string(os_version);
  for (auto f : os_features) p.os_features.emplace_back(f);
  for (auto f : features) p.features.emplace_back(f);
  return p;
}

std::optional<absl::string_view> Descriptor::Annotation(absl::string_view key) const {
  for (const auto& [k, v] : annotations) {
    if (k == key) return v;
  }
  return std::nullopt;
}

absl::StatusOr<ParsedIndex> ParseIndex(absl::string_view json, absl::string_view source,
                                       const ParseLimits& limits) {
  if (json.size() > limits.max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": document is ", json.size(),
                                                   " bytes, over the limit of ", limits.max_bytes));
  }
  std::shared_ptr<IndexStorage> storage = StoragePool::Acquire();
  IndexStorage& s = *storage;
  const auto [bytes, scratch] = s.Load(json);
  JsonCursor c(bytes, json.size(), scratch, limits.max_depth);
  if (!c.ok()) return NotValidJson(source, c, limits.max_depth);
  // The position stays in this function (and the readers inlined into it).
  JsonCursor::Pos at = c.begin();
  if (c.Peek(at) != '{') {
    if (!c.Skip(at) || !c.AtEnd(at)) return NotValidJson(source, c, limits.max_depth);
    return absl::InvalidArgumentError(absl::StrCat(source, ": expected a JSON object"));
  }
  c.EnterObject(at);

  // One pass over the top level. The kind of document is known only at its
  // end (mediaType may follow manifests), so manifests are read as they come
  // and their problems judged afterwards, as a whole-document reading would.
  ParsedIndex index;
  Reader reader(c, s);
  std::string media_type_problem, annotations_problem;
  bool has_manifests = false, manifests_is_array = false, has_annotations = false;
  bool has_config_or_layers = false;
  size_t count = 0;
  uint32_t index_annotations = 0, index_annotations_n = 0;
  bool first = true;
  absl::string_view k;
  while (c.NextField(at, first, k)) {
    bool ok = true;
    if (k == "mediaType") {
      absl::string_view mt;
      const Got got = c.String(at, mt);
      if (got == Got::kValue) {
        index.media_type = mt;
      } else if (got == Got::kWrongType) {
        if (media_type_problem.empty()) media_type_problem = "mediaType: expected a string";
        ok = c.Skip(at);
      } else {
        ok = false;
      }
    } else if (k == "manifests") {
      has_manifests = true;
      manifests_is_array = c.Peek(at) == '[';
      if (!manifests_is_array) {
        ok = c.Skip(at);
      } else {
        c.EnterArray(at);
        s.ClearEntries();
        count = 0;
        bool first_entry = true;
        while (ok && c.NextElement(at, first_entry)) {
          if (count >= limits.max_entries) {
            ++count;  // counted for the error, only validated
            ok = c.Skip(at);
            continue;
          }
          if (count == s.descriptors.size()) {
            s.descriptors.emplace_back();
            s.ranges.emplace_back();
          }
          at = reader.Descriptor(at, count, s.descriptors[count], s.ranges[count]);
          ok = c.ok();
          ++count;
        }
        ok = ok && c.ok();
      }
    } else if (k == "annotations") {
      has_annotations = true;
      s.index_annotations.clear();
      annotations_problem.clear();
      index_annotations = index_annotations_n = 0;
      ok = reader.Annotations(at, s.index_annotations, index_annotations, index_annotations_n,
                              annotations_problem, Loc{0, false, true});
    } else {
      if (k == "config" || k == "layers") has_config_or_layers = true;
      ok = c.Skip(at);
    }
    if (!ok) return NotValidJson(source, c, limits.max_depth);
  }
  if (!c.AtEnd(at)) return NotValidJson(source, c, limits.max_depth);

  if (!media_type_problem.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", media_type_problem));
  }
  const absl::string_view mt = index.media_type;
  if (mt == kOciManifestMediaType || mt == kDockerManifestMediaType ||
      (mt.empty() && !has_manifests && has_config_or_layers)) {
    index.kind = DocumentKind::kManifest;
    // A manifest's annotations name its base image (selector/base_images.h);
    // ill-formed ones are not an error here, there is nothing to choose.
    if (has_annotations && annotations_problem.empty()) {
      index.annotations = {s.index_annotations.data() + index_annotations, index_annotations_n};
    }
    index.storage = std::move(storage);
    return index;
  }
  if (mt == kDockerListMediaType) {
    index.kind = DocumentKind::kDockerManifestList;
  } else if (mt == kOciIndexMediaType || (mt.empty() && has_manifests)) {
    index.kind = DocumentKind::kOciIndex;
  } else if (mt.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": neither an image index nor a manifest (no mediaType, no manifests)"));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": mediaType \"", mt.substr(0, 128), "\" is not an image index"));
  }
  if (!has_manifests) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": manifests: missing"));
  }
  if (!manifests_is_array) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": manifests: expected an array"));
  }
  if (count > limits.max_entries) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": manifests: ", count, " entries, over the limit of ", limits.max_entries));
  }
  if (has_annotations && !annotations_problem.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", annotations_problem));
  }
  // The pools are complete: point the lists into them.
  for (size_t j = 0; j < count; ++j) {
    const IndexStorage::Ranges& r = s.ranges[j];
    Descriptor& d = s.descriptors[j];
    if (r.annotations_n) d.annotations = {s.annotations.data() + r.annotations, r.annotations_n};
    if (d.platform) {
      if (r.features_n) d.platform->features = {s.strings.data() + r.features, r.features_n};
      if (r.os_features_n) {
        d.platform->os_features = {s.strings.data() + r.os_features, r.os_features_n};
      }
    }
  }
  index.annotations = {s.index_annotations.data() + index_annotations, index_annotations_n};
  index.manifests = {s.descriptors.data(), count};
  index.storage = std::move(storage);
  return index;
}

absl::string_view DocumentMediaType(const ParsedIndex& index) {
  if (!index.media_type.empty()) return index.media_type;
  return index.kind == DocumentKind::kManifest ? kOciManifestMediaType : kOciIndexMediaType;
}

}  // namespace imgsel
