// The reference reading of an index for the differential tests: simdjson's
// DOM parser validates the whole document, then the descriptors are read from
// the DOM. This is how imgsel parsed indexes before its own walk over
// simdjson's structural index; ParseIndex must answer every document exactly
// as this does (same descriptors, same reasons, same errors, with "not valid
// JSON" standing for any syntax error).
#include "tests/matcher/dom_index_oracle.h"

#include <deque>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "matcher/string_view_bridge.h"
#include "oci/digest.h"
#include "simdjson.h"

namespace imgsel::oracle {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

// Everything one ParsedIndex views: the parsed document (its strings), the
// descriptors, and the pools their lists point into.
struct IndexStorage {
  simdjson::dom::document document;
  std::vector<Descriptor> descriptors;
  std::vector<absl::string_view> strings;  // features and os.features of all entries
  std::vector<Annotation> annotations;     // of all entries, then the index's
  std::deque<std::string> problems;        // invalid_reason texts (stable addresses)
  // Per descriptor, where its lists start in the pools while they still grow.
  struct Ranges {
    uint32_t features = 0, features_n = 0;
    uint32_t os_features = 0, os_features_n = 0;
    uint32_t annotations = 0, annotations_n = 0;
  };
  std::vector<Ranges> ranges;

  // Descriptors are kept (each is reset as it is read), so a recycled
  // storage does not construct them again.
  void Clear() {
    strings.clear();
    annotations.clear();
    problems.clear();
    ranges.clear();
  }
};

// One parser per thread: its stage buffers are reused across calls.
simdjson::dom::parser& ThreadParser(size_t max_depth) {
  thread_local simdjson::dom::parser parser;
  thread_local size_t depth = 0;
  if (depth != max_depth) {
    parser = simdjson::dom::parser();
    if (parser.allocate(size_t{64} * 1024, max_depth) == simdjson::SUCCESS) depth = max_depth;
  }
  return parser;
}

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

// The walk over one document; every reader returns false with `why` set.
class Reader {
 public:
  explicit Reader(IndexStorage& s) : s_(s) {}

  ABSL_ATTRIBUTE_ALWAYS_INLINE bool String(element v, absl::string_view& out, std::string& why,
                                           const Loc& where, absl::string_view key) {
    std::string_view sv;
    if (ABSL_PREDICT_FALSE(v.get_string().get(sv) != simdjson::SUCCESS)) {
      return NotAString(why, where, key);
    }
    out = ToAbsl(sv);
    return true;
  }

  ABSL_ATTRIBUTE_NOINLINE static bool NotAString(std::string& why, const Loc& where,
                                                 absl::string_view key) {
    why = absl::StrCat(where.str(), ".", key, ": expected a string");
    return false;
  }

  // Appends to the string pool; returns the count.
  bool StringArray(element v, uint32_t& begin, uint32_t& count, std::string& why, const Loc& where,
                   absl::string_view key) {
    array arr;
    if (v.get_array().get(arr) != simdjson::SUCCESS) {
      why = absl::StrCat(where.str(), ".", key, ": expected an array of strings");
      return false;
    }
    begin = static_cast<uint32_t>(s_.strings.size());
    for (element item : arr) {
      std::string_view sv;
      if (item.get_string().get(sv) != simdjson::SUCCESS) {
        why = absl::StrCat(where.str(), ".", key, ": expected an array of strings");
        return false;
      }
      s_.strings.push_back(ToAbsl(sv));
    }
    count = static_cast<uint32_t>(s_.strings.size() - begin);
    return true;
  }

  bool Annotations(element v, uint32_t& begin, uint32_t& count, std::string& why,
                   const Loc& where) {
    if (v.is_null()) return true;
    object a;
    if (v.get_object().get(a) != simdjson::SUCCESS) {
      why = absl::StrCat(where.str(), ".annotations: expected an object of strings");
      return false;
    }
    begin = static_cast<uint32_t>(s_.annotations.size());
    for (auto field : a) {
      std::string_view sv;
      if (field.value.get_string().get(sv) != simdjson::SUCCESS) {
        why = absl::StrCat(where.str(), ".annotations[\"", ToAbsl(field.key),
                           "\"]: expected a string");
        return false;
      }
      s_.annotations.emplace_back(ToAbsl(field.key), ToAbsl(sv));
    }
    count = static_cast<uint32_t>(s_.annotations.size() - begin);
    return true;
  }

  bool Platform(element v, PlatformView& p, IndexStorage::Ranges& r, std::string& why,
                const Loc& where) {
    object o;
    if (v.get_object().get(o) != simdjson::SUCCESS) {
      why = absl::StrCat(where.str(), ": expected an object");
      return false;
    }
    for (auto field : o) {
      std::string_view k = field.key;
      bool ok = true;
      switch (k.size()) {  // one comparison per field, as for descriptors
        case 2:
          if (k == "os") ok = String(field.value, p.os, why, where, "os");
          break;
        case 12:
          if (k == "architecture") {
            ok = String(field.value, p.architecture, why, where, "architecture");
          }
          break;
        case 7:
          if (k == "variant") ok = String(field.value, p.variant, why, where, "variant");
          break;
        case 10:
          if (k == "os.version") ok = String(field.value, p.os_version, why, where, "os.version");
          break;
        case 11:
          if (k == "os.features") {
            ok =
                StringArray(field.value, r.os_features, r.os_features_n, why, where, "os.features");
          }
          break;
        case 8:
          if (k == "features") {
            ok = StringArray(field.value, r.features, r.features_n, why, where, "features");
          }
          break;
        default:
          break;
      }
      if (!ok) return false;
    }
    if (p.architecture.empty()) {
      why = absl::StrCat(where.str(), ".architecture: missing");
      return false;
    }
    return true;
  }

