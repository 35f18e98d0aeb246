// imgsel: select, probe, validate, attach, matrix.
#include <cstdio>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"imgsel: pick the best entry of an OCI image index for this host"};
  app.set_version_flag("--version", "imgsel " IMGSEL_VERSION);
  app.require_subcommand(1);
  int exit_code = 0;
  imgsel::cli::AddSelectCommand(app, exit_code);
#ifdef IMGSEL_HAVE_PROBE_COMMAND
  imgsel::cli::AddProbeCommand(app, exit_code);
#endif
#ifdef IMGSEL_HAVE_VALIDATE_COMMAND
  imgsel::cli::AddValidateCommand(app, exit_code);
#endif
#ifdef IMGSEL_HAVE_ATTACH_COMMAND
  imgsel::cli::AddAttachCommand(app, exit_code);
#endif
#ifdef IMGSEL_HAVE_MATRIX_COMMAND
  imgsel::cli::AddMatrixCommand(app, exit_code);
#endif
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
  return exit_code;
}
