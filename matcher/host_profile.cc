#include "matcher/host_profile.h"

#include <algorithm>
#include <initializer_list>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "matcher/features.h"
#include "matcher/string_view_bridge.h"
#include "matcher/suggest.h"
#include "oci/json_writer.h"
#include "simdjson.h"

namespace imgsel {
namespace {

using simdjson::dom::element;
using simdjson::dom::object;

absl::Status Bad(absl::string_view source, absl::string_view pointer, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", pointer, ": ", what));
}

// A key nobody reads is a typo until shown otherwise: refused, with the
// closest known key.
absl::Status CheckKeys(object o, absl::string_view source, absl::string_view pointer,
                       std::initializer_list<absl::string_view> known, absl::string_view section) {
  for (auto field : o) {
    absl::string_view key = ToAbsl(field.key);
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    return Bad(source, absl::StrCat(pointer, "/", key), UnknownKeyMessage(key, known, section));
  }
  return absl::OkStatus();
}

// What a host's variant may be, per architecture (after normalisation): the
// levels and versions imgsel and containerd know. Anything else would not
// match as the profile intends, or (a huge number) cost memory.
absl::Status CheckVariant(const Platform& p, absl::string_view source) {
  const std::string& v = p.variant;
  if (v.empty()) return absl::OkStatus();
  auto bad = [&](absl::string_view allowed) {
    return Bad(
        source, "/platform/variant",
        absl::StrCat("\"", v.size() > 32 ? v.substr(0, 32) + "..." : v, "\" is not ", allowed));
  };
  if (p.architecture == "amd64") {
    if (v == "v2" || v == "v3" || v == "v4") return absl::OkStatus();
    return bad("an amd64 level (v1, v2, v3 or v4)");
  }
  if (p.architecture == "arm64") {
    if (!PlatformLevelFeatures("arm64", v).none()) return absl::OkStatus();
    return bad("an arm64 version containerd knows (v8, v8.1-v8.9, v9, v9.1-v9.7)");
  }
  if (p.architecture == "arm") {
    if (v == "v5" || v == "v6" || v == "v7" || v == "v8") return absl::OkStatus();
    return bad("an arm version (v5, v6, v7 or v8)");
  }
  if (v.size() > 16) return bad("a variant (at most 16 characters)");
  for (char c : v) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-') {
      return bad("a variant (letters, digits, '.', '_' and '-')");
    }
  }
  return absl::OkStatus();
}

absl::Status ReadString(element e, absl::string_view source, absl::string_view pointer,
                        std::string& out) {
  std::string_view v;
  if (e.get_string().get(v) != simdjson::SUCCESS) return Bad(source, pointer, "expected a string");
  out.assign(v.data(), v.size());
  return absl::OkStatus();
}

absl::Status ReadStringArray(element e, absl::string_view source, absl::string_view pointer,
                             std::vector<std::string>& out) {
  simdjson::dom::array arr;
  if (e.get_array().get(arr) != simdjson::SUCCESS) {
    return Bad(source, pointer, "expected an array of strings");
  }
  size_t i = 0;
  for (element item : arr) {
    std::string s;
    if (auto st = ReadString(item, source, absl::StrCat(pointer, "/", i), s); !st.ok()) return st;
    out.push_back(std::move(s));
    ++i;
  }
  return absl::OkStatus();
}

absl::Status ReadElementsObject(element e, absl::string_view source, absl::string_view pointer,
                                object& elements) {
  object o;
  if (e.get_object().get(o) != simdjson::SUCCESS) return Bad(source, pointer, "expected an object");
  element inner;
  if (o["elements"].get(inner) != simdjson::SUCCESS) {
    return Bad(source, pointer, "expected an \"elements\" member");
  }
  if (inner.get_object().get(elements) != simdjson::SUCCESS) {
    return Bad(source, absl::StrCat(pointer, "/elements"), "expected an object");
  }
  return absl::OkStatus();
}

absl::Status ReadStringMap(object o, absl::string_view source, absl::string_view pointer,
                           std::map<std::string, std::string>& out) {
  for (auto field : o) {
    std::string value;
    if (auto st =
            ReadString(field.value, source, absl::StrCat(pointer, "/", ToAbsl(field.key)), value);
        !st.ok()) {
      return st;
    }
    out[std::string(field.key)] = std::move(value);
  }
  return absl::OkStatus();
}

