// sin and cos in double for angles in [0, 2 pi] (Box-Muller's), written once for both
// backends. The math libraries' cos/sin accept any double, so on the GPU every kernel that
// draws a normal carried libdevice's Payne-Hanek reduction for huge arguments: never taken,
// but a 40-byte stack frame in every training kernel. Here the argument is reduced by the
// nearest multiple k <= 4 of pi/2 with a two-part pi/2 (k * the head is exact), and sin and
// cos of the remainder (|r| <= pi/4) are fdlibm's kernel polynomials: within an ulp or two
// of glibc, so the float normals Box-Muller rounds to are the same except when a double lands
// that close to a float rounding boundary (about one in 10^8; tests/test_rng.cpp counts).
#pragma once

#include <cmath>

#include "underspec/core/hd.hpp"

namespace underspec {

struct SinCos {
  double sin, cos;
};

// |r| <= pi/4: Taylor-like minimax polynomials (fdlibm's __kernel_sin / __kernel_cos
// coefficients, with the remainder's tail taken as 0).
US_HD_INLINE double sin_kernel(double r) {
  constexpr double S1 = -1.66666666666666324348e-01, S2 = 8.33333333332248946124e-03, S3 = -1.98412698298579493134e-04,
                   S4 = 2.75573137070700676789e-06, S5 = -2.50507602534068634195e-08, S6 = 1.58969099521155010221e-10;
  const double z = r * r;
  const double poly = S2 + z * (S3 + z * (S4 + z * (S5 + z * S6)));
  return r + (z * r) * (S1 + z * poly);
}

US_HD_INLINE double cos_kernel(double r) {
  constexpr double C1 = 4.16666666666666019037e-02, C2 = -1.38888888888741095749e-03, C3 = 2.48015872894767294178e-05,
                   C4 = -2.75573143513906633035e-07, C5 = 2.08757232129817482790e-09, C6 = -1.13596475577881948265e-11;
  const double z = r * r;
  const double tail = z * z * (C1 + z * (C2 + z * (C3 + z * (C4 + z * (C5 + z * C6)))));
  return 1.0 - (0.5 * z - tail);
}

// sin and cos of x in [0, 2 pi].
US_HD_INLINE SinCos sincos_0_2pi(double x) {
  constexpr double kTwoOverPi = 6.36619772367581382433e-01;
  constexpr double kPiOver2Head = 1.57079632673412561417e+00;  // first 33 bits of pi/2
  constexpr double kPiOver2Tail = 6.07710050650619224932e-11;  // pi/2 - head
  const double k = floor(x * kTwoOverPi + 0.5);                // 0..4
  const double r = (x - k * kPiOver2Head) - k * kPiOver2Tail;
  const double s = sin_kernel(r), c = cos_kernel(r);
  // Quadrant q: sin x = (s, c, -s, -c)[q], cos x = (c, -s, -c, s)[q], as selects.
  const int quadrant = static_cast<int>(k) & 3;
  const bool odd = (quadrant & 1) != 0;
  const double sin_part = odd ? c : s, cos_part = odd ? s : c;
  return {(quadrant & 2) != 0 ? -sin_part : sin_part, ((quadrant + 1) & 2) != 0 ? -cos_part : cos_part};
}

}  // namespace underspec
