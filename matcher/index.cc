#include "matcher/index.h"

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "matcher/digest.h"
#include "matcher/string_view_bridge.h"
#include "simdjson.h"

namespace imgsel {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

// One parser per thread: its stage buffers are reused across calls.
simdjson::dom::parser& ThreadParser(size_t max_depth) {
  thread_local simdjson::dom::parser parser;
  thread_local size_t depth = 0;
  if (depth != max_depth) {
    parser = simdjson::dom::parser();
    if (parser.allocate(64 * 1024, max_depth) == simdjson::SUCCESS) depth = max_depth;
  }
  return parser;
}

// Parsed documents are recycled: a ParsedIndex views strings inside its
// document, and handing the document back here when the last view goes
// keeps repeated selections free of large allocations and page faults. At
// most kMaxPooled documents of at most kMaxPooledCapacity bytes are kept.
class DocumentPool {
 public:
  static std::shared_ptr<simdjson::dom::document> Acquire() {
    std::unique_ptr<simdjson::dom::document> doc;
    {
      absl::MutexLock lock(&mu_);
      if (!free_->empty()) {
        doc = std::move(free_->back());
        free_->pop_back();
      }
    }
    if (!doc) doc = std::make_unique<simdjson::dom::document>();
    return std::shared_ptr<simdjson::dom::document>(doc.release(), Release);
  }

 private:
  static constexpr size_t kMaxPooled = 8;
  static constexpr size_t kMaxPooledCapacity = 1 << 20;

  static void Release(simdjson::dom::document* doc) {
    std::unique_ptr<simdjson::dom::document> owned(doc);
    if (owned->capacity() > kMaxPooledCapacity) return;
    absl::MutexLock lock(&mu_);
    if (free_->size() < kMaxPooled) free_->push_back(std::move(owned));
  }

  static absl::Mutex mu_;
  static std::vector<std::unique_ptr<simdjson::dom::document>>* free_ ABSL_GUARDED_BY(mu_);
};

absl::Mutex DocumentPool::mu_(absl::kConstInit);
std::vector<std::unique_ptr<simdjson::dom::document>>* DocumentPool::free_ =
    new std::vector<std::unique_ptr<simdjson::dom::document>>();

absl::string_view Keep(std::string_view s) { return ToAbsl(s); }

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

// Field readers: false with `why` set when the value has the wrong type.
bool String(element v, absl::string_view& out, std::string& why, const Loc& where,
            absl::string_view key) {
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) {
    why = absl::StrCat(where.str(), ".", key, ": expected a string");
    return false;
  }
  out = Keep(s);
  return true;
}

bool StringArray(element v, std::vector<absl::string_view>& out, std::string& why, const Loc& where,
                 absl::string_view key) {
  array arr;
  if (v.get_array().get(arr) != simdjson::SUCCESS) {
    why = absl::StrCat(where.str(), ".", key, ": expected an array of strings");
    return false;
  }
  out.reserve(arr.size());
  for (element item : arr) {
    std::string_view s;
    if (item.get_string().get(s) != simdjson::SUCCESS) {
      why = absl::StrCat(where.str(), ".", key, ": expected an array of strings");
      return false;
    }
    out.push_back(Keep(s));
  }
  return true;
}

bool Annotations(element v, AnnotationList& out, std::string& why, const Loc& where) {
  if (v.is_null()) return true;
  object a;
  if (v.get_object().get(a) != simdjson::SUCCESS) {
    why = absl::StrCat(where.str(), ".annotations: expected an object of strings");
    return false;
  }
  out.reserve(a.size());
  for (auto field : a) {
    std::string_view s;
    if (field.value.get_string().get(s) != simdjson::SUCCESS) {
      why =
          absl::StrCat(where.str(), ".annotations[\"", ToAbsl(field.key), "\"]: expected a string");
      return false;
    }
    out.emplace_back(Keep(field.key), Keep(s));
  }
  return true;
}

bool ReadPlatform(element v, PlatformView& p, std::string& why, const Loc& where) {
  object o;
  if (v.get_object().get(o) != simdjson::SUCCESS) {
    why = absl::StrCat(where.str(), ": expected an object");
    return false;
  }
  for (auto field : o) {
    std::string_view k = field.key;
    bool ok = true;
    if (k == "os") {
      ok = String(field.value, p.os, why, where, "os");
    } else if (k == "architecture") {
      ok = String(field.value, p.architecture, why, where, "architecture");
    } else if (k == "variant") {
      ok = String(field.value, p.variant, why, where, "variant");
    } else if (k == "os.version") {
      ok = String(field.value, p.os_version, why, where, "os.version");
    } else if (k == "os.features") {
      ok = StringArray(field.value, p.os_features, why, where, "os.features");
    } else if (k == "features") {
      ok = StringArray(field.value, p.features, why, where, "features");
    }
    if (!ok) return false;
  }
  if (p.architecture.empty()) {
    why = absl::StrCat(where.str(), ".architecture: missing");
    return false;
  }
  return true;
}

