// Adam against hand-computed steps (PyTorch's rule) and the StepLR schedule.
#include <gtest/gtest.h>

#include <cmath>

#include "underspec/core/adam.hpp"

namespace underspec {
namespace {

TEST(Adam, FirstThreeStepsMatchHandComputation) {
  const AdamHyper h{0.1, 0.9, 0.999, 1e-8};
  float p = 1.0f, m = 0.0f, v = 0.0f;
  const double grads[3] = {0.5, -0.25, 2.0};
  // By hand, in double: m_t = b1 m + (1-b1) g; v_t = b2 v + (1-b2) g^2;
  // p -= lr / (1 - b1^t) * m_t / (sqrt(v_t) / sqrt(1 - b2^t) + eps).
  double pe = 1.0, me = 0.0, ve = 0.0;
  for (int t = 1; t <= 3; ++t) {
    const double g = grads[t - 1];
    me = 0.9 * me + 0.1 * g;
    ve = 0.999 * ve + 0.001 * g * g;
    pe -= 0.1 / (1 - std::pow(0.9, t)) * me / (std::sqrt(ve) / std::sqrt(1 - std::pow(0.999, t)) + 1e-8);
    adam_update(p, static_cast<float>(g), m, v, make_adam_step(h, h.lr, t));
    EXPECT_NEAR(m, me, 1e-7);
    EXPECT_NEAR(v, ve, 1e-9);
    EXPECT_NEAR(p, pe, 2e-7) << "step " << t;
  }
  // Step one moves by exactly lr against the sign of the gradient (bias correction).
  float q = 0.0f, mq = 0.0f, vq = 0.0f;
  adam_update(q, -3.0f, mq, vq, make_adam_step(h, h.lr, 1));
  EXPECT_NEAR(q, 0.1f, 1e-6);
}

TEST(Adam, HandValuesOfTheFirstStep) {
  // g = 0.5: m = 0.05, v = 0.00025, m_hat = 0.5, v_hat = 0.25, step = 0.1 * 0.5 / 0.5.
  float p = 1.0f, m = 0.0f, v = 0.0f;
  adam_update(p, 0.5f, m, v, make_adam_step(AdamHyper{0.1, 0.9, 0.999, 1e-8}, 0.1, 1));
  EXPECT_FLOAT_EQ(m, 0.05f);
  EXPECT_FLOAT_EQ(v, 0.00025f);
  EXPECT_NEAR(p, 0.9f, 1e-6);
}

TEST(StepLr, HalvesEveryTenEpochs) {
  const StepLr schedule{10, 0.5};
  EXPECT_DOUBLE_EQ(step_lr(1e-3, schedule, 0), 1e-3);
  EXPECT_DOUBLE_EQ(step_lr(1e-3, schedule, 9), 1e-3);
  EXPECT_DOUBLE_EQ(step_lr(1e-3, schedule, 10), 5e-4);
  EXPECT_DOUBLE_EQ(step_lr(1e-3, schedule, 19), 5e-4);
  EXPECT_DOUBLE_EQ(step_lr(1e-3, schedule, 20), 2.5e-4);
  EXPECT_DOUBLE_EQ(step_lr(1e-3, schedule, 29), 2.5e-4);
  EXPECT_DOUBLE_EQ(step_lr(1.0, StepLr{3, 0.1}, 7), 0.1 * 0.1);
}

}  // namespace
}  // namespace underspec
