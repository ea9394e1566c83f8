// Final outputs (see finalize.hpp).
#include "underspec/run/finalize.hpp"

#include <algorithm>
#include <cmath>
#include <ostream>

#include "underspec/outputs/atomic_file.hpp"
#include "underspec/outputs/npy.hpp"
#include "underspec/outputs/shell_words.hpp"
#include "underspec/run/checkpoint.hpp"
#include "underspec/run/report.hpp"
#include "underspec/run/run_dir.hpp"
#include "underspec/stats/bootstrap.hpp"

namespace underspec {
namespace fs = std::filesystem;
namespace {

// Replicas from which the statistics take long enough to say so: ~5 s per 10^5 replicas on
// 2 cores (a 120,000-replica merge: 6.3 s; 1.8 million, extrapolated: a minute and a half).
constexpr std::size_t kLargeStatistics = 100000;

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

// Data keys whose values make the data's scale extreme in some cell (|value| >= 1e6, or a
// domain factor <= 1e-6, which makes x3 = y + N(0,1)/factor huge): float training then
// overflows whatever the learning rate, so blaming train.lr would mislead.
std::vector<std::string> extreme_data_keys(const Sweep& sweep) {
  constexpr double kLarge = 1e6;
  std::vector<std::string> keys;
  const auto note = [&](bool extreme, const char* key) {
    if (extreme && std::find(keys.begin(), keys.end(), key) == keys.end()) keys.emplace_back(key);
  };
  for (const Cell& cell : sweep.cells) {
    const DataConfig& d = cell.config.data;
    note(std::max(std::abs(d.coefficients[0]), std::abs(d.coefficients[1])) >= kLarge, "data.coefficients");
    note(std::abs(d.intercept) >= kLarge, "data.intercept");
    note(d.noise_std >= kLarge, "data.noise_std");
    note(d.train_factor <= 1 / kLarge, "data.train_factor");
    note(cell.config.augmentation.noise_std >= kLarge, "regime.augmentation.noise_std");
    note(cell.config.domain_randomization.factor_range[0] <= 1 / kLarge, "regime.domain_randomization.factor_range");
  }
  return keys;
}

// Why every replica may have diverged: the extreme data keys, else the usual suspect.
std::string divergence_hint(const Sweep& sweep) {
  const std::vector<std::string> keys = extreme_data_keys(sweep);
  if (keys.empty()) return "lower train.lr?";
  std::string names;
  for (const std::string& k : keys) names += (names.empty() ? "" : ", ") + k;
  return names + (keys.size() == 1 ? " looks" : " look") +
         " extreme: float32 training overflows at that scale; bring the data nearer 1";
}

}  // namespace

int finalize_run(const fs::path& written, const Sweep& sweep, std::vector<ReplicaResult> rows, const RunInfo& info,
                 const std::vector<fs::path>& param_sources, bool report, std::ostream& out, std::ostream& err,
                 const std::function<fs::path()>& publish, const StopSignals* signals) {
  if (!param_sources.empty()) write_params(written, sweep, rows, param_sources);
  if (rows.size() >= kLargeStatistics)
    err << "underspec: computing the statistics of " << rows.size() << " replicas (bootstrap intervals, "
        << kBootstrapResamples << " resamples each: seconds per 10^5 replicas)\n"
        << std::flush;
  RunRecord run{&sweep, std::move(rows), info};
  const std::vector<GroupSummary> groups = summarize_groups(
      run,
      [&] {
        if (signals) throw_if_stopped(*signals);
      },
      signals ? &signals->requested() : nullptr);
  write_outputs(written, run, groups);
  const fs::path dir = publish ? publish() : written;
  out << summary_table(run, groups, dir) << std::flush;
  if (report) {
    report_after_run(dir, err, signals);
    if (signals && signals->requested().load()) {
      err << "underspec: stopped by signal " << signals->signal() << " while drawing the report; the outputs in "
          << dir.string() << " are complete; the report: underspec report " << shell_path(dir.string()) << '\n';
      return 128 + signals->signal();
    }
  }
  std::size_t diverged = 0;
  std::string names;
  for (const GroupSummary& g : groups) {
    if (g.diverged == 0) continue;
    diverged += static_cast<std::size_t>(g.diverged);
    names += (names.empty() ? "" : ", ") + group_label(sweep, g) + " (" + std::to_string(g.diverged) + "/" +
             std::to_string(g.diverged + g.iid_rmse.count) + ")";
  }
  if (diverged == 0) return 0;
  err << "underspec: warning: " << diverged << " of " << run.results.size()
      << " replicas diverged (non-finite parameters or RMSE; excluded from the statistics, see the diverged column "
         "of replicas.csv): "
      << names << '\n';
  if (diverged < run.results.size()) return 0;
  err << "underspec: error: every replica diverged; no statistic is defined (" << divergence_hint(sweep) << ")\n";
  return 1;
}

}  // namespace underspec
