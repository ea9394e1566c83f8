// `underspec slurm`: reserve the sweep directory, write the scripts, submit them (see slurm.hpp).
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <stdexcept>

#include "underspec/cluster/slurm.hpp"
#include "underspec/config/config_io.hpp"
#include "underspec/outputs/atomic_file.hpp"
#include "underspec/run/run.hpp"
#include "underspec/run/run_dir.hpp"

namespace underspec {
namespace fs = std::filesystem;
namespace {

void write_slurm_json(const SlurmOptions& o, const std::string& array_job, const std::string& merge_job) {
  const nlohmann::json j = {{"format", 1},
                            {"shards", o.shards},
                            {"binary", o.binary.string()},
                            {"array_job", array_job},
                            {"merge_job", merge_job}};
  write_file_atomic(o.dir / "slurm.json", j.dump(2) + "\n");
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

int slurm_prepare(SlurmOptions o, const ExperimentConfig& config, bool submit, std::ostream& out, std::ostream& err) {
  const std::uint64_t replicas = replica_count(config);
  if (o.shards < 1 || o.shards > replicas)
    throw UsageError("--shards must be in [1, " + std::to_string(replicas) + "] (the sweep's replicas), got " +
                     std::to_string(o.shards));
  const bool default_dir = o.dir.empty();  // as for run: a taken default name gets -2, -3, ...
  if (default_dir) o.dir = default_output_dir(std::chrono::system_clock::now());
  const fs::path given = o.dir;
  o.dir = fs::absolute(o.dir).lexically_normal();
  if (o.dir.has_filename() == false) o.dir = o.dir.parent_path();
  // #SBATCH lines take no quoting, and Slurm expands % in log file names.
  if (o.dir.string().find_first_of(" \t\n\"'%\\") != std::string::npos)
    throw UsageError("--out " + o.dir.string() +
                     ": a Slurm sweep directory cannot contain spaces, quotes, backslashes or '%' "
                     "(they would break the #SBATCH lines)");
  // The checks and messages of run's --out (on the path as given, so the messages name it as
  // run's do): a file, under a file, not creatable, not empty.
  require_new_output_dir(given, OutputUse::fill);
  std::error_code ec;
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
  write_slurm_json(o, "", "");

  const std::string dir = o.dir.string();
  const std::string run_script = shell_quote(dir + "/run.sbatch"), merge_script = shell_quote(dir + "/merge.sbatch");
  out << "underspec: wrote " << dir << "/run.sbatch (" << o.shards << " array tasks, " << replicas << " replicas) and "
      << dir << "/merge.sbatch\n";
  if (!submit) {
    out << "submit both with:\n  jid=$(sbatch --parsable " << run_script
        << ") && sbatch --dependency=afterok:${jid%%;*} --kill-on-invalid-dep=yes " << merge_script << '\n'
        << "then watch: underspec status " << shell_path(dir) << '\n';
    return 0;
  }
  const std::string array_job = sbatch_submit({dir + "/run.sbatch"});
  std::string merge_job;
  try {
    merge_job =
        sbatch_submit({"--dependency=afterok:" + array_job, "--kill-on-invalid-dep=yes", dir + "/merge.sbatch"});
  } catch (const std::exception&) {
    write_slurm_json(o, array_job, "");
    err << "underspec: array job " << array_job << " is submitted, but the merge job is not\n";
    throw;
  }
  write_slurm_json(o, array_job, merge_job);
  out << "submitted array job " << array_job << " (" << o.shards << " shards) and merge job " << merge_job
      << " (runs when every shard has succeeded)\n"
      << "watch:   squeue -j " << array_job << ',' << merge_job << "\n"
      << "         underspec status " << shell_path(dir) << '\n'
      << "collect: " << dir << "/merged (replicas.csv, stress.csv, summary.csv, summary.json)\n";
  return 0;
}

}  // namespace underspec
