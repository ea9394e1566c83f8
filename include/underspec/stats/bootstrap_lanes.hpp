// The host's fast path of the bootstrap: kBootstrapLanes resamples at once, each computed
// with exactly the operations of resample_statistic (bootstrap.hpp), in the same order, so
// the same bits. What changes is only how the work is laid out:
//   - the counts of the lanes' resamples are interleaved (count of value i in lane r at
//     i * kBootstrapLanes + r, one byte each), so one pass over the values feeds every
//     lane's own chain of additions: a lane's sums add the same terms in the same index
//     order as weighted_std, but the lanes' chains run side by side (a vector op each)
//     instead of one latency-bound chain at a time;
//   - the lanes' Philox blocks (counter (first + r, k / 4, side, 0)) are computed together,
//     in vector registers where the level has them (AVX2, AVX-512): the same 32-bit words;
//   - Spearman's tie runs are walked once for all lanes, and a rank is kept as the integer
//     2 * rank (exact: before + 0.5 * (drawn + 1) is a half-integer well below 2^52).
// A byte count wraps at 256 draws of one value (a group of hundreds drawing one value
// hundreds of times: never in practice, but possible). Then a lane's counts no longer add up
// to n; the readers check that and the lanes fall back to resample_statistic, so the result
// is exact whatever the draws.
//
// Compiled once per CPU level (src/backends/cpu/isa/cpu_kernels_isa.cpp): bootstrap_lanes is
// a template over a tag of the level's namespace and the rest is always_inline, so no copy
// compiled with -mavx512f is shared with another level.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "underspec/stats/bootstrap.hpp"

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace underspec {

namespace lanes_detail {

// Everything below is inlined into bootstrap_lanes: no vector crosses a call, whatever the level.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"

#define US_LANES_INLINE inline __attribute__((always_inline))

// The lanes' sums run in vectors of kWidth lanes, as wide as the level's registers: GCC
// spills a vector wider than them to the stack on every operation.
#if defined(__AVX512F__)
constexpr int kWidth = 8;
#elif defined(__AVX2__)
constexpr int kWidth = 4;
#else
constexpr int kWidth = 2;
#endif
constexpr int kParts = kBootstrapLanes / kWidth;
using VD = double __attribute__((vector_size(8 * kWidth)));
using VI = std::int32_t __attribute__((vector_size(4 * kWidth)));

// Counts of kWidth lanes from p, as ints. Into a reference: a vector passed or returned by
// value draws -Wpsabi on levels without it, though nothing here is ever called. (GCC's
// generic byte-to-int conversion goes one byte at a time: the levels' own widening instead.)
US_LANES_INLINE void load_counts(const std::uint8_t* p, VI& out) {
#if defined(__AVX512F__)
  out = reinterpret_cast<VI>(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
#elif defined(__AVX2__)
  std::int32_t word;
  std::memcpy(&word, p, sizeof word);
  out = reinterpret_cast<VI>(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(word)));
#else
  for (int r = 0; r < kWidth; ++r) out[r] = p[r];
#endif
}

US_LANES_INLINE void load_counts(const std::uint8_t* p, VD& out) {
  VI c;
  load_counts(p, c);
  out = __builtin_convertvector(c, VD);
}

US_LANES_INLINE void load_twice(const std::int32_t* p, VD& out) {
  VI t;
  std::memcpy(&t, p, sizeof t);
  out = __builtin_convertvector(t, VD);
}

#if defined(__AVX512F__)
// The maskz forms with every lane on: GCC 12's plain forms warn of an uninitialised value.
US_LANES_INLINE __m512i mul32(__m512i a, __m512i b) { return _mm512_maskz_mul_epu32(0xFF, a, b); }
US_LANES_INLINE __m512i srl32(__m512i a) { return _mm512_maskz_srli_epi64(0xFF, a, 32); }
#endif

#if defined(__AVX2__)
// Philox's round keys, each zero-extended to 64 bits: made once per resample group, not once
// per block (the vector paths broadcast them straight from memory).
struct RoundKeys {
  std::uint64_t k0[10], k1[10];
};

US_LANES_INLINE void round_keys(PhiloxKey key, RoundKeys& rk) {
  std::uint32_t k0 = key.k0, k1 = key.k1;
  for (int round = 0; round < 10; ++round) {
    rk.k0[round] = k0;
    rk.k1[round] = k1;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
}

// pos[w][r] = bootstrap_index(word w of Philox(counter (first + r, block, side, 0)), n) *
// kBootstrapLanes + r: where lane r's draw 4 * block + w is counted.
US_LANES_INLINE void draw_positions(const RoundKeys& rk, std::uint32_t first, std::uint32_t block, std::uint32_t side,
                                    int n, std::int32_t pos[4][kBootstrapLanes]) {
#if defined(__AVX512F__)
  // One 64-bit lane per resample, the 32-bit word in its low half: _mm512_mul_epu32 reads
  // only the low halves, so the high halves may hold anything until the words are used.
  const __mmask8 all = 0xFF;
  const __m512i m0 = _mm512_set1_epi64(0xD2511F53u), m1 = _mm512_set1_epi64(0xCD9E8D57u);
  __m512i c0 = _mm512_add_epi64(_mm512_set1_epi64(first), _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
  __m512i c1 = _mm512_set1_epi64(block), c2 = _mm512_set1_epi64(side), c3 = _mm512_setzero_si512();
  for (int round = 0; round < 10; ++round) {
    const __m512i p0 = mul32(m0, c0), p1 = mul32(m1, c2);
    c0 = _mm512_ternarylogic_epi64(srl32(p1), c1, _mm512_set1_epi64(static_cast<long long>(rk.k0[round])), 0x96);
    c2 = _mm512_ternarylogic_epi64(srl32(p0), c3, _mm512_set1_epi64(static_cast<long long>(rk.k1[round])), 0x96);
    c1 = p1;
    c3 = p0;
  }
  const __m512i nn = _mm512_set1_epi64(static_cast<std::uint32_t>(n));
  const __m512i lane = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
  const __m512i words[4] = {c0, c1, c2, c3};
  for (int w = 0; w < 4; ++w) {
    const __m512i index = srl32(mul32(words[w], nn));
    const __m512i p = _mm512_add_epi64(_mm512_maskz_slli_epi64(all, index, 3), lane);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(pos[w]), _mm512_maskz_cvtepi64_epi32(all, p));
  }
#elif defined(__AVX2__)
  // As above, two halves of four resamples.
  const __m256i m0 = _mm256_set1_epi64x(0xD2511F53u), m1 = _mm256_set1_epi64x(0xCD9E8D57u);
  const __m256i nn = _mm256_set1_epi64x(static_cast<std::uint32_t>(n));
  for (int half = 0; half < 2; ++half) {
    const __m256i lane = _mm256_setr_epi64x(4 * half, 4 * half + 1, 4 * half + 2, 4 * half + 3);
    __m256i c0 = _mm256_add_epi64(_mm256_set1_epi64x(first), lane);
    __m256i c1 = _mm256_set1_epi64x(block), c2 = _mm256_set1_epi64x(side), c3 = _mm256_setzero_si256();
    for (int round = 0; round < 10; ++round) {
      const __m256i p0 = _mm256_mul_epu32(m0, c0), p1 = _mm256_mul_epu32(m1, c2);
      c0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), c1),
                            _mm256_set1_epi64x(static_cast<long long>(rk.k0[round])));
      c2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), c3),
                            _mm256_set1_epi64x(static_cast<long long>(rk.k1[round])));
      c1 = p1;
      c3 = p0;
    }
    const __m256i words[4] = {c0, c1, c2, c3};
    for (int w = 0; w < 4; ++w) {
      const __m256i index = _mm256_srli_epi64(_mm256_mul_epu32(words[w], nn), 32);
      const __m256i p = _mm256_add_epi64(_mm256_slli_epi64(index, 3), lane);
      alignas(32) std::int64_t wide[4];
      _mm256_store_si256(reinterpret_cast<__m256i*>(wide), p);
      for (int r = 0; r < 4; ++r) pos[w][4 * half + r] = static_cast<std::int32_t>(wide[r]);
    }
  }
