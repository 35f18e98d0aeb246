#include "plugin/select_answer.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "matcher/decision_json.h"
#include "matcher/select.h"
#include "oci/utf8.h"

namespace imgsel::plugin {
namespace {

// Protobuf wire format, the subset the answer needs. proto3 rules: a scalar
// or string field at its default is not written; an element of a repeated
// field and a set message field always are.
//
// Bytes go through a raw write position into a buffer the thread keeps (a
// std::string append per tag and per string cost more than the bytes, and
// sizing a fresh string zero-fills it). One Wire per thread at a time.
class Wire {
 public:
  Wire() : buf_(ThreadBuffer()) {
    if (buf_.size() < kFirstBytes) buf_.resize(kFirstBytes);
  }
  ~Wire() {
    // A very large answer does not keep its buffer alive in every thread.
    if (buf_.size() > kKeptBytes) {
      buf_.resize(kKeptBytes);
      buf_.shrink_to_fit();
    }
  }
  Wire(const Wire&) = delete;
  Wire& operator=(const Wire&) = delete;

  // What has been written; valid until the next write or the Wire's end.
  absl::string_view Bytes() const { return {buf_.data(), at_}; }

  void Uint(int field, uint64_t v) {
    if (v == 0) return;
    char* p = Room(2 * kMaxVarint);
    p += PutVarint(p, Tag(field, kVarint));
    p += PutVarint(p, v);
    at_ = p - buf_.data();
  }
  // int32 and int64 alike: a negative value is its 64-bit two's complement.
  void Int(int field, int64_t v) { Uint(field, static_cast<uint64_t>(v)); }
  void Bool(int field, bool v) { Uint(field, v ? 1 : 0); }
  void String(int field, absl::string_view s) {
    if (!s.empty()) Element(field, s);
  }
  // One element of a repeated string, or a map key or value: always written.
  // Always well-formed UTF-8 (a proto3 reader refuses the whole answer
  // otherwise): text that is not, such as a registry's error message cut
  // inside a character, is written as ToValidUtf8 makes it.
  void Element(int field, absl::string_view s) {
    if (!IsAscii(s) && FirstNonUtf8Byte(s) != absl::string_view::npos) [[unlikely]] {
      WriteBytes(field, ToValidUtf8(s));
      return;
    }
    WriteBytes(field, s);
  }
  void WriteBytes(int field, absl::string_view s) {
    char* p = Room(2 * kMaxVarint + s.size());
    p += PutVarint(p, Tag(field, kLengthDelimited));
    p += PutVarint(p, s.size());
    if (!s.empty()) std::memcpy(p, s.data(), s.size());  // an empty view may have no data
    at_ = p + s.size() - buf_.data();
  }
  // A nested message: `body` writes its fields; the length is put in front
  // afterwards. Two bytes are kept for it, which is what lengths of 128 bytes
  // to 16 KiB take (a candidate, a descriptor); a shorter body moves down one
  // byte, a longer one (an entry with kilobytes of annotations) up.
  template <typename Body>
  void Message(int field, Body&& body) {
    char* p = Room(kMaxVarint + 2);
    p += PutVarint(p, Tag(field, kLengthDelimited));
    const size_t len_at = p - buf_.data();
    at_ = len_at + 2;
    body();
    const uint64_t len = at_ - len_at - 2;
    char buf[kMaxVarint];
    const size_t n = PutVarint(buf, len);
    if (n == 1) {
      char* b = buf_.data() + len_at;
      std::memmove(b + 1, b + 2, len);
      --at_;
    } else if (n > 2) {
      Room(n - 2);
      char* b = buf_.data() + len_at;
      std::memmove(b + n, b + 2, len);
      at_ += n - 2;
    }
    std::memcpy(buf_.data() + len_at, buf, n);
  }

 private:
  static constexpr int kVarint = 0;
  static constexpr int kLengthDelimited = 2;
  static constexpr size_t kMaxVarint = 10;

