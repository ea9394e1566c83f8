// See flop_model.hpp.
#include "underspec/benchmark/flop_model.hpp"

namespace underspec::benchmark {

double train_flop_per_sample_step(const NetShape& shape) {
  double flop = 0;
  for (int l = 1; l <= shape.n_layers; ++l) {
    const double mn = static_cast<double>(shape.width[l - 1]) * shape.width[l];
    flop += 2 * mn + 2 * mn + (l > 1 ? 2 * mn : 0.0) + shape.width[l];
  }
  return flop;
}

double forward_flop_per_sample(const NetShape& shape) {
  double flop = 0;
  for (int l = 1; l <= shape.n_layers; ++l) flop += 2.0 * shape.width[l - 1] * shape.width[l];
  return flop;
}

}  // namespace underspec::benchmark
