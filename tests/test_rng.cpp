// Philox known-answer vectors and the moments of the derived uniforms and normals.
#include <Random123/philox.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "underspec/core/rng.hpp"

namespace underspec {
namespace {

TEST(Philox, KnownAnswerZeroCounterZeroKey) {
  const PhiloxBlock b = philox4x32_10(PhiloxCounter{0, 0, 0, 0}, PhiloxKey{0, 0});
  EXPECT_EQ(b.v[0], 0x6627e8d5u);
  EXPECT_EQ(b.v[1], 0xe169c58du);
  EXPECT_EQ(b.v[2], 0xbc57ac4cu);
  EXPECT_EQ(b.v[3], 0x9b00dbd8u);
}

TEST(Philox, KnownAnswerAllOnesAndPi) {
  // Random123's kat_vectors for philox4x32_10.
  PhiloxBlock b = philox4x32_10(PhiloxCounter{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                                PhiloxKey{0xffffffffu, 0xffffffffu});
  EXPECT_EQ(b.v[0], 0x408f276du);
  EXPECT_EQ(b.v[1], 0x41c83b0eu);
  EXPECT_EQ(b.v[2], 0xa20bc7c6u);
  EXPECT_EQ(b.v[3], 0x6d5451fdu);
  b = philox4x32_10(PhiloxCounter{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                    PhiloxKey{0xa4093822u, 0x299f31d0u});
  EXPECT_EQ(b.v[0], 0xd16cfe09u);
  EXPECT_EQ(b.v[1], 0x94fdccebu);
  EXPECT_EQ(b.v[2], 0x5001e420u);
  EXPECT_EQ(b.v[3], 0x24126ea1u);
}

TEST(Philox, MatchesRandom123OnManyInputs) {
  r123::Philox4x32_R<10> reference;
  std::uint32_t state = 12345;
  auto next = [&] { return state = state * 1664525u + 1013904223u; };
  for (int trial = 0; trial < 1000; ++trial) {
    const PhiloxCounter c{next(), next(), next(), next()};
    const PhiloxKey k{next(), next()};
    const auto expected = reference({{c.c0, c.c1, c.c2, c.c3}}, {{k.k0, k.k1}});
    const PhiloxBlock got = philox4x32_10(c, k);
    for (int i = 0; i < 4; ++i) ASSERT_EQ(got.v[i], expected.v[i]) << "trial " << trial;
  }
}

// Box-Muller's own sin and cos (trig.hpp): within an ulp of the C library's on its angles,
// and the float normals they give are the C library's, bit for bit.
TEST(BoxMuller, OwnSinCosMatchTheLibrary) {
  const auto ulps = [](double a, double b) {
    std::int64_t x = 0, y = 0;
    std::memcpy(&x, &a, sizeof x);
    std::memcpy(&y, &b, sizeof y);
    return (x < 0) != (y < 0) ? std::llabs(x) + std::llabs(y) : std::llabs(x - y);
  };
  // Box-Muller's angles closest to the multiples of pi/4, where the reduction and the
  // quadrants meet (angles are 2 pi (bits + 1/2) / 2^32: none is a multiple of pi/2).
  for (std::uint32_t eighth = 0; eighth <= 8; ++eighth)
    for (std::int64_t delta : {-2, -1, 0, 1}) {
      const std::int64_t bits = std::int64_t{eighth} * (std::int64_t{1} << 29) + delta;
      if (bits < 0 || bits > 0xffffffffLL) continue;
      const double x = kTwoPi * uniform_open01_double(static_cast<std::uint32_t>(bits));
      EXPECT_LE(ulps(sincos_0_2pi(x).sin, std::sin(x)), 1) << x;
      EXPECT_LE(ulps(sincos_0_2pi(x).cos, std::cos(x)), 1) << x;
    }
  int float_mismatches = 0;
  for (std::uint32_t c = 0; c < 500000; ++c) {
    const PhiloxBlock block = philox4x32_10(PhiloxCounter{c, 1u, 0u, 0u}, make_key(99u, Stream::dataset));
    const double radius = std::sqrt(-2.0 * std::log(uniform_open01_double(block.v[0])));
    const double angle = kTwoPi * uniform_open01_double(block.v[1]);
    const SinCos own = sincos_0_2pi(angle);
    ASSERT_LE(ulps(own.sin, std::sin(angle)), 1) << angle;
    ASSERT_LE(ulps(own.cos, std::cos(angle)), 1) << angle;
    float_mismatches += static_cast<float>(radius * own.sin) != static_cast<float>(radius * std::sin(angle));
    float_mismatches += static_cast<float>(radius * own.cos) != static_cast<float>(radius * std::cos(angle));
  }
  EXPECT_EQ(float_mismatches, 0);  // measured on 40 million angles (80 million normals): none
}

// The GPU's strided gather draws only the normal it uses: the same bits as the four.
TEST(BoxMuller, OneNormalEqualsItsPlaceInTheFour) {
  for (std::uint32_t c = 0; c < 200000; ++c) {
    const PhiloxBlock block =
        philox4x32_10(PhiloxCounter{c, 7u, 0u, 0u}, make_key(c * 2654435761u, Stream::augmentation));
    const Normal4 four = box_muller4(block);
    for (std::uint32_t q = 0; q < 4; ++q)
      ASSERT_EQ(box_muller_one(block, q), four.n[q]) << "counter " << c << " q " << q;
  }
}

TEST(Uniform, OpenIntervalAndExactEnds) {
  EXPECT_GT(uniform_open01(0u), 0.0f);
  EXPECT_LT(uniform_open01(0xffffffffu), 1.0f);
  EXPECT_GT(uniform_open01_double(0u), 0.0);
  EXPECT_LT(uniform_open01_double(0xffffffffu), 1.0);
}

TEST(Uniform, MomentsMatchU01) {
  const PhiloxKey key = make_key(7, Stream::dataset);
  const int n = 200000;
  double sum = 0, sum_sq = 0;
  for (int i = 0; i < n / 4; ++i) {
    const PhiloxBlock b = philox4x32_10(PhiloxCounter{static_cast<std::uint32_t>(i), 0, 0, 0}, key);
    for (std::uint32_t w : b.v) {
      const double u = uniform_open01(w);
      sum += u;
      sum_sq += u * u;
    }
  }
  const double mean = sum / n, var = sum_sq / n - mean * mean;
  EXPECT_NEAR(mean, 0.5, 5 * std::sqrt(1.0 / 12 / n));
  EXPECT_NEAR(var, 1.0 / 12, 0.002);
}

TEST(Normal, MomentsMatchStandardNormal) {
  const PhiloxKey key = make_key(11, Stream::augmentation);
  const int n = 400000;
  double m1 = 0, m2 = 0, m3 = 0, m4 = 0;
  for (int i = 0; i < n / 4; ++i) {
    const Normal4 z = normal4(PhiloxCounter{static_cast<std::uint32_t>(i), 3, 0, 0}, key);
    for (float f : z.n) {
      const double x = f;
      m1 += x;
      m2 += x * x;
      m3 += x * x * x;
      m4 += x * x * x * x;
    }
  }
  m1 /= n;
  m2 /= n;
  m3 /= n;
  m4 /= n;
  EXPECT_NEAR(m1, 0.0, 5 / std::sqrt(n));
  EXPECT_NEAR(m2, 1.0, 5 * std::sqrt(2.0 / n));
  EXPECT_NEAR(m3, 0.0, 5 * std::sqrt(15.0 / n));
  EXPECT_NEAR(m4, 3.0, 5 * std::sqrt(96.0 / n));
}

TEST(Normal, StreamsAndCountersAreIndependent) {
  const Normal4 a = normal4(PhiloxCounter{0, 0, 0, 0}, make_key(0, Stream::dataset));
  const Normal4 b = normal4(PhiloxCounter{0, 0, 0, 0}, make_key(0, Stream::init));
  const Normal4 c = normal4(PhiloxCounter{1, 0, 0, 0}, make_key(0, Stream::dataset));
  EXPECT_NE(a.n[0], b.n[0]);
  EXPECT_NE(a.n[0], c.n[0]);
}

}  // namespace
}  // namespace underspec
