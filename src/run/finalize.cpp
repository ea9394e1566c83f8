// Final outputs (see finalize.hpp).
#include "underspec/run/finalize.hpp"

#include <algorithm>
#include <ostream>

#include "underspec/outputs/atomic_file.hpp"
#include "underspec/outputs/npy.hpp"
#include "underspec/run/checkpoint.hpp"

namespace underspec {
namespace fs = std::filesystem;
namespace {

// params.npy, written beside under a temporary name and renamed when complete.
void write_params(const fs::path& dir, const Sweep& sweep, const std::vector<ReplicaResult>& rows,
                  const std::vector<fs::path>& sources) {
  if (rows.empty()) return;
  const std::uint32_t first = rows.front().id;
  std::uint64_t cols = 0;
  for (const ReplicaResult& r : rows) {
    const ReplicaSpec& spec = sweep.replicas[r.id];
    cols = std::max<std::uint64_t>(cols, param_count(net_shape(sweep.config_of(spec), spec.model)));
  }
  const fs::path tmp = dir / "params.npy.tmp";
  {
    NpyFloatMatrixFile npy(tmp, rows.size(), cols);
    std::vector<bool> written(rows.size(), false);
    for (const fs::path& source : sources)
      for_each_checkpoint_record(source, [&](ReplicaResult&& r) {
        if (r.id < first || r.id - first >= rows.size()) return;
        npy.write_row(r.id - first, r.params);
        written[r.id - first] = true;
      });
    if (std::find(written.begin(), written.end(), false) != written.end())
      throw OutputError(
          "params.npy: the checkpoint lacks the parameters of some replicas (started without --save-params?)");
    npy.close();
  }
  std::error_code ec;
  fs::rename(tmp, dir / "params.npy", ec);
  if (ec) throw OutputError("cannot rename into " + (dir / "params.npy").string() + ": " + ec.message());
}

}  // namespace

void finalize_run(const fs::path& dir, const Sweep& sweep, std::vector<ReplicaResult> rows, const RunInfo& info,
                  const std::vector<fs::path>& param_sources, std::ostream& out) {
  if (!param_sources.empty()) write_params(dir, sweep, rows, param_sources);
  RunRecord run{&sweep, std::move(rows), info};
  const std::vector<GroupSummary> groups = summarize_groups(run);
  write_outputs(dir, run, groups);
  out << summary_table(run, groups, dir) << std::flush;
}

}  // namespace underspec
