#include "plugin/sockets.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

namespace imgsel::plugin {
namespace {

class SocketsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imgseld-sock-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A listening socket at `path`; closed (but not unlinked) when `keep` is false.
  int Listen(const std::string& path, bool keep) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(fd, 1), 0);
    if (!keep) {
      close(fd);
      return -1;
    }
    return fd;
  }

  std::string dir_;
};

TEST_F(SocketsTest, CreatesTheDirectory) {
  const std::string path = dir_ + "/run/imgsel/cri.sock";
  ASSERT_TRUE(PrepareSocketPath(path).ok());
  EXPECT_TRUE(std::filesystem::is_directory(dir_ + "/run/imgsel"));
}

TEST_F(SocketsTest, ReplacesAStaleSocket) {
  const std::string path = dir_ + "/stale.sock";
  Listen(path, false);
  ASSERT_TRUE(std::filesystem::exists(path));
  ASSERT_TRUE(PrepareSocketPath(path).ok());
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(SocketsTest, RefusesALiveSocket) {
  const std::string path = dir_ + "/live.sock";
  int fd = Listen(path, true);
  absl::Status s = PrepareSocketPath(path);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  EXPECT_TRUE(std::filesystem::exists(path));
  close(fd);
}

TEST_F(SocketsTest, RefusesOtherFiles) {
  const std::string path = dir_ + "/file";
  std::ofstream(path) << "x";
  EXPECT_EQ(PrepareSocketPath(path).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(std::filesystem::exists(path));
  EXPECT_FALSE(PrepareSocketPath(dir_ + "/" + std::string(200, 'x')).ok());
}

TEST_F(SocketsTest, SocketModeIsOwnerAndGroup) {
  const std::string path = dir_ + "/mode.sock";
  int fd = Listen(path, true);
  ASSERT_TRUE(RestrictSocketMode(path).ok());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660);
  close(fd);
}

TEST_F(SocketsTest, ActivatedSocketsByNameThenPath) {
  std::vector<ActivatedSocket> sockets = {{3, "", "/run/imgsel/imgsel.sock"},
                                          {4, "cri", "/somewhere/else.sock"}};
  EXPECT_EQ(FindActivatedSocket(sockets, "cri", "/run/imgsel/cri.sock"), 4);
  EXPECT_EQ(FindActivatedSocket(sockets, "selector", "/run/imgsel/imgsel.sock"), 3);
  EXPECT_EQ(FindActivatedSocket(sockets, "selector", "/other.sock"), -1);
}

TEST_F(SocketsTest, ActivationForAnotherProcessIsIgnored) {
  setenv("LISTEN_PID", "1", 1);
  setenv("LISTEN_FDS", "2", 1);
  EXPECT_TRUE(TakeActivatedSockets().empty());
  EXPECT_EQ(getenv("LISTEN_FDS"), nullptr);  // not passed on to children
}

}  // namespace
}  // namespace imgsel::plugin
