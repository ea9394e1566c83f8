// See bench_command.hpp.
#include "underspec/benchmark/bench_command.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
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

// The JSON is written at the end (tmp + rename in its directory): refuse up front what
// would make that fail, so a long benchmark is not lost to a typo.
void require_writable_json_path(const std::string& text) {
  const fs::path path(text);
  const std::string what = std::string("--json ") + text + ": ";
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) throw UsageError(what + ec.message());
  if (fs::exists(status) && fs::is_directory(status)) throw UsageError(what + "is a directory, not a file");
  if (fs::exists(status) && !fs::is_regular_file(status)) throw UsageError(what + "exists and is not a regular file");
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  const fs::file_status dir_status = fs::status(dir, ec);
  if (!fs::exists(dir_status)) throw UsageError(what + "directory " + dir.string() + " does not exist");
  if (!fs::is_directory(dir_status)) throw UsageError(what + dir.string() + " is not a directory");
  try {
    probe_file_atomic(path);
  } catch (const OutputError& e) {
    throw UsageError(what + e.what());
  }
}

}  // namespace

int run_bench_command(const BenchCommand& command, std::ostream& out, std::ostream& err) {
  if (command.device != "auto" && command.device != "cpu" && command.device != "cuda")
    throw UsageError(std::string("--device ") + command.device + ": expected auto, cpu or cuda");
  if (!command.json_path.empty()) require_writable_json_path(command.json_path);

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

  out << format_report(report) << std::flush;
  if (!command.json_path.empty()) write_file_atomic(command.json_path, to_json(report).dump(2) + "\n");
  return 0;
}

}  // namespace underspec::benchmark
