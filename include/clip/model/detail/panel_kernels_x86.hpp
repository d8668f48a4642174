#pragma once
// The float panel kernels for AVX2+FMA and AVX-512F, compiled whatever the compiler's own
// target: each function carries the target attribute of its instruction set, so the program
// needs no -m flags and runs them only on CPUs that have them (clip/isa.hpp checks, once per
// load). They cannot use Eigen's packets, which are fixed by the compiler's target, so they
// spell the same loop as GenericKernel in intrinsics.
//
// Register budget per step: AVX2 has 16 ymm registers, so 6 tokens x 2 accumulators + 2
// weights + 1 broadcast; AVX-512 has 32 zmm, so 12 x 2 + 2 + 1. A panel is two registers wide:
// 16 floats for AVX2, 32 for AVX-512.

#include <clip/model/detail/panel_kernels.hpp>

#include <type_traits>

#if defined(CLIP_HAVE_X86_KERNELS)

// GCC 12 warns that the intrinsics headers' own placeholder vectors (`__m512 __Y = __Y;`) are
// uninitialised once they are inlined into a function with a target attribute; they are not read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#define CLIP_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define CLIP_TARGET_AVX512 __attribute__((target("avx512f")))

namespace clip::detail {

struct Avx2Kernel {
  static constexpr Eigen::Index width = 16;
  static constexpr int max_rows = 6;

  /// One depth step: x[0, Rows) times the panel's row w, onto the accumulators.
  template <int Rows>
  CLIP_TARGET_AVX2 __attribute__((always_inline)) static inline void step(const float* x, const float* w, __m256* low,
                                                                          __m256* high) {
    const __m256 w_low = _mm256_load_ps(w);
    const __m256 w_high = _mm256_load_ps(w + 8);
#pragma GCC unroll 12
    for (int t = 0; t < Rows; ++t) {
      const __m256 xt = _mm256_broadcast_ss(x + t);
      low[t] = _mm256_fmadd_ps(xt, w_low, low[t]);
      high[t] = _mm256_fmadd_ps(xt, w_high, high[t]);
    }
  }

  template <int Rows>
  CLIP_TARGET_AVX2 static void run(const float* x, const float* w, Eigen::Index depth, float* out,
                                   Eigen::Index out_stride, bool accumulate, Prefetch fetch) {
    __m256 low[Rows], high[Rows];  // NOLINT: outputs [0, 8) and [8, 16) of each token
#pragma GCC unroll 12
    for (int t = 0; t < Rows; ++t) low[t] = high[t] = _mm256_setzero_ps();
    Eigen::Index k = 0;
    const Eigen::Index groups = fetch.groups(depth);
    for (Eigen::Index g = 0; g < groups; ++g) {
      fetch.issue();
      for (Eigen::Index j = 0; j < fetch.every; ++j, ++k) step<Rows>(x + k * Rows, w + k * width, low, high);
    }
    for (; k < depth; ++k) step<Rows>(x + k * Rows, w + k * width, low, high);
#pragma GCC unroll 12
    for (int t = 0; t < Rows; ++t) {
      float* row = out + t * out_stride;
      if (accumulate) {
        low[t] = _mm256_add_ps(low[t], _mm256_loadu_ps(row));
        high[t] = _mm256_add_ps(high[t], _mm256_loadu_ps(row + 8));
      }
      _mm256_storeu_ps(row, low[t]);
      _mm256_storeu_ps(row + 8, high[t]);
    }
  }
};

struct Avx512Kernel {
  static constexpr Eigen::Index width = 32;
  static constexpr int max_rows = 12;

  /// One depth step: x[0, Rows) times the panel's row w, onto the accumulators.
  template <int Rows>
  CLIP_TARGET_AVX512 __attribute__((always_inline)) static inline void step(const float* x, const float* w, __m512* low,
                                                                            __m512* high) {
    const __m512 w_low = _mm512_load_ps(w);
    const __m512 w_high = _mm512_load_ps(w + 16);
#pragma GCC unroll 12
    for (int t = 0; t < Rows; ++t) {
      const __m512 xt = _mm512_set1_ps(x[t]);
      low[t] = _mm512_fmadd_ps(xt, w_low, low[t]);
      high[t] = _mm512_fmadd_ps(xt, w_high, high[t]);
    }
  }

