// Host driver of the bootstrap (see bootstrap.hpp).
#include "underspec/stats/bootstrap.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace underspec {

Interval bootstrap_interval(BootstrapStatistic statistic, std::span<const double> x, std::span<const double> y,
                            PhiloxKey key, double level, const std::atomic<bool>* stop) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  const bool paired = statistic == BootstrapStatistic::paired_std_ratio || statistic == BootstrapStatistic::spearman;
  if (x.size() < 2 || (statistic != BootstrapStatistic::std_dev && y.size() < 2) || (paired && y.size() != x.size()))
    return {kNaN, kNaN};
  const auto order_of = [](std::span<const double> v) {
    std::vector<int> order(v.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int i, int j) { return v[i] < v[j]; });
    return order;
  };
  const std::vector<int> x_order = order_of(x), y_order = order_of(y);
  const BootstrapData data{
      x.data(), static_cast<int>(x.size()), y.data(), static_cast<int>(y.size()), x_order.data(), y_order.data()};
  // Resample b's value depends only on (key, b): spreading resamples over threads (worth it
  // for large groups: 10^5 replicas cost seconds per statistic) cannot change the interval.
  std::vector<double> values(kBootstrapResamples);
  const bool parallel = (x.size() + y.size()) * kBootstrapResamples > (1u << 22);
#pragma omp parallel if (parallel)
  {
    std::vector<int> counts(x.size() + y.size());
    std::vector<double> ranks(x.size() + y.size());
#pragma omp for schedule(static)
    for (int b = 0; b < kBootstrapResamples; ++b)
      values[static_cast<std::size_t>(b)] =
          stop && stop->load(std::memory_order_relaxed)
              ? kNaN
              : resample_statistic(statistic, data, key, static_cast<std::uint32_t>(b),
                                   BootstrapScratch{counts.data(), ranks.data()});
  }
  if (stop && stop->load()) return {kNaN, kNaN};  // cut short: not the interval
  std::erase_if(values, [](double v) { return std::isnan(v); });
  std::sort(values.begin(), values.end());
  return {quantile_sorted(values, 0.5 - 0.5 * level), quantile_sorted(values, 0.5 + 0.5 * level)};
}

}  // namespace underspec
