// A Slurm sweep's record, Slurm's view of its jobs, and each shard's state (see slurm_queue.hpp).
#include "underspec/cluster/slurm_queue.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "underspec/cluster/slurm.hpp"
#include "underspec/outputs/atomic_file.hpp"
#include "underspec/run/checkpoint.hpp"
#include "underspec/run/run.hpp"
#include "underspec/sweep/sweep.hpp"

namespace underspec {
namespace fs = std::filesystem;
namespace {

bool holds_lock(const fs::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return false;
  const bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;  // for an instant only
  ::close(fd);
  return held;
}

// Expands --array / ArrayTaskId syntax ("3", "0-3%2", "1,3-4") into ids.
std::vector<std::uint32_t> expand_tasks(const std::string& text) {
  std::vector<std::uint32_t> ids;
  static const std::regex range(R"((\d+)-(\d+)(?::\d+)?)");
  std::stringstream parts(text.substr(0, text.find('%')));
  for (std::string part; std::getline(parts, part, ',');) {
    std::smatch r;
    if (std::regex_match(part, r, range)) {
      for (unsigned long i = std::stoul(r[1].str()); i <= std::stoul(r[2].str()); ++i)
        ids.push_back(static_cast<std::uint32_t>(i));
    } else if (!part.empty() && part.find_first_not_of("0123456789") == std::string::npos) {
      ids.push_back(static_cast<std::uint32_t>(std::stoul(part)));
    }
  }
  return ids;
}

enum class Query { known, unknown, unreachable };

// `scontrol -o show job ID`: one SlurmJob per task of an array (key: task id) or one for a
// job (key ""). At most 10 s: an unreachable controller makes scontrol retry much longer.
// `complaint` gets scontrol's output when Slurm could not be asked.
Query scontrol_jobs(const std::string& job_id, std::map<std::string, SlurmJob>& jobs, std::string& complaint) {
  std::string output;
  const int status = run_capture({"timeout", "10", "scontrol", "-o", "show", "job", job_id}, output);
  if (status != 0) {
    if (output.find("Invalid job id") != std::string::npos) return Query::unknown;  // ended long ago
    while (!output.empty() && output.back() == '\n') output.pop_back();
    complaint = status == 127 && output.empty() ? "scontrol not found"
                : status == 124                 ? "scontrol timed out after 10 s"
                                                : output;
    return Query::unreachable;
  }
  static const std::regex task(R"((?:^|\s)ArrayTaskId=(\S+))"), state(R"((?:^|\s)JobState=(\S+))"),
      reason(R"((?:^|\s)Reason=(\S+))");
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    std::smatch t, s, r;
    if (!std::regex_search(line, s, state)) continue;
    const std::string why = std::regex_search(line, r, reason) && r[1].str() != "None" ? r[1].str() : "";
    if (std::regex_search(line, t, task)) {
      for (std::uint32_t i : expand_tasks(t[1].str()))
        jobs[std::to_string(i)] = {job_id + "_" + std::to_string(i), s[1].str(), why};
    } else {
      jobs[""] = {job_id, s[1].str(), why};
    }
  }
  return Query::known;
}

}  // namespace

std::string latest_attempt(const std::string& log, const std::string& header) {
  std::size_t at = log.rfind("\n" + header);
  if (at != std::string::npos) return log.substr(at + 1);
  return log;  // one attempt (its header on the first line), or a log without headers
}