  template <int Rows>
  CLIP_TARGET_AVX512 static void run(const float* x, const float* w, Eigen::Index depth, float* out,
                                     Eigen::Index out_stride, bool accumulate, Prefetch fetch) {
    __m512 low[Rows], high[Rows];  // NOLINT: outputs [0, 16) and [16, 32) of each token
#pragma GCC unroll 12
    for (int t = 0; t < Rows; ++t) low[t] = high[t] = _mm512_setzero_ps();
    Eigen::Index k = 0;
    const Eigen::Index groups = fetch.groups(depth);
    for (Eigen::Index g = 0; g < groups; ++g) {
      fetch.issue();
      for (Eigen::Index j = 0; j < fetch.every; ++j, ++k) step<Rows>(x + k * Rows, w + k * width, low, high);
    }
    for (; k < depth; ++k) step<Rows>(x + k * Rows, w + k * width, low, high);
#pragma GCC unroll 12
    for (int t = 0; t < Rows; ++t) {
      float* row = out + t * out_stride;
      if (accumulate) {
        low[t] = _mm512_add_ps(low[t], _mm512_loadu_ps(row));
        high[t] = _mm512_add_ps(high[t], _mm512_loadu_ps(row + 16));
      }
      _mm512_storeu_ps(row, low[t]);
      _mm512_storeu_ps(row + 16, high[t]);
    }
  }
};

// exp(x) for float lanes, Cephes' method (as Eigen's pexp): x = n ln 2 + r with n = round(x /
// ln 2) and |r| <= ln 2 / 2, exp(r) by a degree-7 polynomial (1 + r + r^2 P(r)), times 2^n.
// x is clamped so that 2^n stays a normal float: exp saturates at ~2.4e38 and ~1.2e-38, far
// beyond what QuickGELU's x / (1 + exp(-1.702 x)) can tell apart from 0 or inf.
struct ExpConstants {
  static constexpr float lowest = -87.3365f, highest = 88.3762f;
  static constexpr float log2e = 1.44269504088896341f;
  static constexpr float ln2_high = 0.693359375f, ln2_low = -2.12194440e-4f;  // ln 2 = high + low
  static constexpr float p0 = 1.9875691500e-4f, p1 = 1.3981999507e-3f, p2 = 8.3334519073e-3f, p3 = 4.1665795894e-2f,
                         p4 = 1.6666665459e-1f, p5 = 5.0000001201e-1f;
};

CLIP_TARGET_AVX2 inline __m256 exp_avx2(__m256 x) {
  using C = ExpConstants;
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(C::lowest)), _mm256_set1_ps(C::highest));
  const __m256 n =
      _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(C::log2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(C::ln2_high), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(C::ln2_low), r);
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(C::p0), r, _mm256_set1_ps(C::p1));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C::p2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C::p3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C::p4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C::p5));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(exponent));
}

CLIP_TARGET_AVX512 inline __m512 exp_avx512(__m512 x) {
  using C = ExpConstants;
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(C::lowest)), _mm512_set1_ps(C::highest));
  const __m512 n =
      _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(C::log2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(C::ln2_high), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(C::ln2_low), r);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(C::p0), r, _mm512_set1_ps(C::p1));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C::p2));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C::p3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C::p4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C::p5));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

// QuickGELU, x / (1 + exp(-1.702 x)), as layers.hpp's quick_gelu; the last partial register
// through a lane mask. (No lambdas: GCC does not give them the enclosing target attribute.)
CLIP_TARGET_AVX2 inline __m256 quick_gelu_lanes_avx2(__m256 x) {
  const __m256 e = exp_avx2(_mm256_mul_ps(x, _mm256_set1_ps(-1.702f)));
  return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

CLIP_TARGET_AVX512 inline __m512 quick_gelu_lanes_avx512(__m512 x) {
  const __m512 e = exp_avx512(_mm512_mul_ps(x, _mm512_set1_ps(-1.702f)));
  return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

CLIP_TARGET_AVX2 inline void quick_gelu_avx2(float* values, Eigen::Index count) {
  Eigen::Index i = 0;
  for (; i + 8 <= count; i += 8) _mm256_storeu_ps(values + i, quick_gelu_lanes_avx2(_mm256_loadu_ps(values + i)));
  if (i < count) {
    const __m256i lanes = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count - i)), lanes);
    _mm256_maskstore_ps(values + i, mask, quick_gelu_lanes_avx2(_mm256_maskload_ps(values + i, mask)));
  }
}

CLIP_TARGET_AVX512 inline void quick_gelu_avx512(float* values, Eigen::Index count) {
  Eigen::Index i = 0;
  for (; i + 16 <= count; i += 16) _mm512_storeu_ps(values + i, quick_gelu_lanes_avx512(_mm512_loadu_ps(values + i)));
  if (i < count) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (count - i)) - 1);
    _mm512_mask_storeu_ps(values + i, mask, quick_gelu_lanes_avx512(_mm512_maskz_loadu_ps(mask, values + i)));
  }
}

template <typename Kernel>
const ProductKernels<float>& x86_kernels(Isa isa, void (*quick_gelu)(float*, Eigen::Index)) {
  static const ProductKernels<float> kernels{
      isa, Kernel::width, Kernel::max_rows,
      kernel_rows<float, Kernel>(std::make_integer_sequence<int, Kernel::max_rows>()), quick_gelu};
  return kernels;
}

}  // namespace clip::detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif  // CLIP_HAVE_X86_KERNELS

namespace clip::detail {

/// The kernels a model packed for `isa` uses. Only float has ISA-specific kernels; double
/// (the tests' reference) always takes the generic ones.
template <typename Scalar>
const ProductKernels<Scalar>& product_kernels(Isa isa) {
#if defined(CLIP_HAVE_X86_KERNELS)
  if constexpr (std::is_same_v<Scalar, float>) {
    if (isa == Isa::avx512) return x86_kernels<Avx512Kernel>(isa, &quick_gelu_avx512);
    if (isa == Isa::avx2) return x86_kernels<Avx2Kernel>(isa, &quick_gelu_avx2);
  }
#endif
  (void)isa;
  return generic_kernels<Scalar>();
}

}  // namespace clip::detail
