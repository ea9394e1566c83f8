// Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11), the generator that
// cuRAND calls PHILOX4_32_10. Every draw is a pure function of (key, counter), so any
// sample of any replica can be recomputed alone, on either backend (docs/ARCHITECTURE.md).
#pragma once

#include <cmath>
#include <cstdint>

#include "underspec/core/hd.hpp"
#include "underspec/core/trig.hpp"

namespace underspec {

struct PhiloxKey {
  std::uint32_t k0, k1;
};
struct PhiloxCounter {
  std::uint32_t c0, c1, c2, c3;
};
struct PhiloxBlock {
  std::uint32_t v[4];
};

// b.v[k] without indexing the array at run time (which would put it in GPU local memory).
US_HD_INLINE std::uint32_t philox_word(const PhiloxBlock& b, std::uint32_t k) {
  return k == 0u ? b.v[0] : k == 1u ? b.v[1] : k == 2u ? b.v[2] : b.v[3];
}

// What a stream of random numbers is for; part of the key, so streams never overlap.
enum class Stream : std::uint32_t {
  dataset = 1,       // x1, x2 and the two noises of every SCM sample
  factor = 2,        // domain randomization's per-sample factor
  init = 3,          // initial parameters
  shuffle = 4,       // per-epoch permutation keys
  augmentation = 5,  // per-step noise added to x3
};

US_HD_INLINE PhiloxKey make_key(std::uint32_t seed, Stream stream) {
  return PhiloxKey{seed, static_cast<std::uint32_t>(stream)};
}

US_HD_INLINE void mulhilo32(std::uint32_t a, std::uint32_t b, std::uint32_t& hi, std::uint32_t& lo) {
  const std::uint64_t product = static_cast<std::uint64_t>(a) * b;
  hi = static_cast<std::uint32_t>(product >> 32);
  lo = static_cast<std::uint32_t>(product);
}

US_HD_INLINE PhiloxBlock philox4x32_10(PhiloxCounter ctr, PhiloxKey key) {
  constexpr std::uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr std::uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  std::uint32_t c0 = ctr.c0, c1 = ctr.c1, c2 = ctr.c2, c3 = ctr.c3;
  std::uint32_t k0 = key.k0, k1 = key.k1;
  US_UNROLL(10)
  for (int round = 0; round < 10; ++round) {
    std::uint32_t hi0, lo0, hi1, lo1;
    mulhilo32(kMul0, c0, hi0, lo0);
    mulhilo32(kMul1, c2, hi1, lo1);
    const std::uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return PhiloxBlock{{c0, c1, c2, c3}};
}

// Uniform on the open interval (0, 1) from the top 23 bits: (k + 0.5) * 2^-23 is exact in
// float (24 significant bits), so both backends produce the same value and never 0 or 1.
US_HD_INLINE float uniform_open01(std::uint32_t bits) {
  return (static_cast<float>(bits >> 9) + 0.5f) * (1.0f / 8388608.0f);
}

// Uniform on (0, 1) in double precision from 32 bits (for Box-Muller).
US_HD_INLINE double uniform_open01_double(std::uint32_t bits) {
  return (static_cast<double>(bits) + 0.5) * (1.0 / 4294967296.0);
}

struct Normal4 {
  float n[4];
};

// v.n[k] without indexing the array at run time (which would put it in GPU local memory).
US_HD_INLINE float normal4_pick(const Normal4& v, std::uint32_t k) {
  return k == 0u ? v.n[0] : k == 1u ? v.n[1] : k == 2u ? v.n[2] : v.n[3];
}

constexpr double kTwoPi = 6.283185307179586476925286766559;

// Four standard normals from one Philox block by Box-Muller, evaluated in double and rounded
// once to float. sin and cos are the project's own (trig.hpp), the same code on both
// backends; log and sqrt are the math library's (glibc, CUDA's libdevice), whose double
// results may differ in the last bit, which the rounding to float hides except when they
// straddle a float rounding boundary.
US_HD_INLINE Normal4 box_muller4(const PhiloxBlock& block) {
  Normal4 out;
  for (int pair = 0; pair < 2; ++pair) {
    const double u1 = uniform_open01_double(block.v[2 * pair]);
    const double u2 = uniform_open01_double(block.v[2 * pair + 1]);
    const double radius = sqrt(-2.0 * log(u1));
    const SinCos angle = sincos_0_2pi(kTwoPi * u2);
    out.n[2 * pair] = static_cast<float>(radius * angle.cos);
    out.n[2 * pair + 1] = static_cast<float>(radius * angle.sin);
  }
  return out;
}

US_HD_INLINE Normal4 normal4(PhiloxCounter ctr, PhiloxKey key) { return box_muller4(philox4x32_10(ctr, key)); }

// box_muller4(block).n[q] alone: its pair's logarithm and square root and one of cos or sin,
// a quarter of box_muller4's transcendental work, the same expression so the same bits.
US_HD_INLINE float box_muller_one(const PhiloxBlock& block, std::uint32_t q) {
  const bool second_pair = (q & 2u) != 0;
  const double u1 = uniform_open01_double(second_pair ? block.v[2] : block.v[0]);
  const double u2 = uniform_open01_double(second_pair ? block.v[3] : block.v[1]);
  const double radius = sqrt(-2.0 * log(u1));
  const SinCos angle = sincos_0_2pi(kTwoPi * u2);
  return static_cast<float>(radius * ((q & 1u) ? angle.sin : angle.cos));
}

}  // namespace underspec
