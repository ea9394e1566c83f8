// Output directories: inspection, resume checks, reservation (see run_dir.hpp).
#include "underspec/run/run_dir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <ostream>

#include "underspec/config/config_io.hpp"
#include "underspec/outputs/atomic_file.hpp"
#include "underspec/outputs/file_lock.hpp"
#include "underspec/outputs/staging_dir.hpp"
#include "underspec/run/available_memory.hpp"
#include "underspec/run/run.hpp"

namespace underspec {
namespace fs = std::filesystem;
namespace {

// A temporary file of write_file_atomic or of the checkpoint (config.toml.tmp-XXXXXX, *.tmp).
bool is_temporary(const fs::path& p) {
  const std::string name = p.filename().string();
  return name.find(".tmp-") != std::string::npos || p.extension() == ".tmp";
}

// True when `dir` holds nothing but what reserve_run_dir writes before the checkpoint state
// (kill -9 between its steps): config.toml, temporary files, an empty checkpoint/.
bool only_reservation_leftovers(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name == "config.toml" || is_temporary(e.path())) continue;
    if (name != "checkpoint" || !e.is_directory(ec)) return false;
    for (const auto& c : fs::directory_iterator(e.path(), ec))
      if (!is_temporary(c.path())) return false;
  }
  return !ec;
}

std::string file_kind(const fs::file_status& s) {
  switch (s.type()) {
    case fs::file_type::regular:
      return "a regular file";
    case fs::file_type::fifo:
      return "a FIFO";
    case fs::file_type::socket:
      return "a socket";
    case fs::file_type::block:
    case fs::file_type::character:
      return "a device";
    default:
      return "not a directory";
  }
}

// Why nothing can be created in the directory `dir` ("" when something can): probed with a
// directory made and removed at once, which also catches read-only file systems, /proc and
// /sys, and permissions as they apply to this process (root included).
std::string write_problem(const fs::path& dir) {
  std::string tmpl = (dir / ".underspec-probe-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return std::strerror(errno);
  ::rmdir(tmpl.c_str());
  return {};
}

// An output directory that does not exist yet must be creatable: its nearest existing
// ancestor is a directory we can create entries in (probed with a directory made and
// removed at once, which also catches read-only file systems and /proc or /sys).
void require_creatable(const fs::path& dir) {
  std::error_code ec;
  // The system resolves "a/.." only when a is a directory: mkdir would fail after the checks
  // below, which look at the path as written ("new/.." is ".").
  fs::path prefix;
  for (const fs::path& part : dir) {
    if (part == ".." && !prefix.empty() && !fs::is_directory(prefix, ec))
      throw UsageError("output path " + dir.string() + " goes up from " + prefix.string() + ", which " +
                       (fs::exists(fs::symlink_status(prefix, ec)) ? "is not a directory" : "does not exist"));
    prefix /= part;
  }
  fs::path probe = fs::absolute(dir).lexically_normal();
  while (probe.has_parent_path() && probe != probe.parent_path()) {
    probe = probe.parent_path();
    const fs::file_status s = fs::status(probe, ec);
    if (ec && ec != std::errc::no_such_file_or_directory)
      throw UsageError("output path " + dir.string() + ": cannot use " + probe.string() + ": " + ec.message());
    if (!fs::exists(s)) continue;
    if (!fs::is_directory(s))
      throw UsageError("output path " + dir.string() + " lies under " + probe.string() + ", which is " + file_kind(s) +
                       ", not a directory");
    if (const std::string problem = write_problem(probe); !problem.empty())
      throw UsageError("output path " + dir.string() + " cannot be created in " + probe.string() + ": " + problem);
    return;
  }
}

// An existing directory that will be written into (run, slurm; merge and score stage their
// outputs inside it, see StagingDir): otherwise the first write fails mid-command with a
// runtime error instead of this usage error.
void require_writable(const fs::path& dir) {
  if (const std::string problem = write_problem(dir); !problem.empty())
    throw UsageError("output directory " + dir.string() + " exists but cannot be written: " + problem);
}

}  // namespace

std::string path_problem(const fs::path& path, bool want_directory) {
  std::error_code ec;
  const fs::file_status s = fs::status(path, ec);
  if (ec == std::errc::no_such_file_or_directory || (!ec && !fs::exists(s))) return "does not exist";
  if (ec) return "cannot be used: " + ec.message();
  if (want_directory && !fs::is_directory(s)) return "is " + file_kind(s) + ", not a directory";
  if (!want_directory && fs::is_directory(s)) return "is a directory, not a file";
  if (!want_directory && !fs::is_regular_file(s)) return "is " + file_kind(s) + ", not a regular file";
  if (::access(path.c_str(), want_directory ? (R_OK | X_OK) : R_OK) != 0) return "is not readable";
  return {};
}

