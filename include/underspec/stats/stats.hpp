// Statistics of a group of replicas: the spread of OOD RMSE across seeds is the
// measurement, so these are computed in double and tested against known inputs.
#pragma once

#include <span>

namespace underspec {

struct Summary {
  int count = 0;
  double mean = 0, std = 0, min = 0, q1 = 0, median = 0, q3 = 0, max = 0;
};

// Quantile with linear interpolation between order statistics (numpy's default, R type 7).
double quantile_sorted(std::span<const double> sorted, double q);
// Sample standard deviation (n - 1); 0 for fewer than two values.
Summary summarize(std::span<const double> values);

}  // namespace underspec
