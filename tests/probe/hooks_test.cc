// Operator hooks: good ones contribute features; hanging, failing, garbage-
// printing and flooding ones are skipped with a warning that names them, and
// leave no process behind.
#include "probe/hooks.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "probe/probe.h"

namespace imgsel::probe {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

class HooksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/hooksXXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  void Write(const std::string& name, const std::string& body, mode_t mode = 0755) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << body;
    ::chmod(path.c_str(), mode);
  }

  HookResults Run(absl::Duration timeout = absl::Seconds(5), size_t cap = 64 << 10) {
    HookOptions options;
    options.dir = dir_;
    options.timeout = timeout;
    options.output_cap = cap;
    return RunHooks(options);
  }

  // Whether a process is gone (or a zombie nobody will run again). SIGKILL to
  // a process that is not our child lands asynchronously: allow it to arrive.
  static bool Gone(pid_t pid) {
    for (int i = 0; i < 500; ++i) {
      if (GoneNow(pid)) return true;
      ::usleep(10000);
    }
    return false;
  }
  static bool GoneNow(pid_t pid) {
    if (::kill(pid, 0) != 0) return true;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    size_t paren = line.rfind(')');
    return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
  }

  pid_t ReadPid(const std::string& file) {
    std::ifstream in(dir_ + "/" + file);
    std::string s;
    in >> s;
    int pid = 0;
    return absl::SimpleAtoi(s, &pid) ? pid : 0;
  }

  std::string dir_;
};

TEST_F(HooksTest, GoodHooksGiveFeatures) {
  Write("10-gpu",
        "#!/bin/sh\necho '# detected by 10-gpu'\necho vendor.example/gpu=a100\n"
        "echo sriov\n");
  Write("20-fpga",
        "#!/bin/sh\nprintf 'vendor.example/fpga=true\\n\\nvendor.example/gpu=h100\\n'\n");
  Write("README", "not a hook", 0644);
  Write(".hidden", "#!/bin/sh\necho hidden=1\n");
  HookResults r = Run();
  EXPECT_THAT(r.features, ElementsAre(Pair("sriov", "true"), Pair("vendor.example/fpga", "true"),
                                      Pair("vendor.example/gpu", "h100")));
  EXPECT_THAT(r.warnings, ElementsAre(HasSubstr("README: not executable")));
}

TEST_F(HooksTest, HangingHookIsKilledWithItsChildren) {
  // The hook starts a grandchild in its process group and waits for it.
  Write("hang", absl::StrCat("#!/bin/sh\necho $$ > ", dir_, "/hook.pid\nsleep 1000 &\necho $! > ",
                             dir_, "/child.pid\nwait\n"));
  Write("ok", "#!/bin/sh\necho fine=yes\n");
  HookResults r = Run(absl::Milliseconds(300));
  EXPECT_THAT(r.features, ElementsAre(Pair("fine", "yes")));
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_THAT(r.warnings[0], HasSubstr(dir_ + "/hang"));
  EXPECT_THAT(r.warnings[0], HasSubstr("killed"));
  pid_t hook = ReadPid("hook.pid"), child = ReadPid("child.pid");
  ASSERT_GT(hook, 0);
  ASSERT_GT(child, 0);
  EXPECT_TRUE(Gone(hook));
  EXPECT_TRUE(Gone(child)) << "the hook's child " << child << " survived";
}

TEST_F(HooksTest, FailingHookIsSkipped) {
  Write("fail", "#!/bin/sh\necho half=done\nexit 3\n");
  HookResults r = Run();
  EXPECT_THAT(r.features, IsEmpty());
  EXPECT_THAT(r.warnings, ElementsAre(AllOf(HasSubstr("/fail"), HasSubstr("exit status 3"))));
}

TEST_F(HooksTest, GarbageOutputIsSkipped) {
  Write("garbage", "#!/bin/sh\necho good=1\nprintf '\\001\\002 not a feature\\n'\n");
  Write("badname", "#!/bin/sh\necho 'has space=1'\n");
  HookResults r = Run();
  EXPECT_THAT(r.features, IsEmpty());
  EXPECT_THAT(r.warnings, Contains(AllOf(HasSubstr("/garbage"), HasSubstr("bad output"))));
  EXPECT_THAT(r.warnings, Contains(AllOf(HasSubstr("/badname"), HasSubstr("line 1"))));
}

TEST_F(HooksTest, HugeOutputIsCutOff) {
  Write("flood", absl::StrCat("#!/bin/sh\necho $$ > ", dir_,
                              "/flood.pid\nwhile :; do echo a.b/c=ddddddddddddddddd; done\n"));
  HookResults r = Run(absl::Seconds(30), 4096);
  EXPECT_THAT(r.features, IsEmpty());
  EXPECT_THAT(r.warnings,
              ElementsAre(AllOf(HasSubstr("/flood"), HasSubstr("more than 4096 bytes"))));
  pid_t pid = ReadPid("flood.pid");
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(Gone(pid));
}

TEST_F(HooksTest, MissingDirectoryIsAWarning) {
  HookOptions options;
  options.dir = dir_ + "/nope";
  HookResults r = RunHooks(options);
  EXPECT_THAT(r.warnings, ElementsAre(HasSubstr("/nope")));
}

TEST_F(HooksTest, CountIsBounded) {
  for (int i = 0; i < 5; ++i)
    Write(absl::StrCat("h", i), absl::StrCat("#!/bin/sh\necho f", i, "\n"));
  HookOptions options;
  options.dir = dir_;
  options.max_hooks = 3;
  HookResults r = RunHooks(options);
  EXPECT_EQ(r.features.size(), 3u);
  EXPECT_THAT(r.warnings, ElementsAre(HasSubstr("2 skipped")));
}

TEST_F(HooksTest, ProbePutsHookOutputInLocalFeatureUnderDeclaredAttributes) {
  Write("hook", "#!/bin/sh\necho vendor.example/a=hook\necho vendor.example/b=hook\n");
  ProbeOptions options;
  options.root = std::string(IMGSEL_PROBE_FIXTURES) + "/no-config";
  options.use_cpuid = false;
  options.use_hwloc = false;
  options.hooks_dir = dir_;
  options.declared_attributes = {{"vendor.example/b", "config"}};
  auto result = ProbeHost(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->profile.nfd.attributes.at("local.feature"),
              ElementsAre(Pair("vendor.example/a", "hook"), Pair("vendor.example/b", "config")));
}

TEST(FeatureNames, NfdRules) {
  struct Case {
    const char* name;
    bool valid;
  } cases[] = {
      {"sriov", true},     {"vendor.example/fpga", true}, {"a.b-c_d", true},      {"", false},
      {"-leading", false}, {"has space", false},          {"UPPER.COM/x", false}, {"a/", false},
      {"/x", false},
  };
  for (const Case& c : cases) EXPECT_EQ(ValidFeatureName(c.name), c.valid) << c.name;
}

}  // namespace
}  // namespace imgsel::probe
