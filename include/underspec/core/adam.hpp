// Adam with PyTorch's update rule (bias-corrected, eps added after the square root) and the
// StepLR schedule. The per-step scalars are computed once in double, as PyTorch does in
// Python, then applied element-wise in float by both backends.
#pragma once

#include <cmath>
#include <cstdint>

#include "underspec/core/hd.hpp"

namespace underspec {

struct AdamHyper {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

struct StepLr {
  int step_size = 10;  // epochs
  double gamma = 0.5;
};

// Learning rate during `epoch` (0-based): lr * gamma^floor(epoch / step_size).
inline double step_lr(double lr, const StepLr& schedule, int epoch) {
  return lr * std::pow(schedule.gamma, epoch / schedule.step_size);
}

// The scalars of Adam step number `step` (1-based) at learning rate `lr`.
struct AdamStep {
  float beta1, beta2;
  float one_minus_beta1, one_minus_beta2;
  float step_size;       // lr / (1 - beta1^step)
  float bias2_sqrt_inv;  // 1 / sqrt(1 - beta2^step)
  float eps;
};

inline AdamStep make_adam_step(const AdamHyper& h, double lr, std::int64_t step) {
  const double bias1 = 1.0 - std::pow(h.beta1, static_cast<double>(step));
  const double bias2 = 1.0 - std::pow(h.beta2, static_cast<double>(step));
  return AdamStep{static_cast<float>(h.beta1),       static_cast<float>(h.beta2),
                  static_cast<float>(1.0 - h.beta1), static_cast<float>(1.0 - h.beta2),
                  static_cast<float>(lr / bias1),    static_cast<float>(1.0 / std::sqrt(bias2)),
                  static_cast<float>(h.eps)};
}

// One Adam update of a single parameter; m and v are its first and second moments.
US_HD_INLINE void adam_update(float& param, float grad, float& m, float& v, const AdamStep& s) {
  m = fmaf(s.one_minus_beta1, grad, s.beta1 * m);
  v = fmaf(s.one_minus_beta2 * grad, grad, s.beta2 * v);
  const float denom = sqrtf(v) * s.bias2_sqrt_inv + s.eps;
  param = param - s.step_size * (m / denom);
}

// adam_update of a parameter and its moments behind pointers: loaded first, stored last.
// Through references the compiler, unable to tell the pointers apart, would store and
// reload between the steps (GPU memory round trips). Same arithmetic, same bits.
US_HD_INLINE void adam_update_at(float* param, float grad, float* m, float* v, const AdamStep& s) {
  float p = *param, m_value = *m, v_value = *v;
  adam_update(p, grad, m_value, v_value, s);
  *param = p;
  *m = m_value;
  *v = v_value;
}

// Adam over a contiguous range of parameters (vectorises on the CPU).
US_HD_INLINE void adam_update_range(float* params, const float* grads, float* m, float* v, int count,
                                    const AdamStep& s) {
  for (int i = 0; i < count; ++i) adam_update(params[i], grads[i], m[i], v[i], s);
}

}  // namespace underspec
