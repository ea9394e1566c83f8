// `underspec status DIR`: how far a Slurm sweep or a run directory has come (see slurm.hpp).
#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "underspec/cluster/slurm.hpp"
#include "underspec/cluster/slurm_queue.hpp"
#include "underspec/config/config_io.hpp"
#include "underspec/outputs/staging_dir.hpp"
#include "underspec/run/checkpoint.hpp"
#include "underspec/run/run.hpp"
#include "underspec/run/run_dir.hpp"
#include "underspec/sweep/sweep.hpp"

namespace underspec {
namespace fs = std::filesystem;
namespace {

// The last `n` lines of `text`, each indented.
std::string tail_lines(const std::string& text, std::size_t n) {
  std::size_t end = text.size();
  while (end > 0 && text[end - 1] == '\n') --end;
  std::size_t begin = end;
  for (std::size_t lines = 0; begin > 0; --begin)
    if (text[begin - 1] == '\n' && ++lines == n) break;
  std::string out;
  std::istringstream in(text.substr(begin, end - begin));
  for (std::string line; std::getline(in, line);) out += "    " + line + "\n";
  return out;
}

// Up to this many shards, status lists each on its own row.
constexpr std::size_t kShardRowsInFull = 20;

int plain_status(const fs::path& dir, std::ostream& out, const std::string& program) {
  const std::optional<CheckpointState> state = read_checkpoint_state(dir);
  const bool finished = present(dir / "summary.json");
  // (before the checkpoint: a commit cut short may have moved one out already)
  if (const std::string left = staging_leftover(dir); !finished && !left.empty() && !output_is_locked(dir)) {
    out << "run " << dir.string() << ": a merge or score that was killed left " << left
        << " there (no outputs yet); run that command again\n";
    return 0;
  }
  if (!state) {
    if (!finished && output_is_locked(dir)) {
      out << "run " << dir.string() << ": being written by a running merge or score (not finished yet)\n";
      return 0;
    }
    if (!finished) throw UsageError(dir.string() + " is neither an underspec run directory nor a Slurm sweep");
    const nlohmann::json j = nlohmann::json::parse(read_text(dir / "summary.json"));
    const auto n = j.value("replicas", std::uint64_t{0});
    out << "run " << dir.string() << ": finished (" << j.value("backend", std::string("?")) << "), " << n << " of " << n
        << " replicas\n";
    return 0;
  }
  const std::uint64_t total = state->end - state->begin;
  const std::uint64_t done = std::min(count_checkpoint_records(dir), total);
  std::string resume = program + " run --resume " + shell_path(dir.string());
  if (state->shard_count > 1)
    resume += " --shard " + std::to_string(state->shard_index) + "/" + std::to_string(state->shard_count);
  if (state->save_params) resume += " --save-params";
  const std::string what = finished             ? "finished"
                           : run_is_locked(dir) ? "running"
                                                : "stopped (resume it with: " + resume + ")";
  out << "run " << dir.string();
  if (state->shard_count > 1) out << " (shard " << state->shard_index << "/" << state->shard_count << ")";
  out << ": " << what << ", " << (finished ? total : done) << " of " << total << " replicas done\n";
  return 0;
}

}  // namespace

int print_status(const fs::path& dir, std::ostream& out, const std::string& program) {
  if (const std::string problem = path_problem(dir, true); !problem.empty())
    throw UsageError(dir.string() + " " + problem);
  if (!present(dir / "slurm.json")) return plain_status(dir, out, program);

  const SlurmRecord record = read_slurm_record(dir);
  SlurmOptions o;
  o.dir = fs::absolute(dir).lexically_normal();
  o.shards = record.shards;
  o.binary = record.binary;
  const std::string sweep = shell_path(o.dir.string());
  const ExperimentConfig config = load_config(dir / "config.toml");
  const auto replicas = static_cast<std::uint32_t>(replica_count(config));
  const SlurmQueueView view = query_slurm(record);
  const std::vector<ShardState> shards = shard_states(o.dir, record, view, replicas);

  out << "slurm sweep " << o.dir.string() << ": " << o.shards << (o.shards == 1 ? " shard, " : " shards, ") << replicas
      << (replicas == 1 ? " replica" : " replicas");
  if (!record.submissions.empty()) {
    std::string array_job;  // the latest (a round may submit a merge alone)
    for (const SlurmSubmission& s : record.submissions)
      if (!s.array_job.empty()) array_job = s.array_job;
    if (!array_job.empty()) out << ", array job " << array_job;
    if (!view.merge.id.empty()) out << ", merge job " << view.merge.id;
    if (record.submissions.size() > 1) out << " (" << record.submissions.size() << " submissions)";
  }
  if (!view.unreachable.empty())
    out << "\n(Slurm did not answer: " << view.unreachable << "; the states below come from the files only)";
  out << "\nshard  state        replicas\n";
  std::map<std::string, int> counts;
  std::uint64_t done_total = 0;
  std::vector<std::uint32_t> troubled;
  // Many shards: a run of neighbours that are all done, or all untouched and waiting (pending
  // for one reason, or not started), is one row "first-last", so the rows that need a look stand out.
  const bool collapse = shards.size() > kShardRowsInFull;
  const auto quiet = [&](const ShardState& s) {
    return (s.state == "done" || s.state == "pending" || s.state == "not started") &&
           (s.done == 0 || s.done == s.total);
  };
  for (std::uint32_t i = 0; i < shards.size();) {
    const ShardState& s = shards[i];
    std::uint32_t last = i;
    std::uint64_t done = s.done, total = s.total;
    while (collapse && quiet(s) && last + 1 < shards.size() && quiet(shards[last + 1]) &&
           shards[last + 1].state == s.state && shards[last + 1].job.reason == s.job.reason) {
      ++last;
      done += shards[last].done;
      total += shards[last].total;
    }
    const std::string ids = last == i ? std::to_string(i) : std::to_string(i) + "-" + std::to_string(last);
    char row[128];
    std::snprintf(row, sizeof row, "%-6s %-12s %llu/%llu", ids.c_str(), s.state.c_str(),
                  static_cast<unsigned long long>(done), static_cast<unsigned long long>(total));
    out << row;
    if (s.state == "pending" && !s.job.reason.empty()) out << "  (" << s.job.reason << ")";
    out << '\n';
    for (std::uint32_t k = i; k <= last; ++k) {
      ++counts[shards[k].state];
      done_total += shards[k].done;
      if (shards[k].state == "failed" || shards[k].state == "cancelled" || shards[k].state == "stopped")
        troubled.push_back(k);
    }
    i = last + 1;
  }
  out << "total: ";
  bool first = true;
  for (const char* s : {"done", "running", "pending", "failed", "cancelled", "stopped", "not started"}) {
    if (!counts.count(s)) continue;
    out << (first ? "" : ", ") << counts[s] << ' ' << s;
    first = false;
  }
  out << "; " << done_total << " of " << replicas << " replicas done\n";

  const bool merged = present(o.dir / "merged" / "summary.json");
  const bool merging = !merged && output_is_locked(o.dir / "merged");
  out << "merged: ";
  if (merged) {
    out << "yes, " << o.dir.string() << "/merged\n";
  } else {
    out << "no";
    if (merging) out << " (a merge is running)";
    if (!view.merge.id.empty())
      out << " (merge job " << view.merge.id << ": "
          << (view.merge.state.empty() ? "unknown to Slurm"
                                       : view.merge.state + (view.merge.reason.empty() ? "" : ", " + view.merge.reason))
          << ")";
    out << '\n';
  }
  // The latest merge's log only, and not while a merge is queued: merge.err is appended to by
  // every merge job, and an earlier one's error says nothing about the one that waits.
  const bool merge_live = is_live_state(view.merge.state);
  const std::string merge_log = latest_attempt(read_text(o.dir / "logs" / "merge.err"), kMergeLogHeader);
  if (!merged && !merge_live && !merging &&
      (is_failed_state(view.merge.state) || merge_log.find("underspec: error:") != std::string::npos))
    out << "\nthe merge failed; the end of " << (o.dir / "logs" / "merge.err").string() << ":\n"
        << tail_lines(merge_log, 10);
  if (merged) return 0;

  // What to do next. Log tails of the first few troubled shards; one command for them all.
  constexpr std::size_t kTailsShown = 3;
  for (std::size_t k = 0; k < troubled.size() && k < kTailsShown; ++k) {
    const std::uint32_t i = troubled[k];
    const fs::path log = o.dir / "logs" / ("shard-" + std::to_string(i) + ".err");
    const std::string text = read_text(log);
    std::error_code ec;
    out << "\nshard " << i << " " << shards[i].state;
    if (!fs::exists(log, ec))
      out << " (no log: it never started)\n";
    else if (text.empty())
      out << " (its log " << log.string() << " is empty)\n";
    else
      out << "; the end of " << log.string() << ":\n" << tail_lines(text, 10);
  }
  if (troubled.size() > kTailsShown) {
    const std::vector<std::uint32_t> rest(troubled.begin() + kTailsShown, troubled.end());
    out << "\n(and " << rest.size() << (rest.size() == 1 ? " more shard: " : " more shards: ") << task_list(rest)
        << ")\n";
  }
  const bool all_done = counts["done"] == static_cast<int>(shards.size());
  // Shards not started with nothing queued to start them: never submitted, or their tasks left
  // no trace (Slurm's record of the array gone).
  const bool stranded = counts["not started"] > 0 && view.live_arrays.empty();
  if (!troubled.empty() || stranded) {
    // The example is a shard that needs running: the first troubled one, else the first not started.
    std::uint32_t example = troubled.empty() ? 0 : troubled[0];
    if (troubled.empty())
      while (example + 1 < shards.size() && shards[example].state != "not started") ++example;
    out << "\nsubmit the unfinished shards (one array job; each continues from its checkpoint) and a merge after "
           "them:\n  underspec submit "
        << sweep << "\n  or, outside Slurm, e.g.: " << slurm_shard_command(o, example) << '\n';
  } else if (all_done && !merge_live && !merging) {
    out << "\nevery shard is done; merge them:\n  underspec submit " << sweep
        << "   (a merge job)\n  or: " << shell_quote(o.binary.string()) << " merge "
        << shell_quote(o.dir.string() + "/shards/") << "{0.." << (o.shards - 1) << "} --out "
        << shell_quote(o.dir.string() + "/merged") << '\n';
  }
  return 0;
}

}  // namespace underspec
