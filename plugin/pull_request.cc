#include "plugin/pull_request.h"

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cri/runtime/v1/api.pb.h"
#include "matcher/string_view_bridge.h"

namespace imgsel::plugin {
namespace {

constexpr int kWireVarint = 0;
constexpr int kWireFixed64 = 1;
constexpr int kWireLength = 2;
constexpr int kWireFixed32 = 5;

// One field of a message as it sits in the encoding.
struct WireField {
  uint64_t number = 0;
  int wire_type = 0;
  absl::string_view whole;    // tag + payload, exactly as encoded
  absl::string_view payload;  // length-delimited: the bytes inside
};

bool ReadVarint(absl::string_view& in, uint64_t* value) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    const uint8_t b = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *value = v;
      return true;
    }
  }
  return false;
}

void AppendVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// Splits a message into its fields; nullopt when the encoding is broken or
// uses groups (which no CRI message has).
std::optional<std::vector<WireField>> SplitFields(absl::string_view message) {
  std::vector<WireField> fields;
  absl::string_view in = message;
  while (!in.empty()) {
    const char* start = in.data();
    uint64_t tag;
    if (!ReadVarint(in, &tag) || (tag >> 3) == 0) return std::nullopt;
    WireField f;
    f.number = tag >> 3;
    f.wire_type = static_cast<int>(tag & 7);
    switch (f.wire_type) {
      case kWireVarint: {
        uint64_t ignored;
        if (!ReadVarint(in, &ignored)) return std::nullopt;
        break;
      }
      case kWireFixed64:
        if (in.size() < 8) return std::nullopt;
        in.remove_prefix(8);
        break;
      case kWireFixed32:
        if (in.size() < 4) return std::nullopt;
        in.remove_prefix(4);
        break;
      case kWireLength: {
        uint64_t len;
        if (!ReadVarint(in, &len) || len > in.size()) return std::nullopt;
        f.payload = in.substr(0, len);
        in.remove_prefix(len);
        break;
      }
      default:
        return std::nullopt;
    }
    f.whole = absl::string_view(start, in.data() - start);
    fields.push_back(f);
  }
  return fields;
}

void AppendLengthField(std::string& out, uint64_t number, absl::string_view payload) {
  AppendVarint(out, (number << 3) | kWireLength);
  AppendVarint(out, payload.size());
  out.append(payload.data(), payload.size());
}

}  // namespace

absl::StatusOr<PullImageFields> ReadPullImageRequest(absl::string_view request) {
  runtime::v1::PullImageRequest parsed;
  if (!parsed.ParseFromArray(request.data(), static_cast<int>(request.size()))) {
    return absl::InvalidArgumentError("PullImageRequest: not a valid protobuf message");
  }
  if (parsed.image().image().empty()) {
    return absl::InvalidArgumentError("PullImageRequest: image.image is empty");
  }
  PullImageFields out;
  out.image = parsed.image().image();
  out.runtime_handler = parsed.image().runtime_handler();
  if (parsed.sandbox_config().has_metadata()) {
    const runtime::v1::PodSandboxMetadata& m = parsed.sandbox_config().metadata();
    out.pod = {m.name(), m.uid(), m.namespace_(), m.attempt()};
  }
  if (parsed.has_auth()) {
    const runtime::v1::AuthConfig& a = parsed.auth();
    // imgseld has no use for it, but credentials holding a control
    // character are not selected for, whichever field holds it.
    if (absl::Status s =
            registry::CheckCredentialField("auth.server_address", ToAbsl(a.server_address()));
        !s.ok()) {
      return s;
    }
    auto creds =
        registry::CredentialsFromCri(ToAbsl(a.username()), ToAbsl(a.password()), ToAbsl(a.auth()),
                                     ToAbsl(a.identity_token()), ToAbsl(a.registry_token()));
    if (!creds.ok()) return creds.status();
    out.credentials = *std::move(creds);
  }
  return out;
}

absl::StatusOr<std::string> ReplacePullImageName(absl::string_view request,
                                                 absl::string_view image) {
  auto fields = SplitFields(request);
  if (!fields) {
    return absl::InvalidArgumentError("PullImageRequest: malformed protobuf encoding");
  }
  size_t last_spec = fields->size();
  for (size_t i = 0; i < fields->size(); ++i) {
    if ((*fields)[i].number == 1 && (*fields)[i].wire_type == kWireLength) last_spec = i;
  }
  if (last_spec == fields->size()) {
    return absl::InvalidArgumentError("PullImageRequest: no image spec");
  }
  std::string out;
  out.reserve(request.size() + image.size());
  for (size_t i = 0; i < fields->size(); ++i) {
    const WireField& f = (*fields)[i];
    if (f.number != 1 || f.wire_type != kWireLength) {
      out.append(f.whole.data(), f.whole.size());
      continue;
    }
    // Embedded messages merge, and the last `image` wins: replace it in every
    // ImageSpec occurrence, and make sure the last one carries it.
    auto inner = SplitFields(f.payload);
    if (!inner) return absl::InvalidArgumentError("PullImageRequest.image: malformed encoding");
    std::string spec;
    spec.reserve(f.payload.size() + image.size());
    bool replaced = false;
    for (const WireField& g : *inner) {
      if (g.number == 1 && g.wire_type == kWireLength) {
        if (!replaced) AppendLengthField(spec, 1, image);
        replaced = true;
        continue;
      }
      spec.append(g.whole.data(), g.whole.size());
    }
    if (!replaced && i == last_spec) {
      std::string with_image;
      AppendLengthField(with_image, 1, image);
      spec.insert(0, with_image);
    }
    AppendLengthField(out, 1, spec);
  }
  return out;
}

}  // namespace imgsel::plugin