absl::Status ReadNfd(element e, absl::string_view source, NfdFeatures& nfd) {
  object root;
  if (e.get_object().get(root) != simdjson::SUCCESS)
    return Bad(source, "/nfd", "expected an object");
  if (auto st = CheckKeys(root, source, "/nfd", {"flags", "attributes", "instances"}, "nfd");
      !st.ok()) {
    return st;
  }
  element section;
  if (root["flags"].get(section) == simdjson::SUCCESS) {
    object flags;
    if (section.get_object().get(flags) != simdjson::SUCCESS) {
      return Bad(source, "/nfd/flags", "expected an object");
    }
    for (auto f : flags) {
      std::string ptr = absl::StrCat("/nfd/flags/", ToAbsl(f.key));
      object elements;
      if (auto st = ReadElementsObject(f.value, source, ptr, elements); !st.ok()) return st;
      auto& set = nfd.flags[std::string(f.key)];
      for (auto el : elements) set.emplace(el.key);
    }
  }
  if (root["attributes"].get(section) == simdjson::SUCCESS) {
    object attrs;
    if (section.get_object().get(attrs) != simdjson::SUCCESS) {
      return Bad(source, "/nfd/attributes", "expected an object");
    }
    for (auto f : attrs) {
      std::string ptr = absl::StrCat("/nfd/attributes/", ToAbsl(f.key));
      object elements;
      if (auto st = ReadElementsObject(f.value, source, ptr, elements); !st.ok()) return st;
      if (auto st = ReadStringMap(elements, source, ptr + "/elements",
                                  nfd.attributes[std::string(f.key)]);
          !st.ok()) {
        return st;
      }
    }
  }
  if (root["instances"].get(section) == simdjson::SUCCESS) {
    object insts;
    if (section.get_object().get(insts) != simdjson::SUCCESS) {
      return Bad(source, "/nfd/instances", "expected an object");
    }
    for (auto f : insts) {
      std::string ptr = absl::StrCat("/nfd/instances/", ToAbsl(f.key));
      object o;
      simdjson::dom::array arr;
      if (f.value.get_object().get(o) != simdjson::SUCCESS ||
          o["elements"].get_array().get(arr) != simdjson::SUCCESS) {
        return Bad(source, ptr, "expected {\"elements\": [...]}");
      }
      auto& list = nfd.instances[std::string(f.key)];
      size_t i = 0;
      for (element inst : arr) {
        std::string iptr = absl::StrCat(ptr, "/elements/", i++);
        object io, attrs;
        if (inst.get_object().get(io) != simdjson::SUCCESS ||
            io["attributes"].get_object().get(attrs) != simdjson::SUCCESS) {
          return Bad(source, iptr, "expected {\"attributes\": {...}}");
        }
        std::map<std::string, std::string> m;
        if (auto st = ReadStringMap(attrs, source, iptr + "/attributes", m); !st.ok()) return st;
        list.push_back(std::move(m));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<HostProfile> ParseHostProfile(absl::string_view json, absl::string_view source) {
  if (json.size() > kMaxHostProfileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": host profile larger than ", kMaxHostProfileBytes, " bytes"));
  }
  simdjson::dom::parser parser;
  element doc;
  if (auto err = parser.parse(json.data(), json.size()).get(doc); err) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": not valid JSON: ", simdjson::error_message(err)));
  }
  object root;
  if (doc.get_object().get(root) != simdjson::SUCCESS) return Bad(source, "", "expected an object");
  if (auto st = CheckKeys(root, source, "", {"platform", "features", "nfd"}, ""); !st.ok()) {
    return st;
  }

  HostProfile profile;
  element e;
  if (root["platform"].get(e) != simdjson::SUCCESS) {
    return Bad(source, "/platform", "missing (need at least os and architecture)");
  }
  object plat;
  if (e.get_object().get(plat) != simdjson::SUCCESS)
    return Bad(source, "/platform", "expected an object");
  if (auto st =
          CheckKeys(plat, source, "/platform",
                    {"os", "architecture", "variant", "os.version", "os.features"}, "platform");
      !st.ok()) {
    return st;
  }
  Platform& p = profile.platform;
  struct Field {
    const char* key;
    std::string* out;
    bool required;
  } fields[] = {{"os", &p.os, true},
                {"architecture", &p.architecture, true},
                {"variant", &p.variant, false},
                {"os.version", &p.os_version, false}};
  for (auto& f : fields) {
    element v;
    std::string ptr = absl::StrCat("/platform/", f.key);
    if (plat[f.key].get(v) != simdjson::SUCCESS) {
      if (f.required) return Bad(source, ptr, "missing");
      continue;
    }
    if (auto st = ReadString(v, source, ptr, *f.out); !st.ok()) return st;
    if (f.required && f.out->empty()) return Bad(source, ptr, "must not be empty");
  }
  if (plat["os.features"].get(e) == simdjson::SUCCESS) {
    if (auto st = ReadStringArray(e, source, "/platform/os.features", p.os_features); !st.ok()) {
      return st;
    }
  }
  p = NormalizePlatform(std::move(p));
  for (const auto& [key, value] : {std::pair<const char*, const std::string*>{"os", &p.os},
                                   {"architecture", &p.architecture}}) {
    bool ok = value->size() <= 32;
    for (char c : *value) ok = ok && (absl::ascii_isalnum(c) || c == '_' || c == '-' || c == '.');
    if (!ok) {
      return Bad(source, absl::StrCat("/platform/", key),
                 "expected a platform name (at most 32 letters, digits, '.', '_' or '-')");
    }
  }
  if (auto st = CheckVariant(p, source); !st.ok()) return st;

  if (root["features"].get(e) == simdjson::SUCCESS) {
    std::vector<std::string> names;
    if (auto st = ReadStringArray(e, source, "/features", names); !st.ok()) return st;
    for (size_t i = 0; i < names.size(); ++i) {
      const std::string& n = names[i];
      if (!IsWellFormedFeatureName(n)) {
        return Bad(source, absl::StrCat("/features/", i),
                   "not a feature name (1-64 characters of letters, digits, '.', '_', '+', '/' "
                   "and '-')");
      }
      std::vector<std::string> canon = CanonicalFeatures(n);
      if (canon.empty()) {
        profile.features.insert(absl::AsciiStrToLower(absl::StripAsciiWhitespace(n)));
      } else {
        profile.features.insert(canon.begin(), canon.end());
      }
    }
  }
  if (root["nfd"].get(e) == simdjson::SUCCESS) {
    if (auto st = ReadNfd(e, source, profile.nfd); !st.ok()) return st;
  }
  return profile;
}

