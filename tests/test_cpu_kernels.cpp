// The CPU kernels of every instruction-set level this machine runs (cpu_kernels.hpp): their
// products and whole sweeps bit-identical to the portable level, the choice made by
// UNDERSPEC_CPU_KERNELS, and what --version and summary.json say about it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "cli_fixture.hpp"
#include "underspec/backends/backend.hpp"
#include "underspec/backends/cpu_kernels.hpp"
#include "underspec/backends/cpu_trainer.hpp"
#include "underspec/core/model.hpp"

namespace underspec {
namespace {

std::vector<CpuIsa> levels_here() { return supported_cpu_isas(); }

std::string names(const std::vector<CpuIsa>& isas) {
  std::string s;
  for (const CpuIsa isa : isas) s.append(" ").append(isa_name(isa));
  return s;
}

TEST(CpuKernels, PortableIsAlwaysSupportedAndLevelsAreWidestFirst) {
  const std::vector<CpuIsa> here = levels_here();
  ASSERT_FALSE(here.empty());
  EXPECT_EQ(here.back(), CpuIsa::portable);
  for (std::size_t i = 1; i < here.size(); ++i) EXPECT_GT(static_cast<int>(here[i - 1]), static_cast<int>(here[i]));
  RecordProperty("levels", names(here));
#if defined(__x86_64__)
  // A CPU with AVX2 and FMA gets at least the avx2 level.
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    EXPECT_NE(std::find(here.begin(), here.end(), CpuIsa::avx2), here.end());
  }
#endif
  for (const CpuIsa isa : here) EXPECT_EQ(cpu_kernels(isa).isa, isa);
}

TEST(CpuKernels, TheVariableChoosesALevelTheCpuHas) {
  const std::vector<CpuIsa> avx2_cpu{CpuIsa::avx2, CpuIsa::portable};
  EXPECT_EQ(choose_cpu_isa(nullptr, avx2_cpu), CpuIsa::avx2);
  EXPECT_EQ(choose_cpu_isa("", avx2_cpu), CpuIsa::avx2);
  EXPECT_EQ(choose_cpu_isa("auto", avx2_cpu), CpuIsa::avx2);
  EXPECT_EQ(choose_cpu_isa("avx2", avx2_cpu), CpuIsa::avx2);
  EXPECT_EQ(choose_cpu_isa("portable", avx2_cpu), CpuIsa::portable);
  EXPECT_EQ(choose_cpu_isa("auto", {CpuIsa::portable}), CpuIsa::portable);
  EXPECT_EQ(choose_cpu_isa("avx512", {CpuIsa::avx512, CpuIsa::avx2, CpuIsa::portable}), CpuIsa::avx512);
  try {
    choose_cpu_isa("avx512", avx2_cpu);
    ADD_FAILURE() << "avx512 on a CPU without it";
  } catch (const CpuKernelsError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("UNDERSPEC_CPU_KERNELS=avx512"), std::string::npos) << what;
    EXPECT_NE(what.find("supports: avx2, portable"), std::string::npos) << what;
  }
  try {
    choose_cpu_isa("sse9", avx2_cpu);
    ADD_FAILURE() << "an unknown level";
  } catch (const CpuKernelsError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("UNDERSPEC_CPU_KERNELS=sse9"), std::string::npos) << what;
    EXPECT_NE(what.find("auto, avx512, avx2 or portable"), std::string::npos) << what;
  }
  EXPECT_THROW(choose_cpu_isa("AVX2", avx2_cpu), CpuKernelsError);  // names are exact
#if defined(__x86_64__)
  // The name --version and summary.json show can be pasted back.
  EXPECT_EQ(choose_cpu_isa(cpu_kernels(CpuIsa::portable).name, avx2_cpu), CpuIsa::portable);
  EXPECT_EQ(choose_cpu_isa("avx2+fma", avx2_cpu), CpuIsa::avx2);
#endif
}

