// Per-epoch shuffles as a keyed bijection on [0, n): a 4-round balanced Feistel network
// over the next even power of two, with cycle walking back into [0, n). Any position of
// any epoch maps to its sample in O(1), without materialising or sorting the permutation,
// so a GPU thread and a CPU loop can both ask for "the sample at position p".
#pragma once

#include <cstdint>

#include "underspec/hd.hpp"
#include "underspec/rng.hpp"

namespace underspec {

struct EpochPermutation {
  std::uint32_t n;
  std::uint32_t half_bits;
  std::uint32_t half_mask;
  std::uint32_t round_keys[4];
};

US_HD_INLINE EpochPermutation make_epoch_permutation(std::uint32_t n, std::uint32_t seed, std::uint32_t epoch) {
  EpochPermutation p;
  p.n = n;
  std::uint32_t bits = 2;
  while (bits < 32 && (std::uint64_t{1} << bits) < n) bits += 2;
  p.half_bits = bits / 2;
  p.half_mask = (1u << p.half_bits) - 1u;
  const PhiloxBlock keys = philox4x32_10(PhiloxCounter{epoch, 0u, 0u, 0u}, make_key(seed, Stream::shuffle));
  for (int r = 0; r < 4; ++r) p.round_keys[r] = keys.v[r];
  return p;
}

// A 32-bit avalanche mix (murmur3's finaliser) of the half-block and the round key.
US_HD_INLINE std::uint32_t feistel_round(std::uint32_t half, std::uint32_t key) {
  std::uint32_t h = (half * 0x9E3779B1u) ^ key;
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return h;
}

US_HD_INLINE std::uint32_t feistel_encrypt(const EpochPermutation& p, std::uint32_t x) {
  std::uint32_t left = x >> p.half_bits, right = x & p.half_mask;
  for (int r = 0; r < 4; ++r) {
    const std::uint32_t next_right = left ^ (feistel_round(right, p.round_keys[r]) & p.half_mask);
    left = right;
    right = next_right;
  }
  return (left << p.half_bits) | right;
}

// The sample index at `position` (< n) of the epoch's shuffled order.
US_HD_INLINE std::uint32_t permuted_index(const EpochPermutation& p, std::uint32_t position) {
  std::uint32_t x = feistel_encrypt(p, position);
  while (x >= p.n) x = feistel_encrypt(p, x);  // cycle walking stays a bijection on [0, n)
  return x;
}

}  // namespace underspec
