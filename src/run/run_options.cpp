// Parsing of the run options that are more than a number: --shard and --gpus.
#include <charconv>
#include <climits>

#include "underspec/run/run.hpp"

namespace underspec {
namespace {

// A whole decimal number in [lo, hi], or nullopt.
std::optional<long long> whole_number(std::string_view text, long long lo, long long hi) {
  long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < lo || value > hi)
    return std::nullopt;
  return value;
}

}  // namespace

ShardSpec parse_shard(const std::string& text, const char* slurm_array_task_id) {
  const std::string what = "--shard " + text + ": ";
  const auto slash = text.find('/');
  if (slash == std::string::npos) throw UsageError(what + "expected I/N or auto/N, e.g. 0/4");
  const auto count = whole_number(std::string_view(text).substr(slash + 1), 1, 1 << 24);
  if (!count) throw UsageError(what + "N must be a whole number in [1, 16777216]");
  std::string index_text = text.substr(0, slash);
  if (index_text == "auto") {
    if (!slurm_array_task_id || !*slurm_array_task_id)
      throw UsageError(what + "auto needs SLURM_ARRAY_TASK_ID, which is not set (not in a Slurm array task?)");
    index_text = slurm_array_task_id;
  }
  const auto index = whole_number(index_text, 0, *count - 1);
  if (!index)
    throw UsageError(what + "I must be a whole number in [0, " + std::to_string(*count - 1) + "], got '" + index_text +
                     "'");
  return ShardSpec{static_cast<std::uint32_t>(*index), static_cast<std::uint32_t>(*count)};
}

std::vector<int> parse_gpu_list(const std::string& text) {
  std::vector<int> gpus;
  if (text.empty()) return gpus;
  std::size_t begin = 0;
  while (begin <= text.size()) {
    const std::size_t end = std::min(text.find(',', begin), text.size());
    const auto id = whole_number(std::string_view(text).substr(begin, end - begin), 0, 1023);
    if (!id) throw UsageError("--gpus " + text + ": expected device numbers separated by commas, e.g. 0,2");
    for (int g : gpus)
      if (g == *id) throw UsageError("--gpus " + text + ": device " + std::to_string(g) + " is listed twice");
    gpus.push_back(static_cast<int>(*id));
    begin = end + 1;
  }
  return gpus;
}

}  // namespace underspec
