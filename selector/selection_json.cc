#include "selector/selection_json.h"

#include "matcher/decision_json.h"
#include "oci/json_writer.h"

namespace imgsel {

std::string SelectionToJson(const Selection& s, int indent) {
  JsonWriter w(indent);
  w.BeginObject();
  w.Key("reference").String(s.reference);
  if (!s.repository.empty()) w.Key("repository").String(s.repository);
  if (!s.tag.empty()) w.Key("tag").String(s.tag);
  if (!s.document_digest.empty()) w.Key("digest").String(s.document_digest);
  w.Key("mediaType").String(s.document_media_type);
  w.Key("isIndex").Bool(s.is_index);
  w.Key("roundTrips").Int(s.round_trips);
  w.Key("elapsedMs").Int(absl::ToInt64Milliseconds(s.elapsed));
  w.Key("warnings").BeginArray();
  for (const auto& warning : s.warnings) w.String(warning);
  w.EndArray();
  WriteDecisionJsonFields(w, s.decision);
  w.Key("compatibility").BeginObject();
  for (const auto& [digest, artifacts] : s.compat) {
    w.Key(digest).BeginArray();
    for (const auto& shared : artifacts) {
      const ArtifactResult& a = *shared;
      w.BeginObject();
      w.Key("artifact").String(a.id);
      w.Key("kind").String(a.kind);
      w.Key("onIndex").Bool(a.on_index);
      if (!a.from_base.empty()) w.Key("fromBase").String(a.from_base);
      w.Key("notRead").BeginArray();
      for (const std::string& media_type : a.not_read) w.String(media_type);
      w.EndArray();
      w.Key("matched").Bool(a.matched);
      if (a.weight) w.Key("weight").Int(*a.weight);
      w.Key("specs").BeginArray();
      for (const SpecResult& spec : a.specs) {
        w.BeginObject();
        if (!spec.name.empty()) w.Key("name").String(spec.name);
        w.Key("sets");
        WriteCompatResultJson(spec, w);
        w.EndObject();
      }
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  w.EndObject();
  return w.TakeDocument();
}

}  // namespace imgsel
