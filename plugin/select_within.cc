#include "plugin/select_within.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "registry/auth.h"

namespace imgsel::plugin {
namespace {

// State shared between a selection and the call waiting for it, which may
// stop waiting first.
struct SelectionCall {
  absl::Notification done;
  SelectionRequest request;
  registry::Credentials credentials;
  absl::StatusOr<Selection> result = absl::UnknownError("not run");
};

}  // namespace

std::optional<SelectionSlot> SelectionSlot::Take(std::shared_ptr<std::atomic<int>> running,
                                                 int limit) {
  if (running->fetch_add(1) >= limit) {
    running->fetch_sub(1);
    return std::nullopt;
  }
  return SelectionSlot(std::move(running));
}

SelectionSlot::~SelectionSlot() {
  if (running_ != nullptr) running_->fetch_sub(1);
}

absl::StatusOr<Selection> SelectWithin(SelectFn select, const SelectionRequest& request,
                                       absl::Duration budget, SelectionSlot slot) {
  auto call = std::make_shared<SelectionCall>();
  call->request = request;
  if (request.credentials != nullptr) {
    call->credentials = *request.credentials;
    call->request.credentials = &call->credentials;
  }
  std::thread([call, select = std::move(select), slot = std::move(slot)] {
    call->result = select(call->request);
    call->done.Notify();
  }).detach();
  if (!call->done.WaitForNotificationWithTimeout(budget)) {
    return absl::DeadlineExceededError(absl::StrCat(
        "selection budget of ", absl::FormatDuration(budget), " ran out (registry still busy)"));
  }
  return call->result;
}

}  // namespace imgsel::plugin
