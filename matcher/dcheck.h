// IMGSEL_DCHECK(condition): an invariant whose breach would corrupt a
// decision silently (a ranking out of order, a depth that contradicts
// containment). Builds without NDEBUG (the debug and asan presets, which CI
// runs every test under) print file:line and the condition and abort;
// release builds compile the condition but never evaluate it.
//
// For invariants of the code, never for input: bad input gets an
// absl::Status that says what and where.
#pragma once

namespace imgsel::internal {
[[noreturn]] void DcheckFailed(const char* condition, const char* file, int line);
}  // namespace imgsel::internal

#ifdef NDEBUG
#define IMGSEL_DCHECK(condition) \
  do {                           \
    if (false && (condition)) {  \
    }                            \
  } while (0)
#else
#define IMGSEL_DCHECK(condition)                                                        \
  do {                                                                                  \
    if (!(condition)) ::imgsel::internal::DcheckFailed(#condition, __FILE__, __LINE__); \
  } while (0)
#endif