// Fills `d` from one manifests[] element in a single pass over its fields;
// on a problem sets d.invalid_reason and stops.
void ReadDescriptor(element e, size_t i, Descriptor& d) {
  object o;
  if (e.get_object().get(o) != simdjson::SUCCESS) {
    d.invalid_reason = absl::StrCat(Loc{i}.str(), ": expected an object");
    return;
  }
  std::string& why = d.invalid_reason;
  bool has_digest = false, has_size = false;
  element platform;
  bool has_platform = false;
  for (auto field : o) {
    std::string_view k = field.key;
    if (k == "mediaType") {
      if (!String(field.value, d.media_type, why, Loc{i}, ToAbsl(k))) return;
    } else if (k == "digest") {
      if (!String(field.value, d.digest, why, Loc{i}, ToAbsl(k))) return;
      has_digest = true;
    } else if (k == "size") {
      int64_t size;
      if (field.value.get_int64().get(size) != simdjson::SUCCESS) {
        why = absl::StrCat(Loc{i}.str(), ".size: expected an integer");
        return;
      }
      if (size < 0) {
        why = absl::StrCat(Loc{i}.str(), ".size: negative (", size, ")");
        return;
      }
      d.size = size;
      has_size = true;
    } else if (k == "artifactType") {
      if (!String(field.value, d.artifact_type, why, Loc{i}, ToAbsl(k))) return;
    } else if (k == "annotations") {
      if (!Annotations(field.value, d.annotations, why, Loc{i})) return;
    } else if (k == "platform") {
      platform = field.value;
      has_platform = !field.value.is_null();
    }
  }
  if (!has_digest) {
    why = absl::StrCat(Loc{i}.str(), ".digest: missing");
    return;
  }
  if (auto st = ValidateDigest(d.digest); !st.ok()) {
    why = absl::StrCat(Loc{i}.str(), ".digest: ", st.message());
    return;
  }
  if (!has_size) {
    why = absl::StrCat(Loc{i}.str(), ".size: missing");
    return;
  }
  if (has_platform) {
    PlatformView p;
    if (!ReadPlatform(platform, p, why, Loc{i, true})) return;
    d.platform = std::move(p);
  }
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
  std::shared_ptr<simdjson::dom::document> document = DocumentPool::Acquire();
  simdjson::dom::parser& parser = ThreadParser(limits.max_depth);
  element doc;
  if (auto err = parser
                     .parse_into_document(*document, reinterpret_cast<const uint8_t*>(json.data()),
                                          json.size())
                     .get(doc);
      err) {
    if (err == simdjson::DEPTH_ERROR) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": JSON nested deeper than ", limits.max_depth, " levels"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": not valid JSON: ", simdjson::error_message(err)));
  }
  object root;
  if (doc.get_object().get(root) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": expected a JSON object"));
  }
  ParsedIndex index;
  element manifests_element, annotations_element;
  bool has_manifests = false, has_annotations = false, has_config_or_layers = false;
  for (auto field : root) {
    std::string_view k = field.key;
    if (k == "mediaType") {
      std::string_view mt;
      if (field.value.get_string().get(mt) != simdjson::SUCCESS) {
        return absl::InvalidArgumentError(absl::StrCat(source, ": mediaType: expected a string"));
      }
      index.media_type = Keep(mt);
    } else if (k == "manifests") {
      manifests_element = field.value;
      has_manifests = true;
    } else if (k == "annotations") {
      annotations_element = field.value;
      has_annotations = true;
    } else if (k == "config" || k == "layers") {
      has_config_or_layers = true;
    }
  }
  const absl::string_view mt = index.media_type;
  if (mt == kOciManifestMediaType || mt == kDockerManifestMediaType ||
      (mt.empty() && !has_manifests && has_config_or_layers)) {
    index.kind = DocumentKind::kManifest;
    index.storage = document;
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
  array manifests;
  if (manifests_element.get_array().get(manifests) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": manifests: expected an array"));
  }
  size_t count = manifests.size();
  if (count > limits.max_entries) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": manifests: ", count, " entries, over the limit of ", limits.max_entries));
  }
  index.manifests.resize(count);
  size_t i = 0;
  for (element item : manifests) {
    ReadDescriptor(item, i, index.manifests[i]);
    ++i;
  }
  if (has_annotations) {
    std::string why;
    if (!Annotations(annotations_element, index.annotations, why, Loc{0, false, true})) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": ", why));
    }
  }
  index.storage = document;
  return index;
}

}  // namespace imgsel