namespace {

// inspect_run_dir, with what to suggest when `dir` already holds a run and resume is false.
RunDirectory inspect(const fs::path& dir, bool resume, const char* taken_advice, OutputUse use) {
  RunDirectory r;
  r.path = dir;
  std::error_code ec;
  const fs::file_status status = fs::status(dir, ec);
  // ENOTDIR: a path under a file, which require_creatable names.
  if (ec && ec != std::errc::no_such_file_or_directory && ec != std::errc::not_a_directory)
    throw UsageError("output path " + dir.string() + ": " + ec.message());
  if (!fs::exists(status)) {
    // mkdir(2) does not follow a symbolic link to nothing: it fails with EEXIST.
    if (fs::is_symlink(fs::symlink_status(dir, ec)))
      throw UsageError("output path " + dir.string() + " is a symbolic link to " + fs::read_symlink(dir, ec).string() +
                       ", which does not exist; remove it or choose another --out");
    require_creatable(dir);
    return r;
  }
  if (!fs::is_directory(status))
    throw UsageError("output path " + dir.string() + " exists and is " + file_kind(status) + ", not a directory");
  if (::access(dir.c_str(), R_OK | X_OK) != 0)
    throw UsageError("directory " + dir.string() + " is not readable: " + std::strerror(errno));
  // A merge or score killed while moving its outputs in (its checkpoint may be here already):
  // the same command again rolls that back and fills the directory; nothing else may use it.
  if (const std::string left = staging_leftover(dir); !left.empty() && only_staging_leftovers(dir)) {
    if (use != OutputUse::replace)
      throw UsageError("output directory " + dir.string() + " holds " + left +
                       ", left by a merge or score that was killed; run that command again, or remove it");
    require_writable(dir);
    return r;
  }
  std::optional<CheckpointState> state;
  try {
    state = read_checkpoint_state(dir);
  } catch (const CheckpointError& e) {
    throw UsageError(e.what());
  }
  if (!state) {
    if (resume && only_reservation_leftovers(dir)) {
      if (fs::exists(dir / "config.toml", ec)) {
        try {
          r.config = load_config(dir / "config.toml");
          r.has_config = true;
        } catch (const ConfigError&) {  // cut short: the reservation writes it again
        }
      }
      require_writable(dir);
      return r;
    }
    if (!fs::is_empty(dir, ec))
      throw UsageError("output directory " + dir.string() + " already exists and is not empty" +
                       (resume ? " (and holds no underspec checkpoint to resume)" : ""));
    require_writable(dir);
    return r;
  }
  if (!resume) throw UsageError("output directory " + dir.string() + " holds a run already; " + taken_advice);
  try {
    r.config = load_config(dir / "config.toml");
  } catch (const ConfigError& e) {
    throw UsageError(std::string("cannot resume: ") + e.what());
  }
  r.has_checkpoint = true;
  r.state = *state;
  return r;
}

}  // namespace

RunDirectory inspect_run_dir(const fs::path& dir, bool resume) {
  return inspect(dir, resume, "continue it with --resume, or choose another --out", OutputUse::fill);
}

void require_new_output_dir(const fs::path& dir, OutputUse use) {
  // merge, score and slurm cannot continue a run: only a new directory helps.
  inspect(dir, false, "choose another --out, or remove that directory first", use);
}

void require_same_run(const RunDirectory& dir, const ExperimentConfig& config, const CheckpointState& state) {
  const std::string where = "cannot resume " + dir.path.string() + ": ";
  if (config_hash(dir.config) != dir.state.config_hash)
    throw UsageError(where +
                     "its config.toml does not match its checkpoint (edited since the run started?); "
                     "restore the config.toml the run was started with");
  if (dir.state.config_hash != state.config_hash) {
    std::string keys;
    for (const std::string& k : differing_keys(dir.config, config)) keys += (keys.empty() ? "" : ", ") + k;
    throw UsageError(where + "it was started with a different config (differing keys: " +
                     (keys.empty() ? std::string("none by name; the config hash differs") : keys) +
                     "); resume without CONFIG/--set to use its own config.toml");
  }
  if (dir.state.shard_index != state.shard_index || dir.state.shard_count != state.shard_count) {
    // Named as the user writes them: a whole run is one without --shard (0/1).
    const auto name = [](std::uint32_t index, std::uint32_t count) {
      return count == 1 ? std::string("a whole run") : "shard " + std::to_string(index) + "/" + std::to_string(count);
    };
    const bool whole = dir.state.shard_count == 1;
    throw UsageError(where + "it is " + name(dir.state.shard_index, dir.state.shard_count) + ", not " +
                     name(state.shard_index, state.shard_count) + "; resume it " +
                     (whole ? std::string("without --shard")
                            : "with --shard " + std::to_string(dir.state.shard_index) + "/" +
                                  std::to_string(dir.state.shard_count)));
  }
  if (dir.state.save_params != state.save_params)
    throw UsageError(where + std::string("it was started ") + (dir.state.save_params ? "with" : "without") +
                     " --save-params; resume it the same way");
}

