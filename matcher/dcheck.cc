#include "matcher/dcheck.h"

#include <cstdio>
#include <cstdlib>

namespace imgsel::internal {

void DcheckFailed(const char* condition, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, condition);
  std::abort();
}

}  // namespace imgsel::internal
