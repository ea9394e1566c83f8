// The networks: forward against a double-precision reference, gradients against central
// finite differences (with the active CPU kernels' products), and PyTorch's initialisation
// bounds. Every CPU level against the portable product: test_cpu_kernels.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "underspec/backends/cpu_kernels.hpp"
#include "underspec/backends/cpu_trainer.hpp"
#include "underspec/core/group_trainer.hpp"
#include "underspec/core/model.hpp"

namespace underspec {
namespace {

// The active CPU kernels' products, as a group's Gemm.
struct CpuGemm {
  const CpuKernels* kernels = &active_cpu_kernels();
  void operator()(const GemmArgs& g, int i_begin, int i_end, int j_begin, int j_end) const {
    kernels->gemm(g, i_begin, i_end, j_begin, j_end);
  }
  void transpose(const float* src, int rows, int cols, float* dst) const { kernels->transpose(src, rows, cols, dst); }
};

NetShape shape_of(std::vector<int> widths) {
  NetShape s;
  s.n_layers = static_cast<int>(widths.size()) - 1;
  for (std::size_t i = 0; i < widths.size(); ++i) s.width[i] = widths[i];
  return s;
}

// Mean squared error of a batch, everything in double, straight from the definitions.
double reference_loss(const NetShape& s, const std::vector<double>& params, const std::vector<float>& x,
                      const std::vector<float>& y, int batch, std::vector<double>* predictions = nullptr) {
  double loss = 0;
  for (int b = 0; b < batch; ++b) {
    std::vector<double> act(x.begin() + b * kFeatures, x.begin() + (b + 1) * kFeatures);
    for (int l = 1; l <= s.n_layers; ++l) {
      std::vector<double> next(s.width[l]);
      for (int j = 0; j < s.width[l]; ++j) {
        double z = params[bias_offset(s, l) + j];
        for (int k = 0; k < s.width[l - 1]; ++k) z += act[k] * params[weight_offset(s, l) + k * s.width[l] + j];
        next[j] = l < s.n_layers ? std::max(z, 0.0) : z;
      }
      act = next;
    }
    if (predictions) predictions->push_back(act[0]);
    loss += (act[0] - y[b]) * (act[0] - y[b]);
  }
  return loss / batch;
}

struct Batch {
  std::vector<float> x, y;
};

Batch random_batch(int batch, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  Batch b{std::vector<float>(batch * kFeatures), std::vector<float>(batch)};
  for (float& v : b.x) v = normal(rng);
  for (float& v : b.y) v = 3 * normal(rng);
  return b;
}

class ModelShapes : public ::testing::TestWithParam<std::vector<int>> {};

TEST_P(ModelShapes, ForwardMatchesDoubleReference) {
  const NetShape s = shape_of(GetParam());
  const int batch = 13;
  const Batch data = random_batch(batch, 1);
  std::vector<float> params = initial_params(s, 5);
  TrainWorkspace ws(s, batch);
  std::copy(data.x.begin(), data.x.end(), ws.buffers().act[0]);
  const BatchBuffers& buf = ws.buffers();
  group_forward<0, 0>(SerialGroup<CpuGemm>{}, s, params.data(), batch, [&](int l) { return buf.act[l]; });
  std::vector<double> expected;
  reference_loss(s, std::vector<double>(params.begin(), params.end()), data.x, data.y, batch, &expected);
  for (int b = 0; b < batch; ++b) EXPECT_NEAR(ws.buffers().act[s.n_layers][b], expected[b], 1e-5);
}

TEST_P(ModelShapes, GradientsMatchCentralFiniteDifferences) {
  const NetShape s = shape_of(GetParam());
  const int batch = 11;
  const Batch data = random_batch(batch, 2);
  std::vector<float> params = initial_params(s, 9);
  TrainWorkspace ws(s, batch);
  std::copy(data.x.begin(), data.x.end(), ws.buffers().act[0]);
  const BatchBuffers& buf = ws.buffers();
  group_forward<0, 0>(SerialGroup<CpuGemm>{}, s, params.data(), batch, [&](int l) { return buf.act[l]; });
  group_backward<0, 0>(SerialGroup<CpuGemm>{}, s, params.data(), data.y.data(), buf, batch, ws.grads());

  std::vector<double> p(params.begin(), params.end());
  const double h = 1e-6;
  double worst = 0;
  for (int i = 0; i < param_count(s); ++i) {
    const double saved = p[i];
    p[i] = saved + h;
    const double up = reference_loss(s, p, data.x, data.y, batch);
    p[i] = saved - h;
    const double down = reference_loss(s, p, data.x, data.y, batch);
    p[i] = saved;
    const double numeric = (up - down) / (2 * h);
    const double error = std::abs(ws.grads()[i] - numeric) / (1e-3 + std::abs(numeric));
    worst = std::max(worst, error);
    EXPECT_LT(error, 1e-3) << "parameter " << i << " analytic " << ws.grads()[i] << " numeric " << numeric;
  }
  RecordProperty("worst_relative_error", std::to_string(worst));
}

INSTANTIATE_TEST_SUITE_P(Shapes, ModelShapes,
                         ::testing::Values(std::vector<int>{3, 1}, std::vector<int>{3, 8, 1},
                                           std::vector<int>{3, 16, 9, 1}, std::vector<int>{3, 64, 64, 1}));

TEST(Gemm, TransposeMatchesDefinition) {
  for (auto [rows, cols] : {std::pair{64, 64}, std::pair{8, 16}, std::pair{5, 9}}) {
    std::vector<float> src(rows * cols), dst(rows * cols), expected(rows * cols);
    for (int i = 0; i < rows * cols; ++i) src[i] = static_cast<float>(i);
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) expected[c * rows + r] = src[r * cols + c];
    CpuGemm{}.transpose(src.data(), rows, cols, dst.data());
    EXPECT_EQ(dst, expected);
    PortableGemm{}.transpose(src.data(), rows, cols, dst.data());
    EXPECT_EQ(dst, expected);
  }
}

// gemm_tile<4, 4>'s 16-byte-load steps (the GPU's dense products; also run here) give each
// element the bits of one fmaf chain in ascending p, for every operand pattern they take:
// A read by columns or by rows, at the study's width 64 (constant strides) and at others,
// with P a multiple of 4 or not (the scalar loop finishes the rows path).
TEST(Gemm, VectorTileStepsGiveTheBitsOfOneFmafChain) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  for (const int width : {64, 12, 68})
    for (const int P : {64, 7, 1})
      for (const bool a_by_columns : {true, false}) {
        SCOPED_TRACE("width " + std::to_string(width) + ", P " + std::to_string(P) +
                     (a_by_columns ? ", A by columns" : ", A by rows"));
        if (!a_by_columns && P > width) continue;  // a row of A holds at most `width` values
        // A is 8 x P, stored P-major (A(i, p) at p * width + i) or row-major (i * width + p);
        // operator new's 16-byte alignment lets the vector steps apply.
        std::vector<float> a(static_cast<std::size_t>(std::max(P, 8)) * width), b(P * width), c(8 * width, -1.0f);
        for (float& x : a) x = normal(rng);
        for (float& x : b) x = normal(rng);
        ASSERT_TRUE(aligned16(a.data()) && aligned16(b.data()));
        const GemmArgs g{P,
                         a.data(),
                         a_by_columns ? 1 : width,
                         a_by_columns ? width : 1,
                         b.data(),
                         width,
                         c.data(),
                         width,
                         GemmInit::zero,
                         nullptr};
        for (int i0 = 0; i0 < 8; i0 += 4)
          for (int j0 = 0; j0 + 4 <= width; j0 += 4) gemm_tile<4, 4>(g, i0, j0);
        int mismatches = 0;
        for (int i = 0; i < 8; ++i)
          for (int j = 0; j < width; ++j) {
            float chain = 0.0f;
            for (int p = 0; p < P; ++p)
              chain = std::fmaf(a[i * g.a_row_stride + p * g.a_col_stride], b[p * width + j], chain);
            mismatches += c[i * width + j] != chain;
          }
        EXPECT_EQ(mismatches, 0);
      }
}

TEST(Init, FollowsPyTorchLinearDefaultBounds) {
  const NetShape s = shape_of({3, 64, 64, 1});
  const std::vector<float> p = initial_params(s, 0);
  for (int l = 1; l <= s.n_layers; ++l) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(s.width[l - 1]));
    double sum_sq = 0;
    const int begin = weight_offset(s, l), end = weight_offset(s, l + 1);
    for (int i = begin; i < end; ++i) {
      ASSERT_LE(std::abs(p[i]), bound);
      sum_sq += double(p[i]) * p[i];
    }
    if (end - begin > 1000) {
      EXPECT_NEAR(sum_sq / (end - begin), bound * bound / 3, 0.1 * bound * bound / 3);  // Var U(-a, a) = a^2 / 3
    }
  }
  EXPECT_EQ(p, initial_params(s, 0));
  EXPECT_NE(p, initial_params(s, 1));
  EXPECT_NE(initial_params(shape_of({3, 1}), 0)[0], p[0]);  // perceptron and MLP draw apart
}

}  // namespace
}  // namespace underspec