  // Fills `d` from one manifests[] element in a single pass over its fields.
  void Descriptor(element e, size_t i, imgsel::Descriptor& d, IndexStorage::Ranges& r) {
    // Field by field: a whole-struct clear compiles to `rep stos`, whose
    // start-up cost dominated this loop.
    d.media_type = {};
    d.digest = {};
    d.size = 0;
    d.platform.reset();
    d.annotations = {};
    d.artifact_type = {};
    d.invalid_reason = {};
    if (!Read(e, i, d, r, why_)) {
      s_.problems.push_back(std::move(why_));
      why_.clear();
      d.invalid_reason = s_.problems.back();
      d.platform.reset();
      r = {};
    }
  }

 private:
  bool Read(element e, size_t i, imgsel::Descriptor& d, IndexStorage::Ranges& r, std::string& why) {
    const Loc loc{i};
    object o;
    if (e.get_object().get(o) != simdjson::SUCCESS) {
      why = absl::StrCat(loc.str(), ": expected an object");
      return false;
    }
    bool has_digest = false, has_size = false, has_platform = false;
    element platform;
    // Dispatch on the key's length first: one comparison per field.
    for (auto field : o) {
      std::string_view k = field.key;
      switch (k.size()) {
        case 9:
          if (k == "mediaType" && !String(field.value, d.media_type, why, loc, "mediaType")) {
            return false;
          }
          break;
        case 6:
          if (k == "digest") {
            if (!String(field.value, d.digest, why, loc, "digest")) return false;
            has_digest = true;
          }
          break;
        case 4:
          if (k == "size") {
            int64_t size;
            if (field.value.get_int64().get(size) != simdjson::SUCCESS) {
              why = absl::StrCat(loc.str(), ".size: expected an integer");
              return false;
            }
            if (size < 0) {
              why = absl::StrCat(loc.str(), ".size: negative (", size, ")");
              return false;
            }
            d.size = size;
            has_size = true;
          }
          break;
        case 12:
          if (k == "artifactType" &&
              !String(field.value, d.artifact_type, why, loc, "artifactType")) {
            return false;
          }
          break;
        case 11:
          if (k == "annotations" &&
              !Annotations(field.value, r.annotations, r.annotations_n, why, loc)) {
            return false;
          }
          break;
        case 8:
          if (k == "platform") {
            platform = field.value;
            has_platform = !field.value.is_null();
          }
          break;
        default:
          break;
      }
    }
    if (!has_digest) {
      why = absl::StrCat(loc.str(), ".digest: missing");
      return false;
    }
    if (!IsValidDigest(d.digest)) {
      why = absl::StrCat(loc.str(), ".digest: ", ValidateDigest(d.digest).message());
      return false;
    }
    if (!has_size) {
      why = absl::StrCat(loc.str(), ".size: missing");
      return false;
    }
    if (has_platform && !Platform(platform, d.platform.emplace(), r, why, Loc{i, true})) {
      return false;
    }
    return true;
  }

  IndexStorage& s_;
  std::string why_;  // one for the whole walk: filled only on a problem
};

}  // namespace

absl::StatusOr<ParsedIndex> DomParseIndex(absl::string_view json, absl::string_view source,
                                          const ParseLimits& limits) {
  if (json.size() > limits.max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": document is ", json.size(),
                                                   " bytes, over the limit of ", limits.max_bytes));
  }
  auto storage = std::make_shared<IndexStorage>();
  simdjson::dom::parser& parser = ThreadParser(limits.max_depth);
  element doc;
  if (auto err =
          parser
              .parse_into_document(storage->document, reinterpret_cast<const uint8_t*>(json.data()),
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
      index.media_type = ToAbsl(mt);
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
  array manifests;
  if (manifests_element.get_array().get(manifests) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": manifests: expected an array"));
  }
  size_t count = manifests.size();
  if (count > limits.max_entries) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": manifests: ", count, " entries, over the limit of ", limits.max_entries));
  }
  IndexStorage& s = *storage;
  // Filled in place (reset as each is read): no separate pass to construct them.
  s.descriptors.resize(count);
  s.ranges.assign(count, IndexStorage::Ranges{});
  Reader reader(s);
  size_t i = 0;
  for (element item : manifests) {
    reader.Descriptor(item, i, s.descriptors[i], s.ranges[i]);
    ++i;
  }
  uint32_t index_annotations = 0, index_annotations_n = 0;
  if (has_annotations) {
    std::string why;
    if (!reader.Annotations(annotations_element, index_annotations, index_annotations_n, why,
                            Loc{0, false, true})) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": ", why));
    }
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
  index.annotations = {s.annotations.data() + index_annotations, index_annotations_n};
  index.manifests = absl::MakeConstSpan(s.descriptors);
  index.storage = std::move(storage);
  return index;
}

}  // namespace imgsel::oracle