// Every level's products and transposition against gemm_block / transpose_block, compiled
// here with the test's own flags.
TEST(CpuKernels, EveryLevelsProductsAreBitIdenticalToThePortableProduct) {
  for (const CpuIsa isa : levels_here()) {
    const CpuKernels& k = cpu_kernels(isa);
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> uniform(-1, 1);
    for (int M : {1, 5, 6, 12, 13, 16, 25, 47, 64, 100})
      for (int N : {1, 7, 8, 16, 24, 40, 64, 65, 96, 130})
        for (int P : {1, 3, 17, 64})
          for (GemmInit init : {GemmInit::zero, GemmInit::bias, GemmInit::accumulate})
            for (GemmEpilogue epilogue : {GemmEpilogue::none, GemmEpilogue::relu, GemmEpilogue::relu_mask}) {
              std::vector<float> A(M * P), B(P * N), bias(N), c_portable(M * N), c_level, mask(M * N);
              for (float& v : mask) v = uniform(rng);
              for (float& v : A) v = uniform(rng);
              for (float& v : B) v = uniform(rng);
              for (float& v : bias) v = uniform(rng);
              for (float& v : c_portable) v = uniform(rng);
              if (M * N > 3) {  // the epilogues' special cases: NaN and -0 become +0
                c_portable[0] = std::nanf("");
                mask[1] = -0.0f;
                c_portable[2] = -0.0f;
              }
              c_level = c_portable;
              const bool transposed_a = (M + N) % 2 == 0;  // exercise both stride patterns of A
              GemmArgs g{P,
                         A.data(),
                         transposed_a ? 1 : P,
                         transposed_a ? M : 1,
                         B.data(),
                         N,
                         c_portable.data(),
                         N,
                         init,
                         bias.data(),
                         epilogue,
                         mask.data()};
              PortableGemm{}(g, 0, M, 0, N);
              g.C = c_level.data();
              k.gemm(g, 0, M, 0, N);
              ASSERT_EQ(0, std::memcmp(c_portable.data(), c_level.data(), c_level.size() * sizeof(float)))
                  << k.name << ": M " << M << " N " << N << " P " << P;
              if (epilogue == GemmEpilogue::relu) {
                for (float v : c_level) ASSERT_FALSE(std::signbit(v));  // ReLU never leaves -0 or negatives
              }
            }
    for (auto [rows, cols] : {std::pair{64, 64}, std::pair{8, 16}, std::pair{5, 9}, std::pair{3, 64}}) {
      std::vector<float> src(rows * cols), dst(rows * cols), expected(rows * cols);
      for (int i = 0; i < rows * cols; ++i) src[i] = static_cast<float>(i);
      for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) expected[c * rows + r] = src[r * cols + c];
      k.transpose(src.data(), rows, cols, dst.data());
      EXPECT_EQ(dst, expected) << k.name;
    }
  }
}

