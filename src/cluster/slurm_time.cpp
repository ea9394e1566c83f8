// Slurm's --time syntax and the SIGTERM grace period it leaves a task (see slurm.hpp).
#include <algorithm>
#include <cctype>
#include <regex>
#include <string>

#include "underspec/cluster/slurm.hpp"

namespace underspec {

std::optional<long> parse_slurm_time(std::string_view text) {
  std::string t(text);
  std::string upper = t;
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  if (upper == "UNLIMITED" || upper == "INFINITE") return 0L;
  // sbatch(1): "minutes", "minutes:seconds", "hours:minutes:seconds", "days-hours",
  // "days-hours:minutes" and "days-hours:minutes:seconds".
  static const std::regex plain(R"((\d{1,9})(?::(\d{1,9}))?(?::(\d{1,9}))?)"),
      days(R"((\d{1,6})-(\d{1,9})(?::(\d{1,9}))?(?::(\d{1,9}))?)");
  std::smatch m;
  const auto num = [&](int i) { return m[i].matched ? std::stol(m[i].str()) : 0L; };
  if (std::regex_match(t, m, days)) return ((num(1) * 24 + num(2)) * 60 + num(3)) * 60 + num(4);
  if (!std::regex_match(t, m, plain)) return std::nullopt;
  if (m[3].matched) return (num(1) * 60 + num(2)) * 60 + num(3);  // H:M:S
  return num(1) * 60 + num(2);                                    // M or M:S
}

int signal_grace_for(long limit_seconds) {
  constexpr long kGrace = 120, kShortest = 10;
  if (limit_seconds <= 0) return static_cast<int>(kGrace);
  const long minutes = (limit_seconds + 59) / 60;  // Slurm keeps limits in whole minutes, rounded up
  return static_cast<int>(std::clamp(minutes * 60 / 10, kShortest, kGrace));
}

}  // namespace underspec
