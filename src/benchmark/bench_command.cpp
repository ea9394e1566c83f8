// See bench_command.hpp.
#include "underspec/benchmark/bench_command.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <system_error>

#include "underspec/backends/backend.hpp"
#include "underspec/benchmark/benchmark.hpp"
#include "underspec/outputs/atomic_file.hpp"
#include "underspec/run/run.hpp"
#include "underspec/run/run_info.hpp"

namespace underspec::benchmark {
namespace {

namespace fs = std::filesystem;

// Where --json writes. A regular file (or a new one) is written to a temporary name and
// renamed into place; "-", or a path that is standard output (/dev/stdout), is standard
// output (the table then goes to standard error); a symbolic link or a special file (a FIFO,
// a terminal) is written through as it is: replacing it would break the link, or /dev/stdout.
enum class JsonDestination { file, standard_output, through };

bool is_standard_output(const fs::path& path) {
  struct stat target {
  }, out{};
  return ::stat(path.c_str(), &target) == 0 && ::fstat(STDOUT_FILENO, &out) == 0 && target.st_dev == out.st_dev &&
         target.st_ino == out.st_ino;
}

// Refuses up front what would make the write at the end fail, so a long benchmark is not
// lost to a typo.
JsonDestination json_destination(const std::string& text) {
  if (text == "-") return JsonDestination::standard_output;
  const fs::path path(text);
  const std::string what = std::string("--json ") + text + ": ";
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) throw UsageError(what + ec.message());
  if (fs::exists(status) && fs::is_directory(status)) throw UsageError(what + "is a directory, not a file");
  if (fs::exists(status) && is_standard_output(path)) return JsonDestination::standard_output;
  const bool link = fs::is_symlink(fs::symlink_status(path, ec));
  if (link || (fs::exists(status) && !fs::is_regular_file(status))) {
    // Not opened now: a FIFO's reader would see the end of its input. A special file must be
    // writable; a link is opened without truncating.
    if (fs::exists(status) && !fs::is_regular_file(status)) {
      if (::access(path.c_str(), W_OK) != 0) throw UsageError(what + std::strerror(errno));
      return JsonDestination::through;
    }
    // Opened as the write at the end opens it (through the link, creating a missing target, so
    // that protected_symlinks and the like refuse now); a target this made is removed again.
    const bool dangling = !fs::exists(status);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) throw UsageError(what + std::strerror(errno));
    ::close(fd);
    if (dangling) {
      const fs::path made = fs::canonical(path, ec);
      if (!ec) fs::remove(made, ec);
    }
    return JsonDestination::through;
  }
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  const fs::file_status dir_status = fs::status(dir, ec);
  if (!fs::exists(dir_status)) throw UsageError(what + "directory " + dir.string() + " does not exist");
  if (!fs::is_directory(dir_status)) throw UsageError(what + dir.string() + " is not a directory");
  try {
    probe_file_atomic(path);
  } catch (const OutputError& e) {
    throw UsageError(what + e.what());
  }
  return JsonDestination::file;
}

void write_through(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::out | std::ios::trunc);
  if (!(file << text << std::flush)) throw OutputError("cannot write " + path + ": " + std::strerror(errno));
}

}  // namespace

int run_bench_command(const BenchCommand& command, std::ostream& out, std::ostream& err) {
  if (command.device != "auto" && command.device != "cpu" && command.device != "cuda")
    throw UsageError(std::string("--device ") + command.device + ": expected auto, cpu or cuda");
  const JsonDestination json = command.json_path.empty() ? JsonDestination::file : json_destination(command.json_path);

  bool use_cuda = false;
  if (command.device != "cpu") {
    std::string why;
    use_cuda = cuda_backend_available(&why);
    if (!use_cuda && command.device == "cuda") throw BackendUnavailable(std::string("--device cuda: ") + why);
    if (!use_cuda) err << "underspec: no usable CUDA device (" << why << "); benchmarking the CPU\n";
  }

  BenchOptions options;
  options.quick = command.quick;
  options.threads = command.threads;
  options.progress = [&err](const std::string& line) { err << "underspec: bench: " << line << '\n' << std::flush; };
  const auto started = std::chrono::system_clock::now();
  const std::vector<double> load_before = load_average();
  BenchReport report = use_cuda ? run_cuda_benchmark(options) : run_cpu_benchmark(options);
  report.load_before = load_before;
  report.load_after = load_average();
  report.version = command.version;
  report.git_commit = git_commit();
  report.host = host_name();
  report.started_utc = utc_timestamp(started);

  const std::string text = to_json(report).dump(2) + "\n";
  (json == JsonDestination::standard_output ? err : out) << format_report(report) << std::flush;
  if (command.json_path.empty()) return 0;
  switch (json) {
    case JsonDestination::standard_output:
      out << text << std::flush;
      break;
    case JsonDestination::through:
      write_through(command.json_path, text);
      break;
    case JsonDestination::file:
      write_file_atomic(command.json_path, text);
      break;
  }
  return 0;
}

}  // namespace underspec::benchmark
