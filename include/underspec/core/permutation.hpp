// Per-epoch shuffles as a keyed bijection on [0, n): four rounds of (xor key, multiply by an
// odd constant, xor-shift) over the next power of two, each a bijection modulo 2^bits, with
// cycle walking back into [0, n). Any position of any epoch maps to its sample in O(1),
// without materialising or sorting the permutation, so a GPU thread and a CPU loop can both
// ask for "the sample at position p". (A power-of-two domain keeps cycle walking under two
// evaluations on average.)
#pragma once

#include <cstdint>

#include "underspec/core/hd.hpp"
#include "underspec/core/rng.hpp"

namespace underspec {

struct EpochPermutation {
  std::uint32_t n;
  std::uint32_t mask;   // 2^bits - 1
  std::uint32_t shift;  // ceil(bits / 2)
  std::uint32_t round_keys[4];
  std::uint32_t multipliers[4];  // odd
};

US_HD_INLINE EpochPermutation make_epoch_permutation(std::uint32_t n, std::uint32_t seed, std::uint32_t epoch) {
  EpochPermutation p;
  p.n = n;
  std::uint32_t bits = 1;
  while (bits < 32 && (std::uint64_t{1} << bits) < n) ++bits;
  p.mask = static_cast<std::uint32_t>((std::uint64_t{1} << bits) - 1);
  p.shift = (bits + 1) / 2;
  const PhiloxKey key = make_key(seed, Stream::shuffle);
  const PhiloxBlock keys = philox4x32_10(PhiloxCounter{epoch, 0u, 0u, 0u}, key);
  const PhiloxBlock muls = philox4x32_10(PhiloxCounter{epoch, 1u, 0u, 0u}, key);
  for (int r = 0; r < 4; ++r) {
    p.round_keys[r] = keys.v[r];
    p.multipliers[r] = muls.v[r] | 1u;
  }
  return p;
}

US_HD_INLINE std::uint32_t permute_domain(const EpochPermutation& p, std::uint32_t x) {
  for (int r = 0; r < 4; ++r) {
    x = ((x ^ p.round_keys[r]) * p.multipliers[r]) & p.mask;
    x ^= x >> p.shift;
  }
  return x;
}

// The sample index at `position` (< n) of the epoch's shuffled order.
US_HD_INLINE std::uint32_t permuted_index(const EpochPermutation& p, std::uint32_t position) {
  std::uint32_t x = permute_domain(p, position);
  while (x >= p.n) x = permute_domain(p, x);  // cycle walking stays a bijection on [0, n)
  return x;
}

// permuted_index for positions first .. first + count - 1 into index[0], index[stride], ...,
// with one permute_domain evaluation per loop iteration, whichever position it serves. GPU
// lanes walking different permutations (a perceptron replica each) then wait for the
// longest TOTAL of `count` walks (about 1.6 count + a few evaluations) rather than, position
// by position, the longest of 32 walks (about 4.8 evaluations each).
US_HD_INLINE void walked_indices(const EpochPermutation& p, std::uint32_t first, int count, std::uint32_t* index,
                                 int stride) {
  std::uint32_t argument = first;
  for (int k = 0; k < count;) {
    const std::uint32_t x = permute_domain(p, argument);
    const bool inside = x < p.n;  // else the walk goes on from x (cycle walking)
    if (inside) index[(k++) * stride] = x;
    argument = inside ? first + static_cast<std::uint32_t>(k) : x;
  }
}

// permuted_index for `count` consecutive positions from `first`, into index[0..count): every
// position is permuted, then every result still outside [0, n) again, pass after pass, until
// none is. Each element takes the same walk as in permuted_index, but the passes have no
// data-dependent branch, so the loops vectorise (the CPU's minibatch gather).
US_HD_INLINE void permuted_indices(const EpochPermutation& p, std::uint32_t first, int count, std::uint32_t* index) {
  std::uint32_t outside = 0;
  for (int b = 0; b < count; ++b) {
    index[b] = permute_domain(p, first + static_cast<std::uint32_t>(b));
    outside |= static_cast<std::uint32_t>(index[b] >= p.n);
  }
  while (outside != 0) {
    outside = 0;
    for (int b = 0; b < count; ++b) {
      const std::uint32_t x = index[b];
      index[b] = x >= p.n ? permute_domain(p, x) : x;
      outside |= static_cast<std::uint32_t>(index[b] >= p.n);
    }
  }
}

}  // namespace underspec
