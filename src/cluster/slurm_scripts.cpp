// The texts of the Slurm batch scripts (see slurm.hpp). Pure: no file system, no Slurm.
#include <sstream>

#include "underspec/cluster/slurm.hpp"

namespace underspec {
namespace {

// Lines shared by both scripts: where the jobs may run and who pays. --sbatch-arg goes to both
// too (a reservation, --clusters or mail settings must hold for the merge as well).
void common_lines(std::ostringstream& s, const SlurmOptions& o) {
  if (!o.partition.empty()) s << "#SBATCH --partition=" << o.partition << '\n';
  if (!o.account.empty()) s << "#SBATCH --account=" << o.account << '\n';
  if (!o.qos.empty()) s << "#SBATCH --qos=" << o.qos << '\n';
}

void extra_lines(std::ostringstream& s, const SlurmOptions& o) {
  for (const std::string& a : o.sbatch_args) s << "#SBATCH " << a << '\n';
}

std::string path_text(const std::filesystem::path& p) { return p.lexically_normal().string(); }

}  // namespace

std::string slurm_array_script(const SlurmOptions& o) {
  const std::string dir = path_text(o.dir);
  const std::string n = std::to_string(o.shards);
  std::ostringstream s;
  s << "#!/bin/bash\n";
  s << "# underspec sweep on Slurm, written by `underspec slurm`: one array task per shard.\n";
  s << "# Each task continues its shard's checkpoint (--resume), so a requeued or resubmitted task\n";
  s << "# trains only what is missing. Submit what is unfinished again: underspec submit " << dir << "\n";
  s << "#SBATCH --job-name=" << o.job_name << '\n';
  s << "#SBATCH --array=0-" << (o.shards - 1);
  if (o.array_limit > 0) s << '%' << o.array_limit;
  s << '\n';
  s << "#SBATCH --output=" << dir << "/logs/shard-%a.out\n";
  s << "#SBATCH --error=" << dir << "/logs/shard-%a.err\n";
  s << "#SBATCH --open-mode=append\n";
  s << "#SBATCH --requeue\n";
  // SIGTERM to the batch shell, which is underspec itself (exec below): it saves and exits 143.
  s << "#SBATCH --signal=B:TERM@" << o.signal_grace_seconds << '\n';
  common_lines(s, o);
  if (!o.time.empty()) s << "#SBATCH --time=" << o.time << '\n';
  if (o.gpus_per_task > 0) s << "#SBATCH --gpus-per-task=" << o.gpus_per_task << '\n';
  if (o.cpus_per_task > 0) s << "#SBATCH --cpus-per-task=" << o.cpus_per_task << '\n';
  if (!o.mem.empty()) s << "#SBATCH --mem=" << o.mem << '\n';
  extra_lines(s, o);
  s << "set -eu\n";
  s << "echo \"underspec: shard ${SLURM_ARRAY_TASK_ID}/" << n
    << " on $(hostname), job ${SLURM_JOB_ID}, restart ${SLURM_RESTART_COUNT:-0}\" >&2\n";
  s << "exec " << shell_quote(o.binary.string()) << " run " << shell_quote(dir + "/config.toml")
    << " --shard \"${SLURM_ARRAY_TASK_ID}/" << n << "\" --resume --out " << shell_quote(dir + "/shards/")
    << "\"${SLURM_ARRAY_TASK_ID}\" --progress lines";
  if (o.gpus_per_task > 0)
    s << " --device cuda";
  else
    s << " --device cpu --threads \"${SLURM_CPUS_PER_TASK:-${SLURM_CPUS_ON_NODE:-0}}\"";
  s << '\n';
  return s.str();
}

std::string slurm_merge_script(const SlurmOptions& o) {
  const std::string dir = path_text(o.dir);
  std::ostringstream s;
  s << "#!/bin/bash\n";
  s << "# Merges the shards of the underspec sweep in " << dir << " into " << dir << "/merged.\n";
  s << "# Submitted with --dependency=afterok:<array job>: it runs once every shard has finished.\n";
  s << "#SBATCH --job-name=" << o.job_name << "-merge\n";
  s << "#SBATCH --output=" << dir << "/logs/merge.out\n";
  s << "#SBATCH --error=" << dir << "/logs/merge.err\n";
  s << "#SBATCH --open-mode=append\n";
  s << "#SBATCH --kill-on-invalid-dep=yes\n";
  s << "#SBATCH --ntasks=1\n";
  common_lines(s, o);
  // The merge computes the whole sweep's statistics: a shard's CPUs and time limit, not the
  // partition's defaults (no GPU: it trains nothing; no --mem: it holds every shard's rows).
  if (!o.time.empty()) s << "#SBATCH --time=" << o.time << '\n';
  if (o.cpus_per_task > 0) s << "#SBATCH --cpus-per-task=" << o.cpus_per_task << '\n';
  extra_lines(s, o);
  s << "set -eu\n";
  // Each merge job's lines in the appended log start here (status reads the latest only).
  s << "echo \"underspec: merge job ${SLURM_JOB_ID} on $(hostname)\" >&2\n";
  s << "exec " << shell_quote(o.binary.string()) << " merge";
  for (std::uint32_t i = 0; i < o.shards; ++i) s << ' ' << shell_quote(dir + "/shards/" + std::to_string(i));
  s << " --out " << shell_quote(dir + "/merged") << " --threads \"${SLURM_CPUS_PER_TASK:-${SLURM_CPUS_ON_NODE:-0}}\"\n";
  return s.str();
}

std::string slurm_shard_command(const SlurmOptions& o, std::uint32_t index) {
  const std::string dir = path_text(o.dir);
  return shell_quote(o.binary.string()) + " run " + shell_quote(dir + "/config.toml") + " --shard " +
         std::to_string(index) + "/" + std::to_string(o.shards) + " --resume --out " +
         shell_quote(dir + "/shards/" + std::to_string(index));
}

}  // namespace underspec
