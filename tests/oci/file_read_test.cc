// The one bounded reader: what it returns at, over and around its limit,
// and the errors a user sees for a path that is not a readable file.
#include "oci/file_read.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imgsel {
namespace {

using ::testing::HasSubstr;

class ReadFileBoundedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imgsel_file_read_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const std::string& f : files_) std::remove(f.c_str());
    rmdir(dir_.c_str());
  }
  std::string Write(const std::string& name, const std::string& contents) {
    std::string path = absl::StrCat(dir_, "/", name);
    std::ofstream(path, std::ios::binary) << contents;
    files_.push_back(path);
    return path;
  }
  std::string dir_;
  std::vector<std::string> files_;
};

TEST_F(ReadFileBoundedTest, ReadsUpToTheLimitAndRefusesOneByteMore) {
  const std::string path = Write("ten", "0123456789");
  const struct {
    size_t limit;
    bool ok;
  } cases[] = {{10, true}, {11, true}, {9, false}, {0, false}};
  for (const auto& c : cases) {
    auto read = ReadFileBounded(path, c.limit);
    EXPECT_EQ(read.ok(), c.ok) << "limit " << c.limit;
    if (read.ok()) {
      EXPECT_EQ(*read, "0123456789");
    } else {
      EXPECT_EQ(read.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(std::string(read.status().message()),
                  HasSubstr(absl::StrCat(path, ": larger than the limit of ", c.limit, " bytes")));
    }
  }
}

TEST_F(ReadFileBoundedTest, AnEmptyFileIsEmpty) {
  auto read = ReadFileBounded(Write("empty", ""), 0);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "");
}

TEST_F(ReadFileBoundedTest, ErrorsSayWhatAndWhere) {
  const std::string missing = absl::StrCat(dir_, "/missing.json");
  const struct {
    std::string path;
    absl::StatusCode code;
    std::string says;
  } cases[] = {
      {missing, absl::StatusCode::kNotFound, missing + ": cannot open"},
      {absl::StrCat(dir_, "/missing/below"), absl::StatusCode::kNotFound, "/missing/below"},
      {dir_, absl::StatusCode::kInvalidArgument, dir_ + ": is a directory, not a file"},
      {"/dev/zero", absl::StatusCode::kInvalidArgument,
       "/dev/zero: larger than the limit of 4096 bytes"},
  };
  for (const auto& c : cases) {
    for (FifoOpen fifo : {FifoOpen::kWaitForWriter, FifoOpen::kNoWait}) {
      auto read = ReadFileBounded(c.path, 4096, fifo);
      ASSERT_FALSE(read.ok()) << c.path;
      EXPECT_EQ(read.status().code(), c.code) << c.path;
      EXPECT_THAT(std::string(read.status().message()), HasSubstr(c.says));
    }
  }
}

// A FIFO under a probed root must not hang the probe: with no writer, the
// read ends at once (nothing to read).
TEST_F(ReadFileBoundedTest, NoWaitNeverBlocksOnAFifoWithoutAWriter) {
  const std::string path = absl::StrCat(dir_, "/fifo");
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  files_.push_back(path);
  auto read = ReadFileBounded(path, 4096, FifoOpen::kNoWait);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "");
}

}  // namespace
}  // namespace imgsel
