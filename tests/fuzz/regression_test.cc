// Every saved input of every fuzz target, replayed through the target's own
// entry point (targets/entry_points.h) in a normal test run: the seed
// corpora (tests/fuzz/corpus/NAME) and the inputs that once broke a parser
// (tests/fuzz/regressions/NAME, each kept after its fix). Each must get a
// value or an error that names the input - under the asan preset, with no
// sanitizer report either.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/fuzz/targets/entry_points.h"

namespace imgsel::fuzz {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The files of tests/fuzz/<folder>/<target>, if that folder exists.
int Replay(const FuzzEntryPoint& entry, const std::string& folder) {
  const fs::path dir =
      fs::path(IMGSEL_SOURCE_DIR) / "tests/fuzz" / folder / std::string(entry.name);
  if (!fs::is_directory(dir)) return 0;
  int replayed = 0;
  for (const fs::directory_entry& file : fs::directory_iterator(dir)) {
    if (!file.is_regular_file()) continue;
    EXPECT_EQ(entry.run(ReadFile(file.path())), "") << file.path();
    ++replayed;
  }
  return replayed;
}

TEST(FuzzRegression, EverySeedAndSavedInputGetsAValueOrAClearError) {
  for (const FuzzEntryPoint& entry : EntryPoints()) {
    SCOPED_TRACE(entry.name);
    EXPECT_GT(Replay(entry, "corpus"), 0) << "every target has a seed corpus";
    Replay(entry, "regressions");
  }
}

// A folder of saved inputs must belong to a target, or its inputs would
// silently never be replayed.
TEST(FuzzRegression, EveryFolderNamesATarget) {
  for (const char* folder : {"corpus", "regressions"}) {
    const fs::path root = fs::path(IMGSEL_SOURCE_DIR) / "tests/fuzz" / folder;
    for (const fs::directory_entry& dir : fs::directory_iterator(root)) {
      EXPECT_NE(FindEntryPoint(dir.path().filename().string()), nullptr) << dir.path();
    }
  }
}

}  // namespace
}  // namespace imgsel::fuzz
