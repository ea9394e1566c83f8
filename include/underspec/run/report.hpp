// The HTML report of a run directory: `python3 -m underspec.report DIR` (python/underspec),
// run with PYTHONPATH pointing at the package when it is not installed. See README "Report".
#pragma once

#include <atomic>
#include <filesystem>
#include <iosfwd>
#include <string>

#include "underspec/run/stop_signals.hpp"

namespace underspec {

enum class ReportStatus {
  written,      // DIR/report.html and DIR/plots/*.svg are written
  unavailable,  // no python3 with pandas and matplotlib (or the package) was found
  failed,       // the generator ran and failed (its message, or the signal that killed it, went to stderr)
};

// The folder holding the `underspec` Python package to put on PYTHONPATH: beside the binary
// (`<bin>/../share/underspec/python`, `<bin>/../python`) or the source tree the binary was
// built from; empty when none is found (the package may then be installed).
std::filesystem::path report_python_path();

// Runs the generator on `dir`. `quiet`: it prints nothing on success (else the report's path
// on stdout). The interpreter is $UNDERSPEC_PYTHON, else `python3` on PATH, then
// /usr/bin/python3 when the first lacks pandas or matplotlib.
// `stop`: a stop flag (StopSignals): the generator is stopped when it is raised.
ReportStatus write_report(const std::filesystem::path& dir, bool quiet, const std::atomic<bool>* stop = nullptr);

// Why `underspec report DIR` cannot draw DIR's report (one line, naming DIR), or "" when it
// can: DIR holds no replicas.csv (not a finished run), or nothing can be created in it or in
// its plots/ (a run the user may read but not write). Bad input, checked before the generator runs.
std::string report_directory_problem(const std::filesystem::path& dir);

// One line (no newline): how to get the report when write_report said `unavailable`.
std::string report_unavailable_message(const std::filesystem::path& dir);

// The end of `run` / `merge`: writes the report, and on stderr either where it is, or one
// line on how to get it. Never throws and never changes the command's exit status. When
// `signals` saw a stop (Ctrl-C reaches the generator too), it says nothing: the caller does.
void report_after_run(const std::filesystem::path& dir, std::ostream& err, const StopSignals* signals = nullptr);

}  // namespace underspec