void require_host_memory(const MemoryEstimate& estimate, bool sharded, const std::string& command,
                         const std::string& alternative) {
  const AvailableMemory available = available_memory();
  if (available.bytes > 0 && estimate.bytes > available.bytes)  // a shard is split already: more shards may not help
    throw UsageError((command.empty() ? "" : command + ": ") + "the sweep needs about " + format_bytes(estimate.bytes) +
                     " of host memory but " + format_bytes(available.bytes) + " is available" +
                     (available.limited_by.empty() ? "" : " (limited by " + available.limited_by + ")") + "; reduce " +
                     estimate.dominant_key + (sharded ? "" : " (or split it with --shard)") + alternative);
}

void require_resources(const RunPlan& plan, const fs::path& dir) {
  fs::path probe = fs::absolute(dir);
  std::error_code ec;
  while (!fs::exists(probe, ec) && probe.has_parent_path() && probe != probe.parent_path()) probe = probe.parent_path();
  struct statvfs fs_info {};
  if (::statvfs(probe.c_str(), &fs_info) != 0) return;  // unknown: the writes will tell
  const double free_bytes = static_cast<double>(fs_info.f_bavail) * static_cast<double>(fs_info.f_frsize);
  if (plan.disk_bytes > free_bytes)
    throw UsageError("the outputs need about " + format_bytes(plan.disk_bytes) + " but " + probe.string() + " has " +
                     format_bytes(free_bytes) + " free; choose another --out or a smaller sweep");
}

namespace {
// `dir` exists: it must be empty or hold only what a reservation cut short left (cleared).
void require_reservable(const fs::path& dir, const char* why) {
  std::error_code ec;
  const bool empty = fs::is_empty(dir, ec);
  if (ec)  // unreadable, or no file descriptor left: not "not empty"
    throw OutputError("cannot read the output directory " + dir.string() + ": " + ec.message());
  if (!empty && !only_reservation_leftovers(dir))
    throw UsageError("output directory " + dir.string() + " is not empty" + why);
  for (const auto& e : fs::directory_iterator(dir, ec))  // a reservation cut short: start it again
    if (is_temporary(e.path())) fs::remove(e.path(), ec);
}
}  // namespace

void create_output_dir(fs::path& dir, bool rename_if_taken) {
  if (make_output_dir(dir, rename_if_taken)) return;
  require_reservable(dir, "");
}

void remove_output_temporaries(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (is_temporary(e.path()) && e.is_regular_file(ec)) fs::remove(e.path(), ec);
}

void reserve_run_dir(fs::path& dir, bool rename_if_taken, const ExperimentConfig& config,
                     const CheckpointState& state) {
  const bool made = make_output_dir(dir, rename_if_taken);
  // An exclusive flock on the directory itself while the run reserves it. Two runs started at
  // once into one empty --out both pass the emptiness check; without it both would write
  // config.toml and checkpoint/state.json, each the other's. The second now finds the
  // directory locked (in use) or, once the first has its run lock, not empty.
  const ExclusiveLock lock(dir, O_RDONLY | O_DIRECTORY, dir, 0);
  // Checked under the lock, even in a directory made just now: another run may have found it.
  require_reservable(dir, made ? " (another underspec run reserved it)" : "");
  write_file_atomic(dir / "config.toml", config_to_toml(config));
  write_checkpoint_state(dir, state);
}

void throw_if_stopped(const StopSignals& signals) {
  if (signals.requested().load()) throw Interrupted{signals.signal()};
}

int report_interrupted(const char* command, int signal, const fs::path& out, const std::string& command_line,
                       std::ostream& err) {
  err << "underspec: " << command << " stopped by signal " << signal << "; nothing was written to " << out.string()
      << "\nunderspec: to do it again: " << command_line << '\n';
  return 128 + signal;
}

void throw_no_checkpoint(const char* command, const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir / "summary.json", ec))
    throw UsageError(std::string(command) + ": " + dir.string() +
                     " has no checkpoint/ (it was deleted?); merge and score read the replicas from it");
  throw UsageError(std::string(command) + ": " + dir.string() + " is not an underspec run directory (no checkpoint/)");
}

}  // namespace underspec
