#include "matcher/index.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "matcher/digest.h"
#include "matcher/string_view_bridge.h"
#include "simdjson.h"

namespace imgsel {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

// One parser per thread: its buffers are reused across calls, which keeps
// repeated selections allocation-light.
simdjson::dom::parser& ThreadParser(size_t max_depth) {
  thread_local simdjson::dom::parser parser;
  thread_local size_t depth = 0;
  if (depth != max_depth) {
    parser = simdjson::dom::parser();
    if (parser.allocate(64 * 1024, max_depth) != simdjson::SUCCESS) depth = 0;
    depth = max_depth;
  }
  return parser;
}

// Reads an optional string member; false with a reason when it has the wrong type.
bool OptString(object o, absl::string_view key, std::string& out, std::string& why,
               absl::string_view where) {
  element e;
  if (o[ToStd(key)].get(e) != simdjson::SUCCESS) return true;
  std::string_view v;
  if (e.get_string().get(v) != simdjson::SUCCESS) {
    why = absl::StrCat(where, ".", key, ": expected a string");
    return false;
  }
  out.assign(v.data(), v.size());
  return true;
}

bool OptStringArray(object o, absl::string_view key, std::vector<std::string>& out,
                    std::string& why, absl::string_view where) {
  element e;
  if (o[ToStd(key)].get(e) != simdjson::SUCCESS) return true;
  array arr;
  if (e.get_array().get(arr) != simdjson::SUCCESS) {
    why = absl::StrCat(where, ".", key, ": expected an array of strings");
    return false;
  }
  for (element item : arr) {
    std::string_view v;
    if (item.get_string().get(v) != simdjson::SUCCESS) {
      why = absl::StrCat(where, ".", key, ": expected an array of strings");
      return false;
    }
    out.emplace_back(v.data(), v.size());
  }
  return true;
}

bool ReadAnnotations(object o, Annotations& out, std::string& why, absl::string_view where) {
  element e;
  if (o["annotations"].get(e) != simdjson::SUCCESS) return true;
  if (e.is_null()) return true;
  object a;
  if (e.get_object().get(a) != simdjson::SUCCESS) {
    why = absl::StrCat(where, ".annotations: expected an object of strings");
    return false;
  }
  for (auto field : a) {
    std::string_view v;
    if (field.value.get_string().get(v) != simdjson::SUCCESS) {
      why = absl::StrCat(where, ".annotations[\"", ToAbsl(field.key), "\"]: expected a string");
      return false;
    }
    out.emplace_back(std::string(field.key), std::string(v));
  }
  std::sort(out.begin(), out.end());
  return true;
}

void ReadDescriptor(element e, size_t i, Descriptor& d) {
  std::string where = absl::StrCat("manifests[", i, "]");
  object o;
  if (e.get_object().get(o) != simdjson::SUCCESS) {
    d.invalid_reason = absl::StrCat(where, ": expected an object");
    return;
  }
  std::string& why = d.invalid_reason;
  if (!OptString(o, "mediaType", d.media_type, why, where)) return;
  if (!OptString(o, "artifactType", d.artifact_type, why, where)) return;
  element v;
  std::string_view digest;
  if (o["digest"].get(v) != simdjson::SUCCESS) {
    why = absl::StrCat(where, ".digest: missing");
    return;
  }
  if (v.get_string().get(digest) != simdjson::SUCCESS) {
    why = absl::StrCat(where, ".digest: expected a string");
    return;
  }
  d.digest.assign(digest.data(), digest.size());
  if (auto st = ValidateDigest(ToAbsl(digest)); !st.ok()) {
    why = absl::StrCat(where, ".digest: ", st.message());
    return;
  }
  int64_t size = 0;
  if (o["size"].get(v) != simdjson::SUCCESS) {
    why = absl::StrCat(where, ".size: missing");
    return;
  }
  if (v.get_int64().get(size) != simdjson::SUCCESS) {
    why = absl::StrCat(where, ".size: expected an integer");
    return;
  }
  if (size < 0) {
    why = absl::StrCat(where, ".size: negative (", size, ")");
    return;
  }
  d.size = size;
  if (!ReadAnnotations(o, d.annotations, why, where)) return;
  if (o["platform"].get(v) == simdjson::SUCCESS && !v.is_null()) {
    std::string pwhere = where + ".platform";
    object p;
    if (v.get_object().get(p) != simdjson::SUCCESS) {
      why = absl::StrCat(pwhere, ": expected an object");
      return;
    }
    Platform plat;
    if (!OptString(p, "os", plat.os, why, pwhere) ||
        !OptString(p, "architecture", plat.architecture, why, pwhere) ||
        !OptString(p, "variant", plat.variant, why, pwhere) ||
        !OptString(p, "os.version", plat.os_version, why, pwhere) ||
        !OptStringArray(p, "os.features", plat.os_features, why, pwhere) ||
        !OptStringArray(p, "features", plat.features, why, pwhere)) {
      return;
    }
    if (plat.architecture.empty()) {
      why = absl::StrCat(pwhere, ".architecture: missing");
      return;
    }
    d.platform = std::move(plat);
  }
}

}  // namespace

const std::string* Descriptor::Annotation(absl::string_view key) const {
  auto it = std::lower_bound(annotations.begin(), annotations.end(), key,
                             [](const auto& kv, absl::string_view k) { return kv.first < k; });
  if (it == annotations.end() || it->first != key) return nullptr;
  return &it->second;
}

absl::StatusOr<ParsedIndex> ParseIndex(absl::string_view json, absl::string_view source,
                                       const ParseLimits& limits) {
  if (json.size() > limits.max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": document is ", json.size(),
                                                   " bytes, over the limit of ", limits.max_bytes));
  }
  simdjson::dom::parser& parser = ThreadParser(limits.max_depth);
  element doc;
  if (auto err = parser.parse(json.data(), json.size()).get(doc); err) {
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
  element e;
  if (root["mediaType"].get(e) == simdjson::SUCCESS) {
    std::string_view mt;
    if (e.get_string().get(mt) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": mediaType: expected a string"));
    }
    index.media_type.assign(mt.data(), mt.size());
  }
  bool has_manifests = root["manifests"].get(e) == simdjson::SUCCESS;
  const std::string& mt = index.media_type;
  if (mt == kOciManifestMediaType || mt == kDockerManifestMediaType ||
      (mt.empty() && !has_manifests &&
       (root["config"].error() == simdjson::SUCCESS ||
        root["layers"].error() == simdjson::SUCCESS))) {
    index.kind = DocumentKind::kManifest;
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
  if (e.get_array().get(manifests) != simdjson::SUCCESS) {
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
  std::string why;
  if (!ReadAnnotations(root, index.annotations, why, "index")) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", why));
  }
  return index;
}

}  // namespace imgsel