  // True when no byte of `s` has its high bit set, the case of nearly every
  // string in an answer (digests, media types, platforms, reasons): eight
  // bytes at a time, without a branch per byte.
  static bool IsAscii(absl::string_view s) {
    const char* p = s.data();
    uint64_t seen = 0, word;
    size_t n = s.size();
    for (; n >= sizeof(word); n -= sizeof(word), p += sizeof(word)) {
      std::memcpy(&word, p, sizeof(word));
      seen |= word;
    }
    if (n > 0 && s.size() >= sizeof(word)) {
      // The tail as the string's last eight bytes, some of them seen again.
      std::memcpy(&word, s.data() + s.size() - sizeof(word), sizeof(word));
      seen |= word;
    } else {
      for (; n > 0; --n) seen |= static_cast<unsigned char>(*p++);
    }
    return (seen & 0x8080808080808080ULL) == 0;
  }
  static uint64_t Tag(int field, int type) { return static_cast<uint64_t>(field) << 3 | type; }
  // Writes `v` as a varint at `p`; returns the bytes written.
  static size_t PutVarint(char* p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
      p[n++] = static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    p[n++] = static_cast<char>(v);
    return n;
  }
  // A thread's first buffer, and what it keeps at most between answers: the
  // example's full answer is 2.5 KB, a 64-entry index's about 20 KB. The
  // buffer doubles when an answer needs more.
  static constexpr size_t kFirstBytes = 4 << 10;
  static constexpr size_t kKeptBytes = 64 << 10;

  static std::string& ThreadBuffer() {
    thread_local std::string buffer;
    return buffer;
  }
  // The write position, with at least `n` bytes after it.
  char* Room(size_t n) {
    if (buf_.size() - at_ < n) [[unlikely]]
      Grow(n);
    return buf_.data() + at_;
  }
  [[gnu::noinline]] void Grow(size_t n) { buf_.resize(std::max(2 * buf_.size(), at_ + n)); }

