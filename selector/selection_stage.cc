#include "selector/selection_stage.h"

#include "absl/strings/cord.h"

namespace imgsel {
namespace {

constexpr char kStageTypeUrl[] = "type.imgsel.dev/imgsel.SelectionStage";

constexpr struct {
  SelectionStage stage;
  const char* name;
} kStageNames[] = {
    {SelectionStage::kRequest, "request"}, {SelectionStage::kResolve, "resolve"},
    {SelectionStage::kIndex, "index"},     {SelectionStage::kBudget, "budget"},
    {SelectionStage::kMemory, "memory"},
};

}  // namespace

absl::Status AtStage(absl::Status status, SelectionStage stage) {
  if (status.ok()) return status;
  for (const auto& s : kStageNames) {
    if (s.stage == stage) status.SetPayload(kStageTypeUrl, absl::Cord(s.name));
  }
  return status;
}

std::optional<SelectionStage> StageOf(const absl::Status& status) {
  const auto payload = status.GetPayload(kStageTypeUrl);
  if (!payload) return std::nullopt;
  for (const auto& s : kStageNames) {
    if (*payload == s.name) return s.stage;
  }
  return std::nullopt;
}

}  // namespace imgsel
