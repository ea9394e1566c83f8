// Per-epoch shuffles: a bijection on [0, n) for every n, different per epoch and seed, and
// without visible bias in where a sample lands.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "underspec/core/permutation.hpp"

namespace underspec {
namespace {

class PermutationSizes : public ::testing::TestWithParam<std::uint32_t> {};

TEST_P(PermutationSizes, IsABijection) {
  const std::uint32_t n = GetParam();
  for (std::uint32_t epoch = 0; epoch < 3; ++epoch) {
    const EpochPermutation p = make_epoch_permutation(n, 7, epoch);
    std::vector<int> seen(n, 0);
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint32_t j = permuted_index(p, i);
      ASSERT_LT(j, n);
      seen[j]++;
    }
    for (std::uint32_t j = 0; j < n; ++j) ASSERT_EQ(seen[j], 1) << "n " << n << " index " << j;
  }
}

// The CPU's batched form takes every position on the same walk as permuted_index, for any
// start and count (chunks that straddle the end of the domain's first pass included).
TEST_P(PermutationSizes, BatchedIndicesEqualOneAtATime) {
  const std::uint32_t n = GetParam();
  const EpochPermutation p = make_epoch_permutation(n, 11, 4);
  for (const std::uint32_t count : {1u, 7u, 64u, 200u}) {
    for (std::uint32_t first = 0; first < n; first += count) {
      const std::uint32_t c = first + count <= n ? count : n - first;
      std::vector<std::uint32_t> batched(c);
      permuted_indices(p, first, static_cast<int>(c), batched.data());
      for (std::uint32_t k = 0; k < c; ++k)
        ASSERT_EQ(batched[k], permuted_index(p, first + k)) << "n " << n << " position " << first + k;
    }
  }
}

// The perceptron lane's chunks: one evaluation per iteration, strided into a lane's column.
TEST_P(PermutationSizes, WalkedIndicesEqualOneAtATime) {
  const std::uint32_t n = GetParam();
  const EpochPermutation p = make_epoch_permutation(n, 5, 2);
  for (const std::uint32_t count : {1u, 16u, 33u}) {
    for (std::uint32_t first = 0; first < n; first += count) {
      const std::uint32_t c = first + count <= n ? count : n - first;
      constexpr int kStride = 3;
      std::vector<std::uint32_t> column(c * kStride, 0xdeadbeefu);
      walked_indices(p, first, static_cast<int>(c), column.data(), kStride);
      for (std::uint32_t k = 0; k < c; ++k)
        ASSERT_EQ(column[k * kStride], permuted_index(p, first + k)) << "n " << n << " position " << first + k;
      for (std::size_t e = 0; e < column.size(); ++e) {
        if (e % kStride != 0) {
          ASSERT_EQ(column[e], 0xdeadbeefu) << "wrote outside its column";
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, PermutationSizes, ::testing::Values(1u, 2u, 3u, 5u, 63u, 64u, 65u, 4097u, 5000u));

TEST(Permutation, DiffersAcrossEpochsAndSeeds) {
  const std::uint32_t n = 5000;
  auto order = [&](std::uint32_t seed, std::uint32_t epoch) {
    const EpochPermutation p = make_epoch_permutation(n, seed, epoch);
    std::vector<std::uint32_t> v(n);
    for (std::uint32_t i = 0; i < n; ++i) v[i] = permuted_index(p, i);
    return v;
  };
  EXPECT_NE(order(0, 0), order(0, 1));
  EXPECT_NE(order(0, 0), order(1, 0));
  EXPECT_EQ(order(4, 9), order(4, 9));
}

TEST(Permutation, FirstPositionIsUniformOverEpochs) {
  const std::uint32_t n = 20, epochs = 20000;
  std::vector<int> counts(n, 0);
  for (std::uint32_t e = 0; e < epochs; ++e) counts[permuted_index(make_epoch_permutation(n, 1, e), 0)]++;
  double chi2 = 0;
  const double expected = double(epochs) / n;
  for (int c : counts) chi2 += (c - expected) * (c - expected) / expected;
  EXPECT_LT(chi2, 43.8);  // chi-square, 19 degrees of freedom, p = 0.001
}

TEST(Permutation, NeighboursAreNotKeptTogether) {
  // A weak shuffle keeps consecutive positions close; count how often they stay adjacent.
  const std::uint32_t n = 5000;
  const EpochPermutation p = make_epoch_permutation(n, 2, 0);
  int adjacent = 0;
  for (std::uint32_t i = 0; i + 1 < n; ++i) {
    const auto a = static_cast<long>(permuted_index(p, i)), b = static_cast<long>(permuted_index(p, i + 1));
    adjacent += std::abs(a - b) == 1;
  }
  EXPECT_LT(adjacent, 20);  // about 2 expected for a random permutation
}

}  // namespace
}  // namespace underspec