  std::string& buf_;
  size_t at_ = 0;  // bytes of `buf_` written so far
};

// Field numbers of proto/imgsel/v1/selector.proto.
namespace platform_field {
constexpr int kOs = 1, kArchitecture = 2, kVariant = 3, kOsVersion = 4, kOsFeatures = 5,
              kFeatures = 6;
}
namespace descriptor_field {
constexpr int kMediaType = 1, kDigest = 2, kSize = 3, kPlatform = 4, kAnnotations = 5;
}
namespace candidate_field {
constexpr int kPosition = 1, kEntry = 2, kEligible = 3, kSelected = 4, kScore = 5,
              kPlatformRank = 6, kReasons = 7;
}
namespace compat_field {
constexpr int kEntryDigest = 1, kArtifact = 2, kKind = 3, kOnIndex = 4, kMatched = 5, kWeight = 6,
              kHasWeight = 7, kFromBase = 8, kNotRead = 9;
}
namespace response_field {
constexpr int kSelected = 1, kFallback = 2, kFallbackReason = 3, kNothingToChoose = 4, kPolicy = 5,
              kHostPlatform = 6, kCandidates = 7, kCompatibility = 8, kReference = 9,
              kDocumentDigest = 10, kDocumentMediaType = 11, kWarnings = 12, kDecisionJson = 13,
              kElapsedUs = 14;
}
// imgsel.v1.Policy values.
constexpr uint64_t kPolicyBest = 1, kPolicyFirstMatch = 2;

void WriteDescriptor(Wire& w, const Descriptor& d) {
  namespace f = descriptor_field;
  w.String(f::kMediaType, d.media_type);
  w.String(f::kDigest, d.digest);
  w.Int(f::kSize, d.size);
  if (d.platform) {
    const PlatformView& p = *d.platform;
    w.Message(f::kPlatform, [&] {
      namespace pf = platform_field;
      w.String(pf::kOs, p.os);
      w.String(pf::kArchitecture, p.architecture);
      w.String(pf::kVariant, p.variant);
      w.String(pf::kOsVersion, p.os_version);
      for (absl::string_view s : p.os_features) w.Element(pf::kOsFeatures, s);
      for (absl::string_view s : p.features) w.Element(pf::kFeatures, s);
    });
  }
  // A map field is a repeated entry message {key = 1, value = 2}. Entries go
  // in document order: a key written twice in the index parses to its last
  // value, as assigning them in order to the message's map does.
  for (const auto& [key, value] : d.annotations) {
    w.Message(f::kAnnotations, [&] {
      w.Element(1, key);
      w.Element(2, value);
    });
  }
}

}  // namespace

void EncodeSelectAnswer(const Selection& sel, bool with_json, bool basic,
                        absl::FunctionRef<void(absl::string_view)> take) {
  namespace f = response_field;
  const Decision& d = sel.decision;
  Wire w;
  if (const Descriptor* chosen = sel.chosen()) {
    w.Message(f::kSelected, [&] { WriteDescriptor(w, *chosen); });
  }
  w.Bool(f::kFallback, d.fallback);
  w.String(f::kFallbackReason, d.fallback_reason);
  w.Bool(f::kNothingToChoose, d.nothing_to_choose || !sel.is_index);
  w.Uint(f::kPolicy, d.policy == PolicyKind::kFirstMatch ? kPolicyFirstMatch : kPolicyBest);
  w.String(f::kHostPlatform, d.host_platform);
  if (!basic) {
    const Candidate* winner = d.selected();
    for (const Candidate& c : d.candidates) {
      w.Message(f::kCandidates, [&] {
        namespace cf = candidate_field;
        w.Uint(cf::kPosition, static_cast<uint32_t>(c.position));
        w.Message(cf::kEntry, [&] { WriteDescriptor(w, d.index.manifests[c.position]); });
        w.Bool(cf::kEligible, c.eligible);
        w.Bool(cf::kSelected, &c == winner);
        w.Int(cf::kScore, c.score);
        w.Int(cf::kPlatformRank, c.platform_rank);
        ForEachReason(d, c, [&](absl::string_view r) { w.Element(cf::kReasons, r); });
      });
    }
    for (const auto& [entry, results] : sel.compat) {
      for (const auto& shared : results) {
        if (shared == nullptr) continue;
        const ArtifactResult& a = *shared;
        w.Message(f::kCompatibility, [&] {
          namespace cf = compat_field;
          w.String(cf::kEntryDigest, entry);
          w.String(cf::kArtifact, a.id);
          w.String(cf::kKind, a.kind);
          w.Bool(cf::kOnIndex, a.on_index);
          w.String(cf::kFromBase, a.from_base);
          w.Bool(cf::kMatched, a.matched);
          if (a.weight) {
            w.Int(cf::kWeight, *a.weight);
            w.Bool(cf::kHasWeight, true);
          }
          for (const std::string& media_type : a.not_read) w.Element(cf::kNotRead, media_type);
        });
      }
    }
  }
  w.String(f::kReference, sel.reference);
  w.String(f::kDocumentDigest, sel.document_digest);
  w.String(f::kDocumentMediaType, sel.document_media_type);
  for (const std::string& warning : sel.warnings) w.Element(f::kWarnings, warning);
  if (with_json) w.String(f::kDecisionJson, DecisionToJson(d, 0));
  w.Uint(f::kElapsedUs, static_cast<uint64_t>(absl::ToInt64Microseconds(sel.elapsed)));
  take(w.Bytes());
}

void EncodeFallbackAnswer(absl::string_view reference, PolicyKind policy, absl::string_view reason,
                          absl::Duration elapsed, absl::FunctionRef<void(absl::string_view)> take) {
  namespace f = response_field;
  Wire w;
  w.Bool(f::kFallback, true);
  w.String(f::kFallbackReason, reason);
  w.Uint(f::kPolicy, policy == PolicyKind::kFirstMatch ? kPolicyFirstMatch : kPolicyBest);
  w.String(f::kReference, reference);
  w.Uint(f::kElapsedUs, static_cast<uint64_t>(absl::ToInt64Microseconds(elapsed)));
  take(w.Bytes());
}

void EncodeSelectAnswer(const Selection& sel, bool with_json, bool basic, std::string* out) {
  EncodeSelectAnswer(sel, with_json, basic,
                     [out](absl::string_view bytes) { out->append(bytes.data(), bytes.size()); });
}

}  // namespace imgsel::plugin
