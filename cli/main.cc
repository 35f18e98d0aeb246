// imgsel: select, probe, validate, attach, matrix.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "cli/commands.h"

// sysexits.h's EX_IOERR: the command ran, its output was lost.
constexpr int kExitOutputFailed = 74;

int main(int argc, char** argv) {
  CLI::App app{"imgsel: pick the best entry of an OCI image index for this host"};
  app.set_version_flag("--version", "imgsel " IMGSEL_VERSION);
  app.require_subcommand(1);
  int exit_code = 0;
  imgsel::cli::AddSelectCommand(app, exit_code);
  imgsel::cli::AddProbeCommand(app, exit_code);
  imgsel::cli::AddValidateCommand(app, exit_code);
  imgsel::cli::AddAttachCommand(app, exit_code);
  imgsel::cli::AddMatrixCommand(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;  // usage errors are "bad input"
  } catch (const std::exception& e) {
    // Modules return statuses; reaching here is a bug, reported plainly
    // rather than as an abort.
    std::fprintf(stderr, "imgsel: internal error: %s\n", e.what());
    return 70;
  }
  // An answer that did not reach its reader is a failure, whatever the
  // command decided: `imgsel select -o json > /dev/full` must not exit 0.
  std::cout.flush();
  errno = 0;
  const bool flushed = std::fflush(stdout) == 0;
  if (!std::cout || !flushed || std::ferror(stdout)) {
    const int err = errno;
    std::fprintf(stderr, "imgsel: writing the output failed: %s\n",
                 err != 0 ? std::strerror(err) : "write error");
    return kExitOutputFailed;
  }
  return exit_code;
}