std::string HostProfileToJson(const HostProfile& profile, int indent) {
  JsonWriter w(indent);
  w.BeginObject();
  w.Key("platform").BeginObject();
  w.Key("os").String(profile.platform.os);
  w.Key("architecture").String(profile.platform.architecture);
  if (!profile.platform.variant.empty()) w.Key("variant").String(profile.platform.variant);
  if (!profile.platform.os_version.empty()) w.Key("os.version").String(profile.platform.os_version);
  if (!profile.platform.os_features.empty()) {
    w.Key("os.features").BeginArray();
    for (const auto& f : profile.platform.os_features) w.String(f);
    w.EndArray();
  }
  w.EndObject();
  w.Key("features").BeginArray();
  for (const auto& f : profile.features) w.String(f);
  w.EndArray();
  w.Key("nfd").BeginObject();
  w.Key("flags").BeginObject();
  for (const auto& [name, elems] : profile.nfd.flags) {
    w.Key(name).BeginObject().Key("elements").BeginObject();
    for (const auto& el : elems) w.Key(el).BeginObject().EndObject();
    w.EndObject().EndObject();
  }
  w.EndObject();
  w.Key("attributes").BeginObject();
  for (const auto& [name, elems] : profile.nfd.attributes) {
    w.Key(name).BeginObject().Key("elements").BeginObject();
    for (const auto& [k, v] : elems) w.Key(k).String(v);
    w.EndObject().EndObject();
  }
  w.EndObject();
  w.Key("instances").BeginObject();
  for (const auto& [name, list] : profile.nfd.instances) {
    w.Key(name).BeginObject().Key("elements").BeginArray();
    for (const auto& inst : list) {
      w.BeginObject().Key("attributes").BeginObject();
      for (const auto& [k, v] : inst) w.Key(k).String(v);
      w.EndObject().EndObject();
    }
    w.EndArray().EndObject();
  }
  w.EndObject();
  w.EndObject();
  w.EndObject();
  return w.TakeDocument();
}

}  // namespace imgsel
