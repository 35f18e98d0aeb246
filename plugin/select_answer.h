// The Select answer (imgsel.v1.SelectResponse) written straight to protobuf
// wire bytes from a Selection.
//
// imgseld answers Select through a raw gRPC method: building the generated
// message first costs twice the selection itself (a heap string per digest,
// media type and reason, a hash map per annotation set, then a second walk
// to serialize), and every Select pays it. The bytes written here parse to
// exactly the message the generated classes would build from the same
// Selection (tests/plugin/select_answer_test.cc builds that message as its
// oracle and holds the two equal), so clients see no difference.
//
// Every string field written is well-formed UTF-8, whatever the Selection
// holds: a proto3 client refuses a whole answer over one bad byte. Text
// that is not (a registry's message cut inside a character) is written as
// ToValidUtf8 (oci/utf8.h) makes it.
//
// Thread-safe; no I/O.
#pragma once

#include <string>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "selector/pipeline.h"

namespace imgsel::plugin {

// Encodes the SelectResponse and hands its bytes to `take`, which copies
// them where they go (they are the thread's buffer and valid only during the
// call; `take` must not encode an answer itself). `with_json` adds
// decision_json; `basic` leaves out candidates and compatibility results
// (SELECT_VIEW_BASIC).
void EncodeSelectAnswer(const Selection& selection, bool with_json, bool basic,
                        absl::FunctionRef<void(absl::string_view)> take);
// The same, appended to `out`.
void EncodeSelectAnswer(const Selection& selection, bool with_json, bool basic, std::string* out);

// The answer to a Select whose selection ended in an error that is not the
// caller's (a registry out of reach, a budget spent): fallback = true with
// `reason`, the reference and policy asked for, and the time taken.
void EncodeFallbackAnswer(absl::string_view reference, PolicyKind policy, absl::string_view reason,
                          absl::Duration elapsed, absl::FunctionRef<void(absl::string_view)> take);

}  // namespace imgsel::plugin
