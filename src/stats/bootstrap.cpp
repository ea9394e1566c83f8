// Host driver of the bootstrap (see bootstrap.hpp).
#include "underspec/stats/bootstrap.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <utility>
#include <vector>

#include "underspec/backends/cpu_kernels.hpp"
#include "underspec/stats/bootstrap_device.hpp"

namespace underspec {
namespace {

// quantile_sorted(sort(values), q), reordering `values`: only the two order statistics it
// reads are selected, not all 4000 resamples sorted (in a grid of thousands of small groups
// that sort was a fifth of the statistics' time).
double quantile_selected(std::vector<double>& values, double q) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  const double position = q * static_cast<double>(values.size() - 1);
  const auto lower = static_cast<std::size_t>(std::floor(position));
  const auto at = values.begin() + static_cast<std::ptrdiff_t>(lower);
  std::nth_element(values.begin(), at, values.end());
  const double fraction = position - static_cast<double>(lower);
  if (fraction == 0.0 || lower + 1 == values.size()) return *at;  // as quantile_sorted: no 0 * inf
  const double upper = *std::min_element(at + 1, values.end());   // the next order statistic
  return *at + fraction * (upper - *at);
}

// The CPU level's lanes; the portable level where UNDERSPEC_CPU_KERNELS names one this CPU
// cannot run (training reports that error; the statistics of `merge` need no kernels).
const CpuKernels& bootstrap_kernels() {
  try {
    return active_cpu_kernels();
  } catch (const CpuKernelsError&) {
    return cpu_kernels(CpuIsa::portable);
  }
}

}  // namespace

std::vector<double> bootstrap_resamples(BootstrapStatistic statistic, std::span<const double> x,
                                        std::span<const double> y, PhiloxKey key, const std::atomic<bool>* stop,
                                        BootstrapPath path) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  const bool paired = statistic == BootstrapStatistic::paired_std_ratio || statistic == BootstrapStatistic::spearman;
  if (x.size() < 2 || (statistic != BootstrapStatistic::std_dev && y.size() < 2) || (paired && y.size() != x.size()))
    return {};
  const auto order_of = [](std::span<const double> v) {
    std::vector<int> order(v.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int i, int j) { return v[i] < v[j]; });
    return order;
  };
  const std::vector<int> x_order = order_of(x), y_order = order_of(y);
  const BootstrapData data{
      x.data(), static_cast<int>(x.size()), y.data(), static_cast<int>(y.size()), x_order.data(), y_order.data()};
  const BootstrapDevice device = bootstrap_device();
  if (path == BootstrapPath::device && !device.resamples)
    throw std::logic_error("bootstrap_resamples: BootstrapPath::device without an installed device");
  if (path == BootstrapPath::device ||
      (path == BootstrapPath::lanes && device.resamples && x.size() + y.size() >= device.min_values)) {
    std::vector<double> values(kBootstrapResamples);
    device.resamples(device.device, statistic, data, key, stop, values.data());
    return values;
  }
  // The lanes' interleaved counts and ranks are indexed by int: groups below 2^27 values.
  // The portable level (scalar Philox, 2-wide sums) only gains on Spearman's shared rank walk
  // (1.3x at 10^5; 0.9-1.0x on the stds): the reference does the rest there.
  const CpuKernels& kernels = bootstrap_kernels();
  const bool lanes = path == BootstrapPath::lanes && x.size() + y.size() < (std::size_t{1} << 27) &&
                     (kernels.isa != CpuIsa::portable || statistic == BootstrapStatistic::spearman);
  // Resample b's value depends only on (key, b): spreading resamples over threads (worth it
  // for large groups: 10^5 replicas cost seconds per statistic) cannot change the interval.
  static_assert(kBootstrapResamples % kBootstrapLanes == 0);
  std::vector<double> values(kBootstrapResamples);
  const bool parallel = (x.size() + y.size()) * kBootstrapResamples > (1u << 22);
#pragma omp parallel if (parallel)
  {
    std::vector<int> counts(x.size() + y.size());
    std::vector<double> ranks(x.size() + y.size());
    const BootstrapScratch reference{counts.data(), ranks.data()};
    std::vector<std::uint8_t> lane_counts(lanes ? (x.size() + y.size()) * kBootstrapLanes : 0);
    std::vector<std::int32_t> twice_ranks(
        lanes && statistic == BootstrapStatistic::spearman ? 2 * x.size() * kBootstrapLanes : 0);
    const BootstrapLaneScratch scratch{lane_counts.data(), twice_ranks.data(), reference};
    if (lanes) {
      // A stop request is read before each group of lanes: a fraction of a second apart even
      // at 10^6 values.
#pragma omp for schedule(static)
      for (int first = 0; first < kBootstrapResamples; first += kBootstrapLanes) {
        double* out = values.data() + first;
        if (stop && stop->load(std::memory_order_relaxed))
          std::fill(out, out + kBootstrapLanes, kNaN);
        else
          kernels.bootstrap(statistic, data, key, static_cast<std::uint32_t>(first), scratch, out);
      }
    } else {
#pragma omp for schedule(static)
      for (int b = 0; b < kBootstrapResamples; ++b)
        values[static_cast<std::size_t>(b)] =
            stop && stop->load(std::memory_order_relaxed)
                ? kNaN
                : resample_statistic(statistic, data, key, static_cast<std::uint32_t>(b), reference);
    }
  }
  return values;
}

Interval bootstrap_interval(BootstrapStatistic statistic, std::span<const double> x, std::span<const double> y,
                            PhiloxKey key, double level, const std::atomic<bool>* stop) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> values = bootstrap_resamples(statistic, x, y, key, stop);
  if (values.empty()) return {kNaN, kNaN};
  if (stop && stop->load()) return {kNaN, kNaN};  // cut short: not the interval
  return percentile_interval(values, level);
}

Interval percentile_interval(std::vector<double>& values, double level) {
  std::erase_if(values, [](double v) { return std::isnan(v); });
  const double low = quantile_selected(values, 0.5 - 0.5 * level);
  return {low, quantile_selected(values, 0.5 + 0.5 * level)};
}

namespace {

// The installed device; read at every group, written by ScopedBootstrapDevice.
std::mutex device_mutex;
BootstrapDevice installed_device;

}  // namespace

BootstrapDevice bootstrap_device() {
  const std::lock_guard lock(device_mutex);
  return installed_device;
}

ScopedBootstrapDevice::ScopedBootstrapDevice(const BootstrapDevice& device) {
  const std::lock_guard lock(device_mutex);
  previous_ = std::exchange(installed_device, device);
}

ScopedBootstrapDevice::~ScopedBootstrapDevice() {
  const std::lock_guard lock(device_mutex);
  installed_device = previous_;
}

}  // namespace underspec
