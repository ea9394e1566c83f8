// Run plans (see plan.hpp). Estimates, stated as such; the memory figures are what the
// driver and the CPU backend allocate, checked against measurement in BENCHMARKS.md.
#include "underspec/run/plan.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <numeric>

#include "underspec/backends/backend.hpp"
#include "underspec/config/config_io.hpp"
#include "underspec/core/adam.hpp"
#include "underspec/outputs/outputs.hpp"
#include "underspec/run/time_estimate.hpp"

namespace underspec {
namespace {

std::string fmt(const char* f, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

double weights_of(const NetShape& s) {
  double w = 0;
  for (int l = 1; l <= s.n_layers; ++l) w += static_cast<double>(s.width[l - 1]) * s.width[l];
  return w;
}

}  // namespace

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return fmt(u == 0 ? "%.0f" : "%.1f", bytes) + " " + units[u];
}

bool device_uses_adam_tables(const std::string& device) {
  std::string why;
  return device == "cuda" || (device == "auto" && cuda_backend_available(&why));
}

namespace {

// Every run lists the whole sweep's replicas (sizeof(ReplicaSpec) each); the result rows,
// pending checkpoint records and the statistics' copies are its shard's (`held`): ~520 bytes a
// replica in all, measured (60k-180k MLP replicas), rounded up. (1.8M replicas: 637 MB peak;
// shard 1 of 1000 of them: 50 MB.) The cells (a config each, ~1 KiB with its axis values)
// are the whole sweep's too.
double rows_bytes(double all, double held, std::size_t cells) {
  return all * static_cast<double>(sizeof(ReplicaSpec)) + held * 640.0 + 1024.0 * static_cast<double>(cells);
}

// After training, each thread of the statistics holds a bootstrap's scratch for one group
// (bootstrap_resamples: the reference's counts and ranks, 24 B a value, the lanes' byte
// counts, 16, and Spearman's interleaved ranks, 64): 10^6 replicas a group, ~100 MiB each.
double bootstrap_scratch_bytes(const ExperimentConfig& c) {
  double most = 0;
  for (ModelKind model : c.sweep.models) most = std::max(most, 104.0 * static_cast<double>(c.sweep.seeds_of(model)));
  return most;
}

// The process itself (~75 MiB measured: libraries, the CUDA runtime's reservations) and,
// with --save-params, parameters in flight: the backend's last batch, the records waiting
// for a segment (up to kCheckpointBufferBytes plus one batch), the segment serialised, then
// read back (measured, 7500-15000 MLP replicas: 120-165 MiB in all, flat in the replicas).
double base_bytes(bool save_params) { return 96.0 * (1 << 20) + (save_params ? 5.0 * kCheckpointBufferBytes : 0.0); }

}  // namespace

MemoryEstimate estimate_merge_memory(const ExperimentConfig& config, const std::vector<Cell>& cells, int threads,
                                     bool save_params) {
  if (threads <= 0) threads = omp_get_max_threads();
  const auto all = static_cast<double>(replica_count(config));
  double per_thread = 0;
  for (const Cell& cell : cells) per_thread = std::max(per_thread, bootstrap_scratch_bytes(cell.config));
  return {rows_bytes(all, all, cells.size()) + per_thread * threads + base_bytes(save_params),
          "sweep.seeds or sweep.grid"};
}

MemoryEstimate estimate_host_memory(const ExperimentConfig& config, const std::vector<Cell>& cells, int threads,
                                    bool save_params, std::uint64_t shard_replicas, bool adam_tables) {
  if (threads <= 0) threads = omp_get_max_threads();
  const auto all = static_cast<double>(replica_count(config));
  const double held = shard_replicas > 0 ? std::min(all, static_cast<double>(shard_replicas)) : all;
  const double replicas = rows_bytes(all, held, cells.size());
  double per_thread = 0;
  std::vector<double> cell_datasets;  // bytes of each cell's test sets and training sets
  for (const Cell& cell : cells) {
    const ExperimentConfig& c = cell.config;
    const double k = static_cast<double>(c.data.stress_factors.size());
    const double train_sets = c.data.per_replica ? 0.0 : static_cast<double>(c.sweep.regimes.size());
    cell_datasets.push_back(
        16.0 * (static_cast<double>(c.data.n_test) * (2 + k) + static_cast<double>(c.data.n_train) * train_sets));
    // Per thread: a per-replica training set, the Adam/StepLR table of one training (CUDA
    // only), the trainer's workspace (TrainWorkspace: parameters, gradients, moments, a batch's
    // activations and errors, and the transposed weights, width^2) and two copies of the
    // result's parameters (the one returned, the one the driver's sink makes).
    const double adam =
        adam_tables ? static_cast<double>(sizeof(AdamStep)) * static_cast<double>(replica_steps(c)) : 0.0;
    double workspace = 0;
    for (ModelKind model : c.sweep.models) {
      const NetShape shape = net_shape(c, model);
      const double params = param_count(shape), width = max_width(shape), batch = c.train.batch_size;
      double activations = 0;
      for (int l = 0; l <= shape.n_layers; ++l) activations += batch * shape.width[l];
      workspace = std::max(workspace, 4.0 * (6.0 * params + batch * (2.0 * width + 1.0) + width * width + activations));
    }
    per_thread = std::max(per_thread,
                          (c.data.per_replica ? 16.0 * static_cast<double>(c.data.n_train) : 0.0) + adam + workspace);
    per_thread = std::max(per_thread, bootstrap_scratch_bytes(c));
  }
  // Datasets are made for the cells of the replicas trained: a shard's range of `held`
  // replicas touches at most held / (replicas per cell) + 1 cells (every cell has as many).
  std::size_t touched = cell_datasets.size();
  if (held < all && !cells.empty()) {
    const double per_cell = all / static_cast<double>(cells.size());
    touched = std::min(touched, static_cast<std::size_t>(std::ceil(held / per_cell)) + 1);
  }
  std::partial_sort(cell_datasets.begin(), cell_datasets.begin() + static_cast<std::ptrdiff_t>(touched),
                    cell_datasets.end(), std::greater<>());
  const double datasets =
      std::accumulate(cell_datasets.begin(), cell_datasets.begin() + static_cast<std::ptrdiff_t>(touched), 0.0);
  const double threads_bytes = per_thread * threads;
  MemoryEstimate e{replicas + datasets + threads_bytes + base_bytes(save_params), "sweep.seeds or sweep.grid"};
  if (datasets > replicas && datasets >= threads_bytes) e.dominant_key = "data.n_train or data.n_test";
  if (threads_bytes > replicas && threads_bytes > datasets)
    e.dominant_key = config.data.per_replica ? "data.n_train or data.per_replica" : "train.epochs or train.batch_size";
  return e;
}

// Bytes on disk, measured on outputs of small and large sweeps (3 to 3000 replicas) and
// rounded up: a replicas.csv row ~120-170 B, a stress.csv row ~37 B, a checkpoint record ~56
// B plus the parameters it keeps; per group ~1.3 KiB of summary.csv and ~3.5 KiB of
// summary.json. The report embeds each plot twice (plots/*.svg and inline), and draws what
// python/underspec/report.py caps: per grid cell drawn (the first MAX_CELL_PANELS = 6) ~240
// KiB of panels, ~350 KiB more with stress factors, and up to ~800 B per point of those
// cells' replicas (points capped per panel and box); grid_spread a point per group and axis
// up to MAX_SPREAD_CELLS = 60 cells, else one per grid value and (model, regime); and the
// summary and comparisons tables, at most MAX_TABLE_ROWS = 100 rows each (measured: 1 to
// 2000 cells, 36 to 12,000 replicas).
constexpr double kReplicaRowBytes = 200, kStressRowBytes = 48, kCheckpointRecordBytes = 64;
constexpr double kGroupBytes = 6 * 1024, kFixedBytes = 8 * 1024;
constexpr double kReportFixedBytes = 64 * 1024, kReportPointBytes = 800;
constexpr double kReportCellBytes = 240 * 1024, kReportStressCellBytes = 350 * 1024, kReportMaxCells = 6;
constexpr double kReportMaxScatterPoints = 2 * 4000, kReportMaxStripPointsPerGroup = 400;
constexpr double kReportSpreadPointBytes = 1500, kReportSpreadAxisBytes = 24 * 1024, kReportMaxSpreadCells = 60;
constexpr double kReportTableRowBytes = 600, kReportMaxTableRows = 100;
// Files take whole blocks; a run writes ~10 files and a checkpoint segment every few seconds.
constexpr double kBlockSlackBytes = 32 * 4096;

RunPlan plan_run(const Sweep& sweep, ShardRange range, bool save_params, bool report, const std::string& device,
                 int threads, const std::vector<bool>& done) {
  RunPlan p;
  p.cells = sweep.cells.size();
  p.replicas = range.end - range.begin;
  p.save_params = save_params;
  p.report = report;
  p.device = device;
  double max_params = 0, groups = 0, cells = 0, drawn_replicas = 0, drawn_groups = 0;
  bool stress = false;
  std::uint32_t last_group = UINT32_MAX, last_cell = UINT32_MAX;
  for (std::uint32_t id = range.begin; id < range.end; ++id) {
    const ReplicaSpec& r = sweep.replicas[id];
    const ExperimentConfig& c = sweep.config_of(r);
    const NetShape shape = net_shape(c, r.model);
    const double params = param_count(shape), weights = weights_of(shape);
    const auto steps = replica_steps(c);
    const double k = static_cast<double>(c.data.stress_factors.size());
    if (!done.empty() && done[id - range.begin]) {
      ++p.already_done;
    } else {
      p.replica_steps += steps;
      // 2 FLOP per weight and sample forward, 4 backward, ~10 per parameter for Adam.
      p.flops += 6 * weights * static_cast<double>(c.data.n_train) * c.train.epochs +
                 10 * params * static_cast<double>(steps) + 2 * weights * static_cast<double>(c.data.n_test) * (2 + k);
    }
    const bool kept = save_params || r.model == ModelKind::perceptron;
    // replicas.csv and stress.csv rows, the checkpoint record (and params.npy's row below).
    p.disk_bytes += kReplicaRowBytes + kStressRowBytes * k + kCheckpointRecordBytes + kStressRowBytes * k / 2 +
                    (kept ? 4 * params : 0);
    max_params = std::max(max_params, params);
    const std::uint32_t group =
        (r.cell * 4u + static_cast<std::uint32_t>(r.model)) * 4u + static_cast<std::uint32_t>(r.regime);
    if (r.cell != last_cell) ++cells;
    if (group != last_group) {  // replicas of a group (and of a cell) are contiguous
      ++groups;
      if (cells <= kReportMaxCells) ++drawn_groups;
    }
    if (cells <= kReportMaxCells) ++drawn_replicas;  // in the per-cell figures
    last_group = group;
    last_cell = r.cell;
    stress = stress || k > 0;
  }
  if (save_params) p.disk_bytes += 4 * max_params * static_cast<double>(p.replicas);  // params.npy (padded rows)
  p.disk_bytes += kGroupBytes * groups + kFixedBytes + kBlockSlackBytes;
  if (report) {
    const double drawn_cells = std::min(cells, kReportMaxCells);
    const double points = std::min(drawn_replicas, kReportMaxScatterPoints * drawn_cells) +
                          std::min(drawn_replicas, kReportMaxStripPointsPerGroup * drawn_groups);
    const auto& grid = sweep.config.sweep.grid;
    double spread_points = 0;
    for (const GridAxis& axis : grid)
      spread_points += cells <= kReportMaxSpreadCells
                           ? groups
                           : static_cast<double>(axis.values.size()) * std::ceil(groups / std::max(cells, 1.0));
    p.disk_bytes += kReportFixedBytes + kReportPointBytes * points +
                    drawn_cells * (kReportCellBytes + (stress ? kReportStressCellBytes : 0)) +
                    kReportSpreadAxisBytes * static_cast<double>(grid.size()) +
                    kReportSpreadPointBytes * spread_points +
                    kReportTableRowBytes * 2 * std::min(groups, kReportMaxTableRows);
  }
  p.disk_bytes *= 1.25;  // the sizes above vary with the numbers' digits and the plots' content
  // The same estimate the driver checks against the memory available (one formula).
  p.host_bytes =
      estimate_host_memory(sweep.config, sweep.cells, threads, save_params, p.replicas, device_uses_adam_tables(device))
          .bytes;
  return p;
}

std::string describe_plan(const RunPlan& plan, const Sweep& sweep, const std::filesystem::path& dir,
                          const TimeEstimate* time) {
  std::string s = "underspec run --dry-run: nothing is trained or written\n";
  s += "  cells        " + std::to_string(plan.cells);
  if (!sweep.config.sweep.grid.empty()) {
    s += " (";
    for (std::size_t a = 0; a < sweep.config.sweep.grid.size(); ++a)
      s += (a ? " x " : "") + sweep.config.sweep.grid[a].key + ": " +
           std::to_string(sweep.config.sweep.grid[a].values.size());
    s += ")";
  }
  s += "\n  replicas     " + std::to_string(plan.replicas) + " of " + std::to_string(sweep.replicas.size());
  if (plan.already_done > 0)
    s += " (" + std::to_string(plan.already_done) + " already done in the checkpoint, " +
         std::to_string(plan.replicas - plan.already_done) + " to train)";
  s += "\n";
  s += "  work         " + fmt("%.3g", static_cast<double>(plan.replica_steps)) + " replica-steps, " +
       fmt("%.3g", plan.flops / 1e9) + " GFLOP\n";
  if (time) s += describe_time(*time);
  s += "  host memory  about " + format_bytes(plan.host_bytes) + "\n";
  s += plan.device_memory;
  s += "  disk         about " + format_bytes(plan.disk_bytes) +
       (plan.report ? " (outputs, checkpoint and report)\n" : " (outputs and checkpoint)\n");
  s += "  device       " + plan.device +
       " (cpu: replicas dealt one at a time to threads, results checkpointed every 5 s; cuda: chunks sized at run "
       "time to half the device's free memory)\n";
  s += "  output       " + dir.string() + "/\n";
  std::string axes;
  for (const GridAxis& a : sweep.config.sweep.grid) axes += "," + a.key;
  s += "    config.toml   the resolved config\n";
  s += "    replicas.csv  replica,cell" + axes +
       ",model,regime,seed,iid_rmse,ood_rmse,w_x1,w_x2,w_x3,bias,iid_rmse_expected,ood_rmse_expected,diverged\n";
  s += "    stress.csv    replica,factor,rmse,rmse_expected\n";
  s += "    summary.csv   cell" + axes +
       ",model,regime,replicas,diverged,iid_rmse_<stat>,ood_rmse_<stat>[,stress<k>_...],<intervals, spread, "
       "weights>\n";
  s += "    comparisons.csv  cell" + axes + ",model,remedy,baseline,... (each remedy against its baseline)\n";
  s += "    summary.json  per (cell, model, regime) group statistics and run metadata\n";
  if (plan.save_params) s += "    params.npy    float32 [replicas, max parameters], NaN-padded rows\n";
  s += "    checkpoint/   finished replicas while the run goes on (for --resume and merge)\n";
  if (plan.report) {
    s += "    report.html   the report (self-contained: tables and figures)\n";
    s += "    plots/        the report's figures, one SVG each\n";
  }
  return s;
}

}  // namespace underspec
