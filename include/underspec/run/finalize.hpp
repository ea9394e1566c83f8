// The last step of a run, a resume or a merge: statistics, output files, params.npy, and
// the table on stdout. Everything is derived from the rows (sorted by id), so any way of
// arriving at the same rows gives the same bytes.
#pragma once

#include <filesystem>
#include <functional>
#include <iosfwd>
#include <vector>

#include "underspec/outputs/outputs.hpp"
#include "underspec/run/stop_signals.hpp"

namespace underspec {

// `rows` are the replicas [rows.front().id, rows.back().id] in id order. With
// `param_sources`, params.npy is assembled from those directories' checkpoints: one row per
// replica (row k = replica rows[k].id), max parameter count columns, NaN-padded.
// Diverged replicas are warned about on `err` (naming their groups). Returns the exit
// status: 0, or 1 when every replica diverged (the outputs are written all the same). With
// `report`, the report is drawn after the outputs and before those warnings, so that an
// error line is the last thing on stderr. With `publish`, it is called once the output files are
// complete and returns where they now are (merge and score move them into place): the table
// and the report name that directory. With `signals`, a stop request is honoured between
// groups of the statistics (Interrupted is thrown; nothing is published) and during the
// report (the outputs are complete: the report is left out, and 128 + signal returned).
int finalize_run(const std::filesystem::path& dir, const Sweep& sweep, std::vector<ReplicaResult> rows,
                 const RunInfo& info, const std::vector<std::filesystem::path>& param_sources, bool report,
                 std::ostream& out, std::ostream& err, const std::function<std::filesystem::path()>& publish = {},
                 const StopSignals* signals = nullptr);

}  // namespace underspec
