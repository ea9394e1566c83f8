// `underspec status DIR`: how far a Slurm sweep or a run directory has come (see slurm.hpp).
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <regex>
#include <sstream>

#include "underspec/cluster/slurm.hpp"
#include "underspec/config/config_io.hpp"
#include "underspec/run/checkpoint.hpp"
#include "underspec/run/run.hpp"
#include "underspec/run/run_dir.hpp"
#include "underspec/sweep/sweep.hpp"

namespace underspec {
namespace fs = std::filesystem;
namespace {

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// True when a process holds the run lock (an flock on checkpoint/state.json, see run.cpp).
// The probe holds a shared lock for an instant only.
bool is_running(const fs::path& run_dir) {
  const int fd = ::open((checkpoint_dir(run_dir) / "state.json").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return held;
}

// True while a merge or score holds the lock on its reserved, still empty output directory
// (see StagingDir in outputs/atomic_file.hpp): its outputs appear there all at once when it finishes.
bool is_being_written(const fs::path& out_dir) {
  const int fd = ::open(out_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return held;
}

bool present(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

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

// Slurm's view of an array job's tasks (task id -> JobState) and of single jobs, from
// `scontrol show job` (no accounting needed); empty when Slurm is not reachable.
std::map<std::string, std::string> slurm_states(const std::string& job_id) {
  std::map<std::string, std::string> states;
  if (job_id.empty()) return states;
  std::string output;
  // At most 10 s: an unreachable controller makes scontrol retry for much longer.
  if (run_capture({"timeout", "10", "scontrol", "-o", "show", "job", job_id}, output) != 0) return states;
  static const std::regex task(R"((?:^|\s)ArrayTaskId=(\S+))"), state(R"((?:^|\s)JobState=(\S+))");
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    std::smatch t, s;
    if (!std::regex_search(line, s, state)) continue;
    if (std::regex_search(line, t, task)) {
      const std::string ids = t[1].str();  // "3", or "0-3%2" / "1,3" for tasks still pending together
      static const std::regex range(R"((\d+)-(\d+))");
      std::string list = ids.substr(0, ids.find('%'));
      std::stringstream parts(list);
      for (std::string part; std::getline(parts, part, ',');) {
        std::smatch r;
        if (std::regex_match(part, r, range)) {
          for (long i = std::stol(r[1].str()); i <= std::stol(r[2].str()); ++i) states[std::to_string(i)] = s[1].str();
        } else {
          states[part] = s[1].str();
        }
      }
    } else {
      states[""] = s[1].str();
    }
  }
  return states;
}

bool is_failed_state(const std::string& s) {
  return s == "FAILED" || s == "TIMEOUT" || s == "NODE_FAIL" || s == "OUT_OF_MEMORY" || s == "BOOT_FAIL" ||
         s == "DEADLINE";
}

int plain_status(const fs::path& dir, std::ostream& out) {
  const std::optional<CheckpointState> state = read_checkpoint_state(dir);
  const bool finished = present(dir / "summary.json");
  if (!state) {
    if (!finished && is_being_written(dir)) {
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
  std::string resume = "underspec run --resume " + shell_path(dir.string());
  if (state->shard_count > 1)
    resume += " --shard " + std::to_string(state->shard_index) + "/" + std::to_string(state->shard_count);
  if (state->save_params) resume += " --save-params";
  const std::string what = finished          ? "finished"
                           : is_running(dir) ? "running"
                                             : "stopped (resume it with: " + resume + ")";
  out << "run " << dir.string();
  if (state->shard_count > 1) out << " (shard " << state->shard_index << "/" << state->shard_count << ")";
  out << ": " << what << ", " << (finished ? total : done) << " of " << total << " replicas done\n";
  return 0;
}

}  // namespace

int print_status(const fs::path& dir, std::ostream& out) {
  std::error_code ec;
  if (const std::string problem = path_problem(dir, true); !problem.empty())
    throw UsageError(dir.string() + " " + problem);
  if (!present(dir / "slurm.json")) return plain_status(dir, out);

  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(read_text(dir / "slurm.json"));
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(dir.string() + "/slurm.json: " + e.what());
  }
  SlurmOptions o;
  o.dir = fs::absolute(dir).lexically_normal();
  o.shards = meta.value("shards", 1u);
  o.binary = meta.value("binary", std::string("underspec"));
  const std::string array_job = meta.value("array_job", std::string()),
                    merge_job = meta.value("merge_job", std::string());
  const ExperimentConfig config = load_config(dir / "config.toml");
  const auto replicas = static_cast<std::uint32_t>(replica_count(config));
  const std::map<std::string, std::string> tasks = slurm_states(array_job), merge = slurm_states(merge_job);

  out << "slurm sweep " << o.dir.string() << ": " << o.shards << " shards, " << replicas << " replicas";
  if (!array_job.empty()) out << ", array job " << array_job << ", merge job " << merge_job;
  out << "\nshard  state        replicas\n";
  std::map<std::string, int> counts;
  std::uint64_t done_total = 0;
  std::vector<std::pair<std::uint32_t, std::string>> troubled;  // shard, state
  for (std::uint32_t i = 0; i < o.shards; ++i) {
    const fs::path shard = o.dir / "shards" / std::to_string(i);
    const ShardRange range = shard_range(replicas, i, o.shards);
    const std::uint64_t total = range.end - range.begin;
    std::uint64_t done = 0;
    std::string state;
    const auto slurm = tasks.find(std::to_string(i));
    const std::string slurm_state = slurm == tasks.end() ? "" : slurm->second;
    const std::string log = read_text(o.dir / "logs" / ("shard-" + std::to_string(i) + ".err"));
    bool readable = true;
    try {
      done = std::min(count_checkpoint_records(shard), total);
    } catch (const std::exception&) {
      readable = false;
    }
    if (present(shard / "summary.json")) {
      state = "done";
      done = total;
    } else if (is_running(shard) || slurm_state == "RUNNING" || slurm_state == "COMPLETING") {
      state = "running";
    } else if (is_failed_state(slurm_state)) {
      state = "failed";
    } else if (slurm_state == "CANCELLED") {
      state = "cancelled";
    } else if (slurm_state == "PENDING" || slurm_state == "REQUEUED" || slurm_state == "SUSPENDED") {
      state = "pending";
    } else if (!readable || log.find("underspec: error:") != std::string::npos) {
      state = "failed";
    } else if (present(checkpoint_dir(shard) / "state.json")) {
      state = "stopped";
    } else {
      state = "not started";
    }
    ++counts[state];
    done_total += done;
    char row[96];
    std::snprintf(row, sizeof row, "%-6u %-12s %llu/%llu", i, state.c_str(), static_cast<unsigned long long>(done),
                  static_cast<unsigned long long>(total));
    out << row << '\n';
    if (state == "failed" || state == "cancelled" || state == "stopped") troubled.emplace_back(i, state);
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
  const auto m = merge.find("");
  out << "merged: ";
  if (merged) {
    out << "yes, " << o.dir.string() << "/merged\n";
  } else {
    out << "no";
    if (is_being_written(o.dir / "merged")) out << " (a merge is running)";
    if (!merge_job.empty())
      out << " (merge job " << merge_job << ": " << (m == merge.end() ? "unknown to Slurm" : m->second) << ")";
    out << '\n';
  }
  const std::string merge_log = read_text(o.dir / "logs" / "merge.err");
  if (!merged &&
      ((m != merge.end() && is_failed_state(m->second)) || merge_log.find("underspec: error:") != std::string::npos))
    out << "\nthe merge failed; the end of " << (o.dir / "logs" / "merge.err").string() << ":\n"
        << tail_lines(merge_log, 10);
  for (const auto& [i, state] : troubled) {
    const fs::path log = o.dir / "logs" / ("shard-" + std::to_string(i) + ".err");
    out << "\nshard " << i << " " << state << "; the end of " << log.string() << ":\n"
        << tail_lines(read_text(log), 10);
    out << "resume it (it continues from its checkpoint):\n  sbatch --array=" << i << ' '
        << shell_quote(o.dir.string() + "/run.sbatch") << "\n  or, outside Slurm: " << slurm_shard_command(o, i)
        << '\n';
  }
  if (!troubled.empty() && !merged)
    out << "\nthen merge: sbatch --dependency=afterok:<new job ids> " << shell_quote(o.dir.string() + "/merge.sbatch")
        << "\n  or: " << shell_quote(o.binary.string()) << " merge " << shell_quote(o.dir.string() + "/shards/")
        << "{0.." << (o.shards - 1) << "} --out " << shell_quote(o.dir.string() + "/merged") << '\n';
  return 0;
}

}  // namespace underspec
