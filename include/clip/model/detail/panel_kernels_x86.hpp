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

#if defined(CLIP_HAVE_X86_KERNELS)

#include <immintrin.h>

#define CLIP_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define CLIP_TARGET_AVX512 __attribute__((target("avx512f")))

namespace clip::detail {

struct Avx2Kernel {
  static constexpr Eigen::Index width = 16;
  static constexpr int max_rows = 6;

  template <int Rows>
  CLIP_TARGET_AVX2 static void run(const float* x, const float* w, Eigen::Index depth, float* out,
                                   Eigen::Index out_stride, bool accumulate, Prefetch fetch) {
    Eigen::Index countdown = 0;
    __m256 low[Rows], high[Rows];  // NOLINT: outputs [0, 8) and [8, 16) of each token
#pragma GCC unroll 12
    for (int t = 0; t < Rows; ++t) low[t] = high[t] = _mm256_setzero_ps();
    for (Eigen::Index k = 0; k < depth; ++k) {
      fetch.step(countdown);
      const __m256 w_low = _mm256_load_ps(w + k * width);
      const __m256 w_high = _mm256_load_ps(w + k * width + 8);
#pragma GCC unroll 12
      for (int t = 0; t < Rows; ++t) {
        const __m256 xt = _mm256_broadcast_ss(x + k * Rows + t);
        low[t] = _mm256_fmadd_ps(xt, w_low, low[t]);
        high[t] = _mm256_fmadd_ps(xt, w_high, high[t]);
      }
    }
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

  template <int Rows>
  CLIP_TARGET_AVX512 static void run(const float* x, const float* w, Eigen::Index depth, float* out,
                                     Eigen::Index out_stride, bool accumulate, Prefetch fetch) {
    Eigen::Index countdown = 0;
    __m512 low[Rows], high[Rows];  // NOLINT: outputs [0, 16) and [16, 32) of each token
#pragma GCC unroll 12
    for (int t = 0; t < Rows; ++t) low[t] = high[t] = _mm512_setzero_ps();
    for (Eigen::Index k = 0; k < depth; ++k) {
      fetch.step(countdown);
      const __m512 w_low = _mm512_load_ps(w + k * width);
      const __m512 w_high = _mm512_load_ps(w + k * width + 16);
#pragma GCC unroll 12
      for (int t = 0; t < Rows; ++t) {
        const __m512 xt = _mm512_set1_ps(x[k * Rows + t]);
        low[t] = _mm512_fmadd_ps(xt, w_low, low[t]);
        high[t] = _mm512_fmadd_ps(xt, w_high, high[t]);
      }
    }
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

template <typename Kernel>
const ProductKernels<float>& x86_kernels(Isa isa) {
  static const ProductKernels<float> kernels{
      isa, Kernel::width, Kernel::max_rows,
      kernel_rows<float, Kernel>(std::make_integer_sequence<int, Kernel::max_rows>())};
  return kernels;
}

}  // namespace clip::detail

#endif  // CLIP_HAVE_X86_KERNELS

namespace clip::detail {

/// The kernels a model packed for `isa` uses. Only float has ISA-specific kernels; double
/// (the tests' reference) always takes the generic ones.
template <typename Scalar>
const ProductKernels<Scalar>& product_kernels(Isa isa) {
#if defined(CLIP_HAVE_X86_KERNELS)
  if constexpr (std::is_same_v<Scalar, float>) {
    if (isa == Isa::avx512) return x86_kernels<Avx512Kernel>(isa);
    if (isa == Isa::avx2) return x86_kernels<Avx2Kernel>(isa);
  }
#endif
  (void)isa;
  return generic_kernels<Scalar>();
}

}  // namespace clip::detail
