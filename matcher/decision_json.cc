#include "matcher/decision_json.h"

#include "oci/json_writer.h"

namespace imgsel {
namespace {

template <typename Strings>
void WriteStrings(JsonWriter& w, const Strings& v) {
  w.BeginArray();
  for (const auto& s : v) w.String(s);
  w.EndArray();
}

void WritePlatformOrNull(JsonWriter& w, const Descriptor& d) {
  if (d.platform) {
    WritePlatformJson(w, *d.platform);
  } else {
    w.Null();
  }
}

}  // namespace

void WritePlatformJson(JsonWriter& w, const PlatformView& p) {
  w.BeginObject();
  w.Key("os").String(p.os);
  w.Key("architecture").String(p.architecture);
  if (!p.variant.empty()) w.Key("variant").String(p.variant);
  if (!p.os_version.empty()) w.Key("os.version").String(p.os_version);
  if (!p.os_features.empty()) WriteStrings(w.Key("os.features"), p.os_features);
  if (!p.features.empty()) WriteStrings(w.Key("features"), p.features);
  w.EndObject();
}

std::string DecisionToJson(const Decision& decision, int indent) {
  JsonWriter w(indent);
  w.BeginObject();
  WriteDecisionJsonFields(w, decision);
  w.EndObject();
  return w.TakeDocument();
}

void WriteDecisionJsonFields(JsonWriter& w, const Decision& decision) {
  w.Key("selected");
  if (const Descriptor* d = decision.selected_descriptor()) {
    w.BeginObject();
    w.Key("position").Int(static_cast<int64_t>(decision.selected()->position));
    w.Key("digest").String(d->digest);
    w.Key("mediaType").String(d->media_type);
    w.Key("size").Int(d->size);
    w.Key("platform");
    WritePlatformOrNull(w, *d);
    w.Key("annotations").BeginObject();
    for (const auto& [k, v] : d->annotations) w.Key(k).String(v);
    w.EndObject();
    w.EndObject();
  } else {
    w.Null();
  }
  w.Key("policy").String(PolicyKindName(decision.policy));
  w.Key("fallback").Bool(decision.fallback);
  if (decision.fallback) w.Key("fallbackReason").String(decision.fallback_reason);
  if (decision.nothing_to_choose) w.Key("nothingToChoose").Bool(true);
  w.Key("candidates").BeginArray();
  int rank = 0;
  for (const Candidate& c : decision.candidates) {
    const Descriptor& d = decision.index.manifests[c.position];
    w.BeginObject();
    w.Key("position").Int(static_cast<int64_t>(c.position));
    w.Key("digest").String(d.digest);
    w.Key("platform");
    WritePlatformOrNull(w, d);
    w.Key("eligible").Bool(c.eligible);
    w.Key("score").Int(c.score);
    if (c.eligible) w.Key("rank").Int(++rank);
    WriteStrings(w.Key("reasons"), ExplainCandidate(decision, c));
    w.EndObject();
  }
  w.EndArray();
}

}  // namespace imgsel
