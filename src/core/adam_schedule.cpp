// The Adam/StepLR table (see adam_schedule.hpp).
#include "underspec/core/adam_schedule.hpp"

#include "underspec/core/group_trainer.hpp"

namespace underspec {

std::vector<AdamStep> make_adam_table(const TrainConfig& train, std::uint32_t n_train) {
  const AdamHyper hyper{train.lr, train.betas[0], train.betas[1], train.eps};
  const StepLr schedule{train.step_size, train.gamma};
  const int per_epoch = steps_per_epoch(n_train, train.batch_size);
  std::vector<AdamStep> table;
  table.reserve(static_cast<std::size_t>(train.epochs) * static_cast<std::size_t>(per_epoch));
  std::int64_t step = 0;
  for (int epoch = 0; epoch < train.epochs; ++epoch) {
    const double lr = step_lr(train.lr, schedule, epoch);
    for (int k = 0; k < per_epoch; ++k) table.push_back(make_adam_step(hyper, lr, ++step));
  }
  return table;
}

}  // namespace underspec
