// Group statistics against known small inputs (numpy's linear quantiles, sample std).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "underspec/stats/stats.hpp"

namespace underspec {
namespace {

TEST(Stats, QuartilesInterpolateLikeNumpy) {
  const std::vector<double> v{4, 1, 3, 2};
  const Summary s = summarize(v);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.q1, 1.75);
  EXPECT_DOUBLE_EQ(s.median, 2.5);
  EXPECT_DOUBLE_EQ(s.q3, 3.25);
  EXPECT_DOUBLE_EQ(s.max, 4);
  EXPECT_DOUBLE_EQ(s.mean, 2.5);
  EXPECT_EQ(s.count, 4);
}

TEST(Stats, SampleStandardDeviation) {
  const std::vector<double> v{2, 4, 4, 4, 5, 5, 7, 9};
  EXPECT_NEAR(summarize(v).std, std::sqrt(32.0 / 7.0), 1e-15);
  EXPECT_DOUBLE_EQ(summarize(v).median, 4.5);
}

TEST(Stats, OddCountMedianIsTheMiddleValue) {
  const std::vector<double> v{10, 0, 5, 7, 1};
  const Summary s = summarize(v);
  EXPECT_DOUBLE_EQ(s.median, 5);
  EXPECT_DOUBLE_EQ(s.q1, 1);
  EXPECT_DOUBLE_EQ(s.q3, 7);
}

TEST(Stats, SingleValueHasUndefinedSpreadAndEmptyIsNan) {
  const std::vector<double> one{3.5};
  EXPECT_TRUE(std::isnan(summarize(one).std));  // undefined, never 0
  EXPECT_EQ(summarize(one).q1, 3.5);
  EXPECT_TRUE(std::isnan(summarize(std::vector<double>{}).mean));
}

}  // namespace
}  // namespace underspec
