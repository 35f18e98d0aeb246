// Labels of compatibility results for one-line reasons, shared by the
// text and JSON renderings (compat_render.cc) and the artifact verdicts
// (compat_artifacts.cc). Internal to the matcher.
#pragma once

#include <string>

#include "matcher/compat_eval.h"

namespace imgsel::compat_internal {

// "feature.element", or the feature alone for a matchName row.
std::string ExpressionLabel(const ExpressionResult& e);
// "set #2 [tag avx512]".
std::string SetLabel(const SetResult& s);
// The first failing expression of a set, for a one-line reason.
std::string FirstFailure(const SetResult& s);
// The first set that earned the artifact its weight, with its profile name.
std::string BestSetLabel(const ArtifactResult& r);

}  // namespace imgsel::compat_internal