#endif
}
#endif  // __AVX2__

// bootstrap_counts of resamples first .. first + kBootstrapLanes - 1, interleaved, modulo 256:
// no test per draw (it cost a third of the draw loop); the readers below check instead that
// each lane's counts add up to n, which a wrapped count breaks.
US_LANES_INLINE void draw_counts(PhiloxKey key, std::uint32_t first, std::uint32_t side, int n, std::uint8_t* counts) {
  std::memset(counts, 0, static_cast<std::size_t>(n) * kBootstrapLanes);
#if defined(__AVX2__)
  // The positions of a chunk of blocks first, then their increments: the blocks' Philox
  // chains overlap each other instead of waiting behind a block's 32 increments.
  RoundKeys rk;
  round_keys(key, rk);
  constexpr int kBlocks = 32;
  std::int32_t pos[kBlocks][4][kBootstrapLanes];
  for (int k0 = 0; k0 < n; k0 += 4 * kBlocks) {
    const int draws = n - k0 < 4 * kBlocks ? n - k0 : 4 * kBlocks;
    for (int b = 0; 4 * b < draws; ++b)
      draw_positions(rk, first, static_cast<std::uint32_t>((k0 >> 2) + b), side, n, pos[b]);
    const std::int32_t* p = &pos[0][0][0];  // draw k0 + k of lane r at p[k * kBootstrapLanes + r]
    for (int j = 0; j < draws * kBootstrapLanes; ++j) ++counts[p[j]];
  }
#else
  // One lane's block at a time, counted at once: scalar Philox gains nothing from batching.
  for (int k = 0; k < n; k += 4) {
    const int words = n - k < 4 ? n - k : 4;
    for (int r = 0; r < kBootstrapLanes; ++r) {
      const PhiloxBlock b = philox4x32_10(
          PhiloxCounter{first + static_cast<std::uint32_t>(r), static_cast<std::uint32_t>(k >> 2), side, 0u}, key);
      ++counts[bootstrap_index(b.v[0], n) * kBootstrapLanes + r];
      if (words > 1) ++counts[bootstrap_index(b.v[1], n) * kBootstrapLanes + r];
      if (words > 2) ++counts[bootstrap_index(b.v[2], n) * kBootstrapLanes + r];
      if (words > 3) ++counts[bootstrap_index(b.v[3], n) * kBootstrapLanes + r];
    }
  }
#endif
}

