// `underspec slurm`: reserve the sweep directory, write the scripts, submit them (see slurm.hpp).
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <stdexcept>

#include "underspec/cluster/slurm.hpp"
#include "underspec/cluster/slurm_queue.hpp"
#include "underspec/config/config_io.hpp"
#include "underspec/outputs/atomic_file.hpp"
#include "underspec/run/run.hpp"
#include "underspec/run/run_dir.hpp"

namespace underspec {
namespace fs = std::filesystem;
namespace {

// What `status` prints for a job that is waiting: its state and Slurm's reason.
std::string job_text(const SlurmJob& job) { return job.state + (job.reason.empty() ? "" : " (" + job.reason + ")"); }

// Cancels a merge job that can no longer do its work: it waits for the array jobs whose
// shards are submitted again, so it would run before they finish, or never.
void cancel_stale_merge(const SlurmJob& merge, std::ostream& out) {
  std::string output;
  if (run_capture({"scancel", merge.id}, output) == 0)
    out << "cancelled merge job " << merge.id << " (" << merge.state << "): a new merge follows the new array job\n";
  else
    out << "underspec: warning: could not cancel merge job " << merge.id << ": " << output;
}

}  // namespace

int run_capture(const std::vector<std::string>& argv, std::string& output) {
  output.clear();
  int fds[2];
  if (argv.empty() || ::pipe2(fds, O_CLOEXEC) != 0) return 127;
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return 127;
  }
  if (pid == 0) {
    ::signal(SIGPIPE, SIG_DFL);  // underspec ignores these (main.cpp); sbatch gets the defaults back
    ::signal(SIGXFSZ, SIG_DFL);
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    output.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int raw = 0;
  while (::waitpid(pid, &raw, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
}

std::string sbatch_submit(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"sbatch", "--parsable"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string output;
  const int status = run_capture(argv, output);
  while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
  if (status == 127 && output.empty()) throw std::runtime_error("cannot run sbatch (is Slurm installed and on PATH?)");
  // --parsable prints "jobid" or "jobid;cluster" as its last line.
  const std::string last = output.substr(output.rfind('\n') == std::string::npos ? 0 : output.rfind('\n') + 1);
  const std::string id = last.substr(0, last.find(';'));
  if (status != 0 || id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
    throw std::runtime_error("sbatch failed (status " + std::to_string(status) + "): " + output);
  return id;
}

int submit_sweep(const fs::path& dir_given, std::ostream& out, std::ostream& err) {
  const fs::path dir = fs::absolute(dir_given).lexically_normal();
  SlurmRecord record = read_slurm_record(dir);
  const std::string sweep = shell_path(dir.string());
  if (fs::exists(dir / "merged" / "summary.json")) {
    out << "nothing to submit: the sweep is merged (" << dir.string() << "/merged)\n";
    return 0;
  }
  const ExperimentConfig config = load_config(dir / "config.toml");
  const SlurmQueueView view = query_slurm(record);
  // Without Slurm's view, queued shards would look unfinished and be submitted twice.
  if (!view.unreachable.empty())
    throw std::runtime_error("cannot ask Slurm about the sweep's jobs (" + view.unreachable +
                             "); nothing was submitted, try again when scontrol answers");
  const std::vector<ShardState> shards =
      shard_states(dir, record, view, static_cast<std::uint32_t>(replica_count(config)));
  std::vector<std::uint32_t> missing;
  std::vector<std::string> waits = view.live_arrays;  // the merge waits for these to end, too
  for (std::uint32_t i = 0; i < shards.size(); ++i) {
    const std::string& state = shards[i].state;
    if (state == "done" || state == "pending") continue;
    if (state == "running") {
      if (!is_live_state(shards[i].job.state))
        err << "underspec: warning: shard " << i << " is running outside Slurm; the merge will fail if it starts "
            << "before that run ends (then: underspec submit " << sweep << ")\n";
      continue;
    }
    missing.push_back(i);
  }
  const bool merge_live = is_live_state(view.merge.state);
  if (missing.empty() && merge_live) {
    out << "nothing to submit: every shard is done or queued, and merge job " << view.merge.id << " is "
        << job_text(view.merge) << '\n';
    return 0;
  }
  if (!missing.empty() && merge_live) cancel_stale_merge(view.merge, out);

  SlurmSubmission round;
  if (!missing.empty()) {
    round.tasks = task_list(missing);
    std::string array = "--array=" + round.tasks;
    if (record.array_limit > 0) array += "%" + std::to_string(record.array_limit);
    round.array_job = sbatch_submit({array, dir.string() + "/run.sbatch"});
    record.submissions.push_back(round);
    write_slurm_record(dir, record);
  }
  std::string dependency;
  if (!round.array_job.empty()) dependency = "afterok:" + round.array_job;
  // afterany, not afterok: a task of an older array that failed before must not cancel this
  // merge; the merge itself refuses (naming the shard) if a replica is still missing.
  if (!waits.empty()) {
    if (!dependency.empty()) dependency += ",";
    dependency += "afterany";
    for (const std::string& w : waits) dependency += ":" + w;
  }
  std::vector<std::string> merge_args;
  if (!dependency.empty()) merge_args = {"--dependency=" + dependency, "--kill-on-invalid-dep=yes"};
  merge_args.push_back(dir.string() + "/merge.sbatch");
  try {
    round.merge_job = sbatch_submit(merge_args);
  } catch (const std::exception&) {
    if (!round.array_job.empty())
      err << "underspec: array job " << round.array_job << " (shards " << round.tasks
          << ") is submitted, but the merge job is not; submit the merge later with: underspec submit " << sweep
          << '\n';
    throw;
  }
  if (round.array_job.empty()) {
    record.submissions.push_back(round);
  } else {
    record.submissions.back().merge_job = round.merge_job;
  }
  write_slurm_record(dir, record);
  if (!round.array_job.empty())
    out << "submitted array job " << round.array_job << " (" << missing.size()
        << (missing.size() == 1 ? " shard" : " shards") << ": " << round.tasks << ") and merge job " << round.merge_job
        << " (runs when every shard has succeeded)\n";
  else
    out << "submitted merge job " << round.merge_job
        << (waits.empty() ? " (every shard is done)\n" : " (runs when the queued shards have ended)\n");
  std::string jobs = round.array_job.empty() ? round.merge_job : round.array_job + "," + round.merge_job;
  out << "watch:   squeue -j " << jobs << "\n"
      << "         underspec status " << sweep << '\n'
      << "collect: " << dir.string() << "/merged (replicas.csv, stress.csv, summary.csv, summary.json)\n";
  return 0;
}

int slurm_prepare(SlurmOptions o, const ExperimentConfig& config, bool submit, std::ostream& out, std::ostream& err) {
  const std::uint64_t replicas = replica_count(config);
  if (o.shards < 1 || o.shards > replicas)
    throw UsageError("--shards must be in [1, " + std::to_string(replicas) + "] (the sweep's replicas), got " +
                     std::to_string(o.shards));
  long limit = 0;
  if (!o.time.empty()) {
    const std::optional<long> parsed = parse_slurm_time(o.time);
    if (!parsed)
      throw UsageError("--time " + o.time +
                       ": not a Slurm time (minutes, M:S, H:M:S, D-H, D-H:M or D-H:M:S, e.g. 2:00:00 for two hours)");
    limit = *parsed;
    o.signal_grace_seconds = signal_grace_for(limit);
  }
  const ShardMemoryCheck memory = check_shard_memory(o, config);
  if (!memory.error.empty()) throw UsageError(memory.error);
  const bool default_dir = o.dir.empty();  // as for run: a taken default name gets -2, -3, ...
  if (default_dir) o.dir = default_output_dir(std::chrono::system_clock::now());
  const fs::path given = o.dir;
  o.dir = fs::absolute(o.dir).lexically_normal();
  if (o.dir.has_filename() == false) o.dir = o.dir.parent_path();
  // #SBATCH lines take no quoting, '#' starts a comment in them, and Slurm expands % in log
  // file names.
  if (o.dir.string().find_first_of(" \t\n\"'%\\#") != std::string::npos)
    throw UsageError("--out " + o.dir.string() +
                     ": a Slurm sweep directory cannot contain spaces, quotes, backslashes, '#' or '%' "
                     "(they would break the #SBATCH lines)");
  // The checks and messages of run's --out (on the path as given, so the messages name it as
  // run's do): a file, under a file, not creatable, not empty.
  require_new_output_dir(given, OutputUse::fill);
  std::error_code ec;
  const bool existed = fs::exists(o.dir, ec);
  if (o.binary.empty()) o.binary = fs::read_symlink("/proc/self/exe", ec);
  if (o.binary.empty()) throw std::runtime_error("cannot find the path of the underspec binary (/proc/self/exe)");

  create_output_dir(o.dir, default_dir);
  fs::create_directories(o.dir / "logs", ec);
  if (!ec) fs::create_directories(o.dir / "shards", ec);
  if (ec) throw OutputError("cannot create " + o.dir.string() + ": " + ec.message());
  write_file_atomic(o.dir / "config.toml", config_to_toml(config));
  write_file_atomic(o.dir / "run.sbatch", slurm_array_script(o));
  write_file_atomic(o.dir / "merge.sbatch", slurm_merge_script(o));
  for (const char* name : {"run.sbatch", "merge.sbatch"})
    fs::permissions(o.dir / name, fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec,
                    fs::perm_options::add, ec);
  write_slurm_record(o.dir, SlurmRecord{o.shards, o.binary, o.array_limit, {}});

  const std::string dir = o.dir.string();
  out << "underspec: wrote " << dir << "/run.sbatch (" << o.shards << " array tasks, " << replicas << " replicas) and "
      << dir << "/merge.sbatch\n";
  if (limit > 0 && limit < 600)
    err << "underspec: warning: --time " << o.time << " is " << limit << " s per task to Slurm (M:S; hours are H:M:S); "
        << "each task saves and stops " << o.signal_grace_seconds
        << " s before it, or earlier: Slurm may signal up to a minute early\n";
  out << "underspec: " << memory.line << '\n' << "underspec: " << memory.merge_line << '\n';
  if (!memory.merge_warning.empty()) err << "underspec: warning: " << memory.merge_warning << '\n';
  if (const ShardTimeCheck check = check_shard_time(o, config, limit); !check.line.empty()) {
    out << "underspec: " << check.line << '\n';
    if (!check.warning.empty()) err << "underspec: warning: " << check.warning << '\n';
  }
  if (!submit) {
    out << "submit both with: underspec submit " << shell_path(dir) << '\n'
        << "  (or: jid=$(sbatch --parsable " << shell_quote(dir + "/run.sbatch")
        << ") && sbatch --dependency=afterok:${jid%%;*} --kill-on-invalid-dep=yes "
        << shell_quote(dir + "/merge.sbatch") << "\n   but then `underspec status` cannot name the jobs)\n"
        << "then watch: underspec status " << shell_path(dir) << '\n';
    return 0;
  }
  try {
    return submit_sweep(o.dir, out, err);
  } catch (const std::exception& e) {
    if (!read_slurm_record(o.dir).submissions.empty()) throw;  // the array job runs: keep its directory
    // Nothing was submitted: leave nothing behind, so the same command can run again once fixed.
    if (existed) {
      for (const auto& entry : fs::directory_iterator(o.dir, ec)) fs::remove_all(entry.path(), ec);
    } else {
      fs::remove_all(o.dir, ec);
    }
    throw std::runtime_error(std::string(e.what()) + "\nunderspec: nothing was submitted; " + dir +
                             (existed ? " is empty again" : " is removed"));
  }
}

}  // namespace underspec
