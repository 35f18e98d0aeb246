#include "probe/hooks.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "probe/setting_lines.h"

extern char** environ;

namespace imgsel::probe {
namespace {

constexpr size_t kMaxValueBytes = 1024;

bool ValidNamePart(absl::string_view s) {
  if (s.empty() || s.size() > 63 || !absl::ascii_isalnum(static_cast<unsigned char>(s[0]))) {
    return false;
  }
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

bool ValidPrefix(absl::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (absl::string_view label : absl::StrSplit(s, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      if (!(absl::ascii_islower(static_cast<unsigned char>(c)) ||
            absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-')) {
        return false;
      }
    }
  }
  return true;
}

bool ValidValue(absl::string_view v) {
  if (v.size() > kMaxValueBytes) return false;
  for (unsigned char c : v) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

struct Running {
  std::string name;
  pid_t pid = -1;
  int fd = -1;  // read end of the hook's stdout; -1 once closed
  absl::Time deadline;
  std::string output;
  bool reaped = false;
  int status = 0;
  std::string failure;  // why the hook is skipped; empty while it is fine
};

void KillGroup(Running& r) {
  ::kill(-r.pid, SIGKILL);
  if (r.fd >= 0) {
    ::close(r.fd);
    r.fd = -1;
  }
  if (!r.reaped) {
    while (::waitpid(r.pid, &r.status, 0) < 0 && errno == EINTR) {
    }
    r.reaped = true;
  }
}

absl::Status Spawn(const std::string& path, Running& r) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return absl::UnavailableError(std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  char* argv[] = {const_cast<char*>(path.c_str()), nullptr};
  int rc = ::posix_spawn(&r.pid, path.c_str(), &actions, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    return absl::UnavailableError(std::strerror(rc));
  }
  ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);
  r.fd = fds[0];
  return absl::OkStatus();
}

// Reads what is available; false at end of file.
bool Drain(Running& r, size_t cap) {
  char buf[8192];
  while (true) {
    ssize_t n = ::read(r.fd, buf, sizeof buf);
    if (n > 0) {
      if (r.output.size() + static_cast<size_t>(n) > cap) {
        r.failure = absl::StrCat("printed more than ", cap, " bytes; killed");
        KillGroup(r);
        return false;
      }
      r.output.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return true;
    return false;
  }
}

}  // namespace

bool ValidFeatureName(absl::string_view name) {
  size_t slash = name.find('/');
  if (slash == absl::string_view::npos) return ValidNamePart(name);
  return ValidPrefix(name.substr(0, slash)) && ValidNamePart(name.substr(slash + 1));
}

absl::StatusOr<std::map<std::string, std::string>> ParseLocalFeatures(absl::string_view text) {
  return ParseSettingLines(
      text, [](absl::string_view line) -> absl::StatusOr<std::pair<std::string, std::string>> {
        size_t eq = line.find('=');
        absl::string_view name = line.substr(0, eq);
        absl::string_view value = eq == absl::string_view::npos ? "true" : line.substr(eq + 1);
        if (!ValidFeatureName(name)) return absl::InvalidArgumentError("not a feature name");
        if (!ValidValue(value)) {
          return absl::InvalidArgumentError("value has control characters or is too long");
        }
        return std::make_pair(std::string(name), std::string(value));
      });
}

HookResults RunHooks(const HookOptions& options) {
  HookResults results;
  if (options.dir.empty()) return results;
  DIR* dir = ::opendir(options.dir.c_str());
  if (dir == nullptr) {
    results.warnings.push_back(
        absl::StrCat("hooks directory ", options.dir, ": ", std::strerror(errno)));
    return results;
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    names.emplace_back(e->d_name);
    if (names.size() > 4 * options.max_hooks + 64) break;  // bound a huge directory
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());

  std::vector<Running> running;
  size_t too_many = 0;
  for (const std::string& name : names) {
    std::string path = absl::StrCat(options.dir, "/", name);
    struct stat st;
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (::access(path.c_str(), X_OK) != 0) {
      results.warnings.push_back(absl::StrCat("hook ", path, ": not executable; skipped"));
      continue;
    }
    if (running.size() == options.max_hooks) {
      ++too_many;
      continue;
    }
    Running r;
    r.name = path;
    r.deadline = absl::Now() + options.timeout;
    if (absl::Status s = Spawn(path, r); !s.ok()) {
      results.warnings.push_back(
          absl::StrCat("hook ", path, ": cannot run: ", s.message(), "; skipped"));
      continue;
    }
    running.push_back(std::move(r));
  }
  if (too_many > 0) {
    results.warnings.push_back(absl::StrCat("hooks directory ", options.dir, ": more than ",
                                            options.max_hooks, " hooks; ", too_many, " skipped"));
  }

  while (true) {
    std::vector<pollfd> pfds;
    std::vector<Running*> owners;
    absl::Time now = absl::Now();
    absl::Time next = absl::InfiniteFuture();
    bool pending = false;
    for (Running& r : running) {
      if (r.reaped && r.fd < 0) continue;
      if (now >= r.deadline) {
        r.failure =
            absl::StrCat("still running after ", absl::FormatDuration(options.timeout), "; killed");
        KillGroup(r);
        continue;
      }
      if (!r.reaped && r.fd < 0) {
        // Output closed; the process may still be exiting.
        if (::waitpid(r.pid, &r.status, WNOHANG) == r.pid) {
          r.reaped = true;
          continue;
        }
      }
      pending = true;
      next = std::min(next, r.deadline);
      if (r.fd >= 0) {
        pfds.push_back(pollfd{r.fd, POLLIN, 0});
        owners.push_back(&r);
      } else {
        next = std::min(next, now + absl::Milliseconds(5));
      }
    }
    if (!pending) break;
    int wait_ms = static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(next - now) + 1));
    int n = ::poll(pfds.data(), pfds.size(), wait_ms);
    if (n < 0 && errno != EINTR) break;
    for (size_t i = 0; n > 0 && i < pfds.size(); ++i) {
      if (pfds[i].revents == 0) continue;
      Running& r = *owners[i];
      if (!Drain(r, options.output_cap) && r.fd >= 0) {
        ::close(r.fd);
        r.fd = -1;
      }
    }
  }
  for (Running& r : running) {
    if (!r.reaped) KillGroup(r);  // poll failed: do not leave anything behind
  }

  for (Running& r : running) {
    if (r.failure.empty()) {
      if (WIFSIGNALED(r.status)) {
        r.failure = absl::StrCat("killed by signal ", WTERMSIG(r.status));
      } else if (WIFEXITED(r.status) && WEXITSTATUS(r.status) != 0) {
        r.failure = absl::StrCat("exit status ", WEXITSTATUS(r.status));
      }
    }
    if (r.failure.empty()) {
      auto parsed = ParseLocalFeatures(r.output);
      if (parsed.ok()) {
        for (auto& [k, v] : *parsed) results.features[k] = std::move(v);
        results.ran.push_back(r.name);
        continue;
      }
      r.failure = absl::StrCat("bad output: ", parsed.status().message());
    }
    results.warnings.push_back(absl::StrCat("hook ", r.name, ": ", r.failure, "; skipped"));
  }
  return results;
}

}  // namespace imgsel::probe