US_LANES_INLINE bool all_equal(const VI (&v)[kParts], int n) {
  for (int h = 0; h < kParts; ++h)
    for (int r = 0; r < kWidth; ++r)
      if (v[h][r] != n) return false;
  return true;
}

// weighted_std of each lane: the same spread test, and the same sums in the same order. False
// (and `out` meaningless) when a count wrapped.
US_LANES_INLINE bool weighted_std_lanes(const double* v, const std::uint8_t* counts, int n, double* out) {
  if (n < 2) {
    for (int r = 0; r < kBootstrapLanes; ++r) out[r] = NAN;
    return true;
  }
  // The first sum of every lane, spread or not (a lane with one value returns 0 unsummed, as
  // weighted_std does), to check the counts on the way.
  VD sum[kParts] = {};
  VI total[kParts] = {};
  for (int i = 0; i < n; ++i) {
    US_UNROLL(8)
    for (int h = 0; h < kParts; ++h) {
      VI c;
      load_counts(counts + i * kBootstrapLanes + h * kWidth, c);
      total[h] += c;
      sum[h] += __builtin_convertvector(c, VD) * v[i];
    }
  }
  if (!all_equal(total, n)) return false;
  bool spread[kBootstrapLanes];
  bool any = false;
  for (int r = 0; r < kBootstrapLanes; ++r) {
    int first = 0;
    while (counts[first * kBootstrapLanes + r] == 0) ++first;
    bool s = false;
    for (int i = first + 1; i < n && !s; ++i) s = counts[i * kBootstrapLanes + r] != 0 && v[i] != v[first];
    spread[r] = s;
    any |= s;
  }
  if (!any) {
    for (int r = 0; r < kBootstrapLanes; ++r) out[r] = 0.0;
    return true;
  }
  VD mean[kParts], squares[kParts] = {};
  for (int h = 0; h < kParts; ++h) mean[h] = sum[h] / static_cast<double>(n);
  for (int i = 0; i < n; ++i) {
    US_UNROLL(8)
    for (int h = 0; h < kParts; ++h) {
      VD c;
      load_counts(counts + i * kBootstrapLanes + h * kWidth, c);
      const VD d = v[i] - mean[h];
      squares[h] += c * d * d;
    }
  }
  for (int r = 0; r < kBootstrapLanes; ++r)
    out[r] = spread[r] ? std::sqrt(squares[r / kWidth][r % kWidth] / (n - 1)) : 0.0;
  return true;
}

