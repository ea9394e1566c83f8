// The per-step Adam scalars of a whole training (StepLR included), computed once on the
// host in double and indexed by step by both backends.
#pragma once

#include <cstdint>
#include <vector>

#include "underspec/config/config.hpp"
#include "underspec/core/adam.hpp"

namespace underspec {

// Entry k holds the scalars of Adam step k + 1; epochs * ceil(n_train / batch_size) entries.
std::vector<AdamStep> make_adam_table(const TrainConfig& train, std::uint32_t n_train);

}  // namespace underspec