// With P = 1 and GemmInit::accumulate a product is C[i][j] = fmaf(A[i], B[j], C[i][j]): every
// level's fused multiply-add against the C library's on hard cases. The portable level on
// x86-64 emulates it (cpu_gemm.hpp, soft_fmaf); double rounding would fail the ties below.
TEST(CpuKernels, EveryLevelsFusedMultiplyAddIsExact) {
  std::mt19937 rng(11);
  const auto random_bits = [&] {
    float f;
    do {
      const auto u = static_cast<std::uint32_t>(rng());
      std::memcpy(&f, &u, sizeof f);
    } while (std::isnan(f));
    return f;
  };
  std::uniform_real_distribution<float> uniform(-2, 2);
  std::vector<float> a, b;
  for (int k = 0; k < 8; ++k) {  // (1 + m 2^-12)(1 + n 2^-12): products with a bit exactly at half a float ulp
    a.push_back(1.0f + static_cast<float>(2 * k + 1) * 0x1p-12f);
    b.push_back(-1.0f - static_cast<float>(2 * k + 1) * 0x1p-12f);
  }
  for (float v : {0.0f, -0.0f, 1.0f, -1.0f, 0x1p-149f, 0x1p-126f, 3.4e38f, INFINITY, -INFINITY, 0x1.fffffep127f}) {
    a.push_back(v);
    b.push_back(v);
  }
  while (a.size() < 48) a.push_back(random_bits());
  while (a.size() < 64) a.push_back(uniform(rng));
  while (b.size() < 56) b.push_back(random_bits());
  while (b.size() < 71) b.push_back(uniform(rng));  // 71 columns: every tile width and remainder
  const int M = static_cast<int>(a.size()), N = static_cast<int>(b.size());
  std::vector<float> c(static_cast<std::size_t>(M) * N), expected(c.size());
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      const double product = static_cast<double>(a[i]) * b[j];
      float& cij = c[i * N + j];
      switch ((i + j) % 6) {
        case 0:  // break a tie by less than a double ulp
        {
          // ilogb of 0 or NaN is FP_ILOGB0 / FP_ILOGBNAN (INT_MIN here): take the smallest
          // subnormal instead of overflowing the exponent.
          const int exponent = std::ilogb(product);
          cij = std::ldexp(1.0f, exponent < -1000 ? -149 : exponent - 60) * ((i & 1) ? 1.0f : -1.0f);
        } break;
        case 1:  // cancel most of the product
          cij = -static_cast<float>(product);
          break;
        case 2:
          cij = -static_cast<float>(product) * (1.0f + 0x1p-23f);
          break;
        case 3:
          cij = random_bits();
          break;
        default:
          cij = uniform(rng);
      }
      if (!std::isfinite(cij)) cij = 1.0f;
      expected[i * N + j] = std::fma(a[i], b[j], cij);
    }
  for (const CpuIsa isa : levels_here()) {
    std::vector<float> out = c;
    const GemmArgs g{1, a.data(), 1, 1, b.data(), N, out.data(), N, GemmInit::accumulate, nullptr};
    cpu_kernels(isa).gemm(g, 0, M, 0, N);
    int mismatches = 0;
    for (std::size_t e = 0; e < out.size(); ++e) {
      const bool same = std::isnan(expected[e]) ? std::isnan(out[e]) : std::memcmp(&out[e], &expected[e], 4) == 0;
      if (!same && ++mismatches <= 5) {
        const std::size_t i = e / N, j = e % N;
        ADD_FAILURE() << isa_name(isa) << ": fma(" << std::hexfloat << a[i] << ", " << b[j] << ", " << c[e]
                      << ") = " << out[e] << ", expected " << expected[e] << std::defaultfloat;
      }
    }
    EXPECT_EQ(mismatches, 0) << isa_name(isa);
  }
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Small sweeps (both models, every regime, widths that take every tile shape and remainder,
// a last minibatch smaller than the others, stress domains) trained by each level.
TEST(CpuKernels, SweepsAreBitIdenticalOnEveryLevel) {
  const std::vector<CpuIsa> here = levels_here();
  if (here.size() < 2) GTEST_SKIP() << "only the portable level runs here";
  for (const std::vector<int>& hidden : {std::vector<int>{64, 64}, std::vector<int>{40, 24, 7}, std::vector<int>{80}}) {
    ExperimentConfig config;
    config.data.n_train = 300;
    config.data.n_test = 200;
    config.data.stress_factors = {0.05};
    config.train.epochs = 3;
    config.train.batch_size = 48;
    config.train.step_size = 2;
    config.mlp.hidden = hidden;
    config.sweep.seeds = 2;
    const Sweep sweep = make_sweep(config);
    const std::vector<ReplicaResult> reference =
        make_cpu_backend(2, CpuIsa::portable)->train_replicas(sweep, sweep.replicas);
    for (const CpuIsa isa : here) {
      if (isa == CpuIsa::portable) continue;
      const std::vector<ReplicaResult> results = make_cpu_backend(2, isa)->train_replicas(sweep, sweep.replicas);
      ASSERT_EQ(results.size(), reference.size());
      for (std::size_t i = 0; i < results.size(); ++i) {
        const ReplicaResult &a = reference[i], &b = results[i];
        ASSERT_EQ(a.params.size(), b.params.size());
        EXPECT_EQ(0, std::memcmp(a.params.data(), b.params.data(), a.params.size() * sizeof(float)))
            << isa_name(isa) << " replica " << i << " hidden " << hidden.size();
        EXPECT_TRUE(same_bits(a.iid_rmse, b.iid_rmse)) << isa_name(isa) << " replica " << i;
        EXPECT_TRUE(same_bits(a.ood_rmse, b.ood_rmse)) << isa_name(isa) << " replica " << i;
        ASSERT_EQ(a.stress_rmse.size(), 1u);
        ASSERT_EQ(b.stress_rmse.size(), 1u);
        EXPECT_TRUE(same_bits(a.stress_rmse[0], b.stress_rmse[0])) << isa_name(isa) << " replica " << i;
      }
    }
  }
}

TEST(CpuKernels, TheBackendNamesItsKernels) {
  EXPECT_EQ(make_cpu_backend(1, CpuIsa::portable)->kernels(), "portable (chosen by the caller)");
  const std::string active = make_cpu_backend(1)->kernels();
  EXPECT_EQ(active, cpu_kernels_description());
  EXPECT_EQ(active.rfind(active_cpu_kernels().name, 0), 0u) << active;
}

const std::string kTiny = "--set data.n_train=200 --set data.n_test=200 --set train.epochs=2 --set sweep.seeds=2 ";

TEST_F(Cli, CpuKernelsVariableForcesALevelWithTheSameBytes) {
  const CliResult version = run("--version", "-u UNDERSPEC_CPU_KERNELS");
  ASSERT_EQ(version.status, 0) << version.err;
  const std::string best = cpu_kernels(levels_here().front()).name;
  EXPECT_NE(version.out.find("\ncpu kernels: " + best + " (auto; this CPU supports"), std::string::npos) << version.out;

  std::string reference;
  for (const CpuIsa isa : levels_here()) {
    const std::string level = isa_name(isa), out = std::string("out-").append(level);
    const CliResult r = run("run " + kTiny + "--device cpu --out " + out, "UNDERSPEC_CPU_KERNELS=" + level);
    ASSERT_EQ(r.status, 0) << r.err;
    const std::string replicas = read(cwd() / out / "replicas.csv");
    if (reference.empty()) reference = replicas;
    EXPECT_EQ(replicas, reference) << level;
    const nlohmann::json j = nlohmann::json::parse(read(cwd() / out / "summary.json"));
    EXPECT_EQ(j.at("run").at("cpu_kernels"),
              std::string(cpu_kernels(isa).name).append(" (UNDERSPEC_CPU_KERNELS=").append(level).append(")"));
    const CliResult v = run("--version", "UNDERSPEC_CPU_KERNELS=" + level);
    EXPECT_NE(v.out.find("cpu kernels: " + std::string(cpu_kernels(isa).name) + " (UNDERSPEC_CPU_KERNELS="),
              std::string::npos)
        << v.out;
  }
}

TEST_F(Cli, AnUnusableCpuKernelsRequestFailsBeforeCreatingAnything) {
  std::vector<std::string> requests{"sse9"};
  for (const CpuIsa isa : {CpuIsa::avx512, CpuIsa::avx2}) {
    const std::vector<CpuIsa> here = levels_here();
    if (std::find(here.begin(), here.end(), isa) == here.end()) requests.push_back(isa_name(isa));
  }
  for (const std::string& request : requests) {
    const CliResult r = run("run " + kTiny + "--device cpu --out out", "UNDERSPEC_CPU_KERNELS=" + request);
    // A name that is no level is a typo, bad input (exit 2, as `--device gpu`); a level this
    // CPU lacks is a runtime failure (exit 1, README).
    EXPECT_EQ(r.status, request == "sse9" ? 2 : 1) << request;
    EXPECT_NE(r.err.find("underspec: error: UNDERSPEC_CPU_KERNELS=" + request + ": "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("portable"), std::string::npos) << r.err;  // what this CPU supports
    EXPECT_TRUE(cwd_entries().empty()) << request;
    const CliResult v = run("--version", "UNDERSPEC_CPU_KERNELS=" + request);
    EXPECT_EQ(v.status, 0);
    EXPECT_NE(v.out.find("cpu kernels: unusable: UNDERSPEC_CPU_KERNELS=" + request), std::string::npos) << v.out;
  }
}

}  // namespace
}  // namespace underspec
