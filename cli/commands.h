// The imgsel command line: one file per subcommand, each registering itself
// on the CLI11 app through one Add*Command function. A subcommand's callback
// stores its exit status in `exit_code`:
//   0 success, 1 a negative answer (nothing fits, spec invalid), 2 bad input
//   or usage (message on stderr naming the file and the place).
#pragma once

#include "CLI/CLI.hpp"

namespace imgsel::cli {

void AddSelectCommand(CLI::App& app, int& exit_code);
void AddProbeCommand(CLI::App& app, int& exit_code);
void AddValidateCommand(CLI::App& app, int& exit_code);
void AddAttachCommand(CLI::App& app, int& exit_code);
void AddMatrixCommand(CLI::App& app, int& exit_code);

}  // namespace imgsel::cli