// resample_ranks of each lane as 2 * rank: one walk over the tie runs, which the counts do not
// change. False when a count wrapped (a lane's total, `before` at the end, is not n).
US_LANES_INLINE bool twice_ranks_lanes(const double* v, const int* order, const std::uint8_t* counts, int n,
                                       std::int32_t* twice) {
  VI before[kParts] = {};
  for (int begin = 0; begin < n;) {
    int end = begin;
    VI drawn[kParts] = {};
    for (; end < n && v[order[end]] == v[order[begin]]; ++end) {
      US_UNROLL(8)
      for (int h = 0; h < kParts; ++h) {
        VI c;
        load_counts(counts + order[end] * kBootstrapLanes + h * kWidth, c);
        drawn[h] += c;
      }
    }
    US_UNROLL(8)
    for (int h = 0; h < kParts; ++h) {
      const VI t = 2 * before[h] + drawn[h] + 1;
      for (int k = begin; k < end; ++k) std::memcpy(twice + order[k] * kBootstrapLanes + h * kWidth, &t, sizeof t);
      before[h] += drawn[h];
    }
    begin = end;
  }
  return all_equal(before, n);
}

US_LANES_INLINE bool spearman_lanes(const BootstrapData& d, const std::uint8_t* counts, std::int32_t* twice,
                                    double* out) {
  const int n = d.nx;
  std::int32_t* tx = twice;
  std::int32_t* ty = twice + static_cast<std::size_t>(n) * kBootstrapLanes;
  if (!twice_ranks_lanes(d.x, d.x_order, counts, n, tx)) return false;
  twice_ranks_lanes(d.y, d.y_order, counts, n, ty);
  const double m = 0.5 * (n + 1);
  VD sxy[kParts] = {}, sxx[kParts] = {}, syy[kParts] = {};
  for (int i = 0; i < n; ++i) {
    US_UNROLL(8)
    for (int h = 0; h < kParts; ++h) {
      const int at = i * kBootstrapLanes + h * kWidth;
      VD c, rx, ry;
      load_counts(counts + at, c);
      load_twice(tx + at, rx);
      load_twice(ty + at, ry);
      // 0.5 * (2 * rank) is the rank resample_ranks computes, exactly.
      const VD dx = 0.5 * rx - m;
      const VD dy = 0.5 * ry - m;
      sxy[h] += c * dx * dy;
      sxx[h] += c * dx * dx;
      syy[h] += c * dy * dy;
    }
  }
  for (int r = 0; r < kBootstrapLanes; ++r) {
    const double xy = sxy[r / kWidth][r % kWidth], xx = sxx[r / kWidth][r % kWidth], yy = syy[r / kWidth][r % kWidth];
    out[r] = (xx == 0.0 || yy == 0.0) ? NAN : xy / std::sqrt(xx * yy);
  }
  return true;
}

#undef US_LANES_INLINE
#pragma GCC diagnostic pop

}  // namespace lanes_detail

// out[r] = resample_statistic(statistic, d, key, first + r, ...) for r < kBootstrapLanes, bit
// for bit. Level is a tag type of the calling level's namespace (see the top of this file).
template <class Level>
void bootstrap_lanes(BootstrapStatistic statistic, const BootstrapData& d, PhiloxKey key, std::uint32_t first,
                     BootstrapLaneScratch s, double* out) {
  using namespace lanes_detail;
  std::uint8_t* cx = s.counts;
  std::uint8_t* cy = s.counts + static_cast<std::size_t>(d.nx) * kBootstrapLanes;
  draw_counts(key, first, 0u, d.nx, cx);
  if (statistic == BootstrapStatistic::two_sample_std_ratio) draw_counts(key, first, 1u, d.ny, cy);
  bool exact = true;
  double sx[kBootstrapLanes], sy[kBootstrapLanes];
  switch (statistic) {
    case BootstrapStatistic::std_dev:
      exact = weighted_std_lanes(d.x, cx, d.nx, out);
      break;
    case BootstrapStatistic::paired_std_ratio:
      exact = weighted_std_lanes(d.y, cx, d.nx, sy) && weighted_std_lanes(d.x, cx, d.nx, sx);
      break;
    case BootstrapStatistic::two_sample_std_ratio:
      exact = weighted_std_lanes(d.y, cy, d.ny, sy) && weighted_std_lanes(d.x, cx, d.nx, sx);
      break;
    case BootstrapStatistic::spearman:
      exact = spearman_lanes(d, cx, s.twice_ranks, out);
      break;
  }
  if (!exact) {  // a count wrapped: the reference, one resample at a time
    for (int r = 0; r < kBootstrapLanes; ++r)
      out[r] = resample_statistic(statistic, d, key, first + static_cast<std::uint32_t>(r), s.reference);
    return;
  }
  if (statistic == BootstrapStatistic::paired_std_ratio || statistic == BootstrapStatistic::two_sample_std_ratio)
    for (int r = 0; r < kBootstrapLanes; ++r) out[r] = ratio_of_stds(sy[r], sx[r]);
}

}  // namespace underspec
