// How many floating-point operations the benchmarks count: the one FLOP model shared by
// `underspec bench`, bench/cpu and bench/gpu, so CPU and GPU throughputs are comparable.
#pragma once

#include "underspec/core/model.hpp"

namespace underspec::benchmark {

// One replica-sample-step of training, per dense layer of `fan_in` x `fan_out`: the forward
// product 2*fan_in*fan_out (the bias is the accumulator's initial value), the weight
// gradients 2*fan_in*fan_out, the back-propagated errors 2*fan_in*fan_out for every layer
// but the first, and the bias gradients fan_out adds. Not counted: ReLU, the loss and Adam
// (once per step, not per sample). 3-64-64-1: 25,857 FLOP; perceptron (3-1): 13 FLOP.
double train_flop_per_sample_step(const NetShape& shape);

// One sample through the network (scoring a test set): 2*fan_in*fan_out per layer.
double forward_flop_per_sample(const NetShape& shape);

}  // namespace underspec::benchmark
