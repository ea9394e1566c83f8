// group_train_replica's serial path with the parameters checked after every minibatch step,
// stopping after the first step that leaves one of them NaN or infinite: how a diverged
// replica's training is replayed to say where it diverged (backends/divergence_replay.hpp).
// Host only; instantiated by the CPU kernels of each instruction-set level with their own
// products (isa/cpu_kernels_isa.cpp), so the replay costs what a training costs and computes
// the same bits (the same init, gather and train step as group_train_replica).
#pragma once

#include <cmath>

#include "underspec/core/group_trainer.hpp"

namespace underspec {

// Returns true with *epoch (0-based) and *step (1-based within its epoch) of the first step
// after which a parameter is not finite, st.params holding them as that step left them; false
// when every step left them finite (st.params: the trained ones).
template <int TM, int TN, class Group>
inline bool group_replay_until_non_finite(const Group& g, const NetShape& shape, const TrainRun& run,
                                          const ReplicaJob& job, const DatasetView& data, const ReplicaState& st,
                                          int* epoch, int* step) {
  static_assert(Group::kSerial, "the replay checks the parameters of one rank's step");
  struct NonFinite {};  // out of the step callback: the remaining epochs are not walked through
  const int n_params = param_count(shape);
  for (int i = 0; i < n_params; ++i) {
    st.params[i] = init_param(shape, job.seed, i);
    st.moment1[i] = 0.0f;
    st.moment2[i] = 0.0f;
  }
  int in_epoch = 0;
  try {
    for_each_epoch_minibatch(
        run, job, data.n, [&](std::uint32_t, const EpochPermutation&) { in_epoch = 0; },
        [&](std::uint32_t e, const EpochPermutation& perm, std::uint32_t start, std::uint32_t rows,
            const AdamStep& adam) {
          const int batch = static_cast<int>(rows);
          group_gather_rows(g, data, perm, job, run.augmentation_std, e, start, batch, st.buf.act[0], st.targets);
          group_train_step<TM, TN>(g, shape, st, batch, adam);
          ++in_epoch;
          for (int i = 0; i < n_params; ++i)
            if (!std::isfinite(st.params[i])) {
              *epoch = static_cast<int>(e);
              *step = in_epoch;
              throw NonFinite{};
            }
        });
  } catch (const NonFinite&) {
    return true;
  }
  return false;
}

}  // namespace underspec
