// Group statistics (see stats.hpp).
#include "underspec/stats/stats.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace underspec {

double quantile_sorted(std::span<const double> sorted, double q) {
  if (sorted.empty()) return std::nan("");
  const double position = q * static_cast<double>(sorted.size() - 1);
  const auto lower = static_cast<std::size_t>(std::floor(position));
  const std::size_t upper = std::min(lower + 1, sorted.size() - 1);
  const double fraction = position - static_cast<double>(lower);
  return sorted[lower] + fraction * (sorted[upper] - sorted[lower]);
}

Summary summarize(std::span<const double> values) {
  Summary s;
  s.count = static_cast<int>(values.size());
  if (values.empty()) {
    s.mean = s.std = s.min = s.q1 = s.median = s.q3 = s.max = std::nan("");
    return s;
  }
  std::vector<double> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  double sum = 0.0;
  for (double v : sorted) sum += v;
  s.mean = sum / static_cast<double>(sorted.size());
  double squares = 0.0;
  for (double v : sorted) squares += (v - s.mean) * (v - s.mean);
  s.std = sorted.size() > 1 ? std::sqrt(squares / static_cast<double>(sorted.size() - 1)) : 0.0;
  s.min = sorted.front();
  s.max = sorted.back();
  s.q1 = quantile_sorted(sorted, 0.25);
  s.median = quantile_sorted(sorted, 0.5);
  s.q3 = quantile_sorted(sorted, 0.75);
  return s;
}

}  // namespace underspec
