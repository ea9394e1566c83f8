// `underspec bench` on a GPU (skipped without a device): the FMA probe kernel, the quick
// benchmark through the library and through the binary, with every variant's rows.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "../cli_fixture.hpp"
#include "cuda_benchmark.hpp"
#include "gpu_test_support.hpp"
#include "underspec/benchmark/benchmark.hpp"

namespace underspec {
namespace {

namespace bm = benchmark;

TEST(GpuBench, FmaProbeMeasuresAPlausiblePeak) {
  UNDERSPEC_REQUIRE_GPU();
  const cuda::GpuFmaPeak peak = cuda::measure_gpu_fma_peak(0.1);
  const bm::DeviceInfo device = cuda::cuda_device_info();
  EXPECT_GT(device.sm_count, 0);
  EXPECT_GT(device.clock_mhz, 0.0);
  EXPECT_FALSE(device.name.empty());
  EXPECT_GE(peak.blocks, device.sm_count);
  // At most 128 FP32 lanes per SM x 2 FLOP x the SM clock (+10% for boost reporting);
  // at least a tenth of it (a probe that does not fill the device).
  const double bound = 128.0 * 2 * device.sm_count * device.clock_mhz * 1e-3;
  EXPECT_LT(peak.gflops, 1.1 * bound) << device.name;
  EXPECT_GT(peak.gflops, 0.1 * bound) << device.name;
}

TEST(GpuBench, QuickBenchmarkTimesEveryVariant) {
  UNDERSPEC_REQUIRE_GPU();
  bm::BenchOptions options;
  options.quick = true;
  const bm::BenchReport report = bm::run_cuda_benchmark(options);
  EXPECT_EQ(report.device.kind, "cuda");
  EXPECT_GT(report.peak.gflops, 0.0);
  std::map<std::string, std::set<std::string>> variants;  // model -> variants
  std::size_t mlp_counts = 0;
  for (const bm::BenchCase& c : bm::cuda_cases(true)) mlp_counts += c.model == ModelKind::mlp;
  for (const bm::BenchRow& r : report.rows) {
    variants[r.model].insert(r.variant);
    EXPECT_GT(r.wall_ms, 0.0) << r.model << " " << r.variant << " " << r.replicas;
    EXPECT_GT(r.sample_steps_per_s, 0.0);
    EXPECT_GT(r.gflops, 0.0);
    // Training cannot beat the FMA units: the FLOP model counts what the kernels must do.
    EXPECT_LT(r.peak_fraction, 1.0) << r.model << " " << r.variant << " " << r.replicas;
  }
  EXPECT_EQ(variants["perceptron"], std::set<std::string>{"fused"});
  EXPECT_EQ(variants["mlp"], (std::set<std::string>{"fused", "cublas"})) << report.notes.size();
  EXPECT_EQ(report.rows.size(), bm::cuda_cases(true).size() + mlp_counts);
}

TEST_F(Cli, GpuBenchCommandWritesJson) {
  UNDERSPEC_REQUIRE_GPU();
  const CliResult r = run("bench --device cuda --quick --json bench.json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("device: CUDA"), std::string::npos) << r.out;
  const nlohmann::json j = nlohmann::json::parse(read(cwd() / "bench.json"));
  EXPECT_EQ(j.at("device").at("kind"), "cuda");
  EXPECT_GT(j.at("device").at("sm_count").get<int>(), 0);
  EXPECT_GT(j.at("peak").at("gflops").get<double>(), 0.0);
  EXPECT_FALSE(j.at("rows").empty());
  // auto picks the GPU when there is one.
  const CliResult a = run("bench --quick");
  ASSERT_EQ(a.status, 0) << a.err;
  EXPECT_NE(a.out.find("device: CUDA"), std::string::npos) << a.out;
}

}  // namespace
}  // namespace underspec
