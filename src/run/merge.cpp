// Merging shard directories (see merge.hpp).
#include "underspec/run/merge.hpp"

#include <ostream>

#include "underspec/config/config_io.hpp"
#include "underspec/outputs/atomic_file.hpp"
#include "underspec/outputs/staging_dir.hpp"
#include "underspec/run/checkpoint.hpp"
#include "underspec/run/finalize.hpp"
#include "underspec/run/plan.hpp"
#include "underspec/run/run_dir.hpp"
#include "underspec/run/run_info.hpp"

namespace underspec {
namespace fs = std::filesystem;
namespace {

// "3, 7-9, 12" for the first few ids where `flag` holds.
std::string id_ranges(const std::vector<std::uint32_t>& flags, std::uint32_t flag, std::size_t max_ranges = 8) {
  std::string s;
  std::size_t ranges = 0;
  for (std::size_t i = 0; i < flags.size(); ++i) {
    if (flags[i] != flag) continue;
    std::size_t j = i;
    while (j + 1 < flags.size() && flags[j + 1] == flag) ++j;
    if (ranges++ == max_ranges) return s + ", ...";
    s += (s.empty() ? "" : ", ") + std::to_string(i) + (j > i ? "-" + std::to_string(j) : "");
    i = j;
  }
  return s;
}

int merge_into(const std::vector<std::string>& dirs, const fs::path& out, const RunOptions& options,
               const StopSignals& signals, std::ostream& stdout_stream, std::ostream& err) {
  std::vector<RunDirectory> shards;
  for (const std::string& d : dirs) {
    if (const std::string problem = path_problem(d, true); !problem.empty())
      throw UsageError("merge: shard directory " + d + " " + problem);
    // Checked first: inspect_run_dir would call a run without one an occupied output directory.
    std::error_code ec;
    if (!fs::exists(fs::path(d) / "checkpoint" / "state.json", ec)) throw_no_checkpoint("merge", d);
    RunDirectory r = inspect_run_dir(d, true);
    if (!r.has_checkpoint) throw_no_checkpoint("merge", d);
    if (!shards.empty() && r.state.config_hash != shards.front().state.config_hash) {
      std::string keys;
      for (const std::string& k : differing_keys(shards.front().config, r.config))
        keys += (keys.empty() ? "" : ", ") + k;
      throw UsageError("merge: " + d + " comes from a different config than " + dirs.front() +
                       " (differing keys: " + (keys.empty() ? "config hash" : keys) + ")");
    }
    shards.push_back(std::move(r));
  }
  // Shards trained by different builds merge (their replicas are disjoint), but the results
  // are one build's only if their math is the same: said, not refused.
  for (const RunDirectory& s : shards)
    if (s.state.git_commit != shards.front().state.git_commit) {
      const auto build = [](const RunDirectory& d) {
        return d.path.string() + " (" + (d.state.git_commit.empty() ? "build not recorded" : d.state.git_commit) + ")";
      };
      err << "underspec: warning: merge: shards from different builds of underspec, e.g. " << build(shards.front())
          << " and " << build(s) << "\n";
      break;
    }
  const Sweep sweep = make_sweep(shards.front().config);
  const std::size_t total = sweep.replicas.size();
  // It holds every replica's row and computes the whole sweep's statistics (no datasets, no
  // training): checked as run checks its memory, before the rows are read (a merge job gets
  // the partition's default memory).
  const bool params =
      std::any_of(shards.begin(), shards.end(), [](const RunDirectory& s) { return s.state.save_params; });
  require_host_memory(estimate_merge_memory(sweep.config, sweep.cells, options.threads, params), true, "merge",
                      ", or merge where more memory is available");

  // Which shard holds each replica: 0 none, 1 + shard index, kTwice when two shards do. (Four
  // bytes, small beside the row: one byte saturated at 254 shards and hid overlaps past it.)
  constexpr std::uint32_t kTwice = UINT32_MAX;
  if (shards.size() >= kTwice) throw UsageError("merge: too many shard directories");
  std::vector<std::uint32_t> owner(total, 0);
  std::vector<ReplicaResult> rows(total);
  // The lowest replica found in two shards, and where. Checkpoints hold replicas in the order
  // they finished, so the first overlap met is not necessarily the lowest.
  std::size_t doubled_id = total;
  std::string doubled;
  for (std::size_t s = 0; s < shards.size(); ++s)
    for_each_checkpoint_record(shards[s].path, [&](ReplicaResult&& r) {
      throw_if_stopped(signals);
      if (r.id >= total)
        throw UsageError("merge: " + dirs[s] + " holds replica " + std::to_string(r.id) + " beyond the sweep");
      const auto tag = static_cast<std::uint32_t>(s + 1);
      if (owner[r.id] == tag) return;  // saved twice by one shard (resumed): identical
      if (owner[r.id] != 0) {
        if (r.id < doubled_id && owner[r.id] != kTwice) {  // (a third shard adds nothing new)
          doubled_id = r.id;
          doubled = "replica " + std::to_string(r.id) + " is in both " + dirs[owner[r.id] - 1u] + " and " + dirs[s];
        }
        owner[r.id] = kTwice;
        return;
      }
      owner[r.id] = tag;
      if (sweep.replicas[r.id].model != ModelKind::perceptron) r.params = std::vector<float>();  // frees it
      rows[r.id] = std::move(r);
    });
  if (!doubled.empty())
    throw UsageError("merge: shards overlap: " + doubled + " (replicas in two shards: " + id_ranges(owner, kTwice) +
                     ")");
  if (std::find(owner.begin(), owner.end(), 0) != owner.end()) {
    std::string incomplete;
    for (const RunDirectory& s : shards)
      if (!fs::exists(s.path / "summary.json")) incomplete.append(" ").append(s.path.string());
    throw UsageError("merge: replicas missing: " + id_ranges(owner, 0) +
                     (incomplete.empty() ? std::string(" (a shard not given?)")
                                         : " (unfinished shards:" + incomplete + "; resume them first)"));
  }

  std::vector<fs::path> param_sources;
  bool all_params = true;
  for (const RunDirectory& s : shards) {
    all_params = all_params && s.state.save_params;
    param_sources.push_back(s.path);
  }
  if (!all_params) param_sources.clear();
  if (!all_params &&
      std::any_of(shards.begin(), shards.end(), [](const RunDirectory& s) { return s.state.save_params; }))
    err << "underspec: merge: not every shard saved its parameters; no params.npy\n";

  CheckpointState state{shards.front().state.config_hash,  0,     1,     0,
                        static_cast<std::uint32_t>(total), total, false, git_commit()};
  require_new_output_dir(out, OutputUse::replace);  // must not exist or be empty
  // The merged outputs are a whole run's: refused up front when they would not fit, as run does.
  require_resources(plan_run(sweep, ShardRange{0, static_cast<std::uint32_t>(total)}, !param_sources.empty(),
                             options.report, "cpu", 1),
                    out);
  StagingDir staged(out);
  fs::path dir = staged.path();
  reserve_run_dir(dir, false, sweep.config, state);
  CheckpointWriter(dir).write_segment(rows);  // the merged run is itself a run directory
  throw_if_stopped(signals);
  RunInfo info{options.version,
               git_commit(),
               options.command_line,
               host_name(),
               utc_timestamp(std::chrono::system_clock::now()),
               "merge",
               {},
               0,
               0.0,
               "",
               ""};
  return finalize_run(
      dir, sweep, std::move(rows), info, param_sources, options.report, stdout_stream, err,
      [&] {
        throw_if_stopped(signals);
        const HoldSecondSignal hold;                    // no half-moved outputs
        staged.commit({"checkpoint", "summary.json"});  // last: they mark a run, and a finished one
        return staged.target();
      },
      &signals);
}

}  // namespace

int merge_runs(const std::vector<std::string>& dirs, const fs::path& out, const RunOptions& options,
               std::ostream& stdout_stream, std::ostream& err) {
  StopSignals signals;  // a stop removes what was staged (see StagingDir) and says so
  try {
    return merge_into(dirs, out, options, signals, stdout_stream, err);
  } catch (const Interrupted& stop) {
    return report_interrupted("merge", stop.signal, out, options.command_line, err);
  }
}

}  // namespace underspec