bool present(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

SlurmRecord read_slurm_record(const fs::path& dir) {
  const fs::path path = dir / "slurm.json";
  if (!present(path)) throw UsageError(dir.string() + " is not a Slurm sweep directory (no slurm.json)");
  try {
    const nlohmann::json j = nlohmann::json::parse(read_text(path));
    SlurmRecord r;
    // A hand-edited count must not become 4294967295 shards (-1 read as unsigned) to list.
    const nlohmann::json& shards = j.at("shards");
    if (!shards.is_number_integer() || shards.get<std::int64_t>() < 1 ||
        shards.get<std::int64_t>() > std::numeric_limits<std::int32_t>::max())
      throw UsageError(path.string() + ": shards must be an integer in [1, 2147483647], got " + shards.dump());
    r.shards = shards.get<std::uint32_t>();
    r.binary = j.value("binary", std::string("underspec"));
    r.array_limit = j.value("array_limit", 0);
    if (j.contains("submissions")) {
      for (const auto& s : j.at("submissions"))
        r.submissions.push_back({s.value("array_job", std::string()), s.value("tasks", std::string()),
                                 s.value("merge_job", std::string())});
    } else if (!j.value("array_job", std::string()).empty()) {  // format 1
      r.submissions.push_back(
          {j.at("array_job").get<std::string>(), task_list({0, r.shards - 1}), j.value("merge_job", std::string())});
    }
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(path.string() + ": not a Slurm sweep record (" + e.what() + ")");
  }
}

void write_slurm_record(const fs::path& dir, const SlurmRecord& r) {
  nlohmann::json submissions = nlohmann::json::array();
  for (const SlurmSubmission& s : r.submissions)
    submissions.push_back({{"array_job", s.array_job}, {"tasks", s.tasks}, {"merge_job", s.merge_job}});
  // array_job / merge_job: the latest of each, as format 1 had them (for scripts that read them).
  std::string array_job, merge_job;
  for (const SlurmSubmission& s : r.submissions) {
    if (!s.array_job.empty()) array_job = s.array_job;
    if (!s.merge_job.empty()) merge_job = s.merge_job;
  }
  const nlohmann::json j = {{"format", 2},
                            {"shards", r.shards},
                            {"binary", r.binary.string()},
                            {"array_limit", r.array_limit},
                            {"array_job", array_job},
                            {"merge_job", merge_job},
                            {"submissions", submissions}};
  write_file_atomic(dir / "slurm.json", j.dump(2) + "\n");
}

std::string task_list(const std::vector<std::uint32_t>& ids) {
  std::string out;
  for (std::size_t i = 0; i < ids.size();) {
    std::size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(ids[i]);
    if (j > i) out.append("-").append(std::to_string(ids[j]));
    i = j + 1;
  }
  return out;
}

bool is_failed_state(const std::string& s) {
  return s == "FAILED" || s == "TIMEOUT" || s == "NODE_FAIL" || s == "OUT_OF_MEMORY" || s == "BOOT_FAIL" ||
         s == "DEADLINE" || s == "PREEMPTED";
}

bool is_live_state(const std::string& s) {
  return s == "PENDING" || s == "RUNNING" || s == "COMPLETING" || s == "CONFIGURING" || s == "REQUEUED" ||
         s == "REQUEUE_HOLD" || s == "REQUEUE_FED" || s == "RESIZING" || s == "SUSPENDED" || s == "SIGNALING" ||
         s == "STAGE_OUT" || s == "RESV_DEL_HOLD";
}

SlurmQueueView query_slurm(const SlurmRecord& record) {
  SlurmQueueView view;
  for (const SlurmSubmission& s : record.submissions) {
    std::map<std::string, SlurmJob> jobs;
    if (!s.array_job.empty()) {
      if (scontrol_jobs(s.array_job, jobs, view.unreachable) == Query::unreachable) break;  // each try: 10 s
      bool live = false;
      for (std::uint32_t i : expand_tasks(s.tasks)) {
        const auto it = jobs.find(std::to_string(i));
        view.shards[i] = it != jobs.end() ? it->second : SlurmJob{s.array_job + "_" + std::to_string(i), "", ""};
        view.shards[i].vanished = it == jobs.end() && !jobs.empty();
        live = live || (it != jobs.end() && is_live_state(it->second.state));
      }
      if (live) view.live_arrays.push_back(s.array_job);
    }
    if (!s.merge_job.empty()) {
      jobs.clear();
      if (scontrol_jobs(s.merge_job, jobs, view.unreachable) == Query::unreachable) break;
      view.merge = jobs.count("") ? jobs[""] : SlurmJob{s.merge_job, "", ""};
    }
  }
  return view;
}

bool run_is_locked(const fs::path& run_dir) { return holds_lock(checkpoint_dir(run_dir) / "state.json", O_RDONLY); }

bool output_is_locked(const fs::path& out_dir) { return holds_lock(out_dir, O_RDONLY | O_DIRECTORY); }

std::vector<ShardState> shard_states(const fs::path& dir, const SlurmRecord& record, const SlurmQueueView& view,
                                     std::uint32_t replicas) {
  // More shards than replicas: slurm.json or config.toml was edited after `underspec slurm`.
  if (record.shards > replicas)
    throw UsageError((dir / "slurm.json").string() + " says " + std::to_string(record.shards) + " shards, but " +
                     (dir / "config.toml").string() + " has only " + std::to_string(replicas) + " replicas");
  std::vector<ShardState> states;
  for (std::uint32_t i = 0; i < record.shards; ++i) {
    const fs::path shard = dir / "shards" / std::to_string(i);
    const ShardRange range = shard_range(replicas, i, record.shards);
    ShardState s;
    s.total = range.end - range.begin;
    if (const auto it = view.shards.find(i); it != view.shards.end()) s.job = it->second;
    const std::string& slurm = s.job.state;
    bool readable = true;
    try {
      s.done = std::min(count_checkpoint_records(shard), s.total);
    } catch (const std::exception&) {
      readable = false;
    }
    if (present(shard / "summary.json")) {
      s.state = "done";
      s.done = s.total;
    } else if (run_is_locked(shard) || slurm == "RUNNING" || slurm == "COMPLETING") {
      s.state = "running";
    } else if (is_live_state(slurm)) {
      s.state = "pending";
    } else if (is_failed_state(slurm)) {
      s.state = "failed";
    } else if (slurm == "CANCELLED") {
      s.state = "cancelled";
    } else if (!readable ||
               latest_attempt(read_text(dir / "logs" / ("shard-" + std::to_string(i) + ".err")), kShardLogHeader)
                       .find("underspec: error:") != std::string::npos) {
      s.state = "failed";
    } else if (s.job.vanished) {
      s.state = "cancelled";
    } else if (present(checkpoint_dir(shard) / "state.json")) {
      s.state = "stopped";
    } else {
      s.state = "not started";
    }
    states.push_back(std::move(s));
  }
  return states;
}

}  // namespace underspec
