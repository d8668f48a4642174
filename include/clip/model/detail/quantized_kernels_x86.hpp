#pragma once
// The int8 kernels of q8 models for AVX2 and AVX-512 VNNI, compiled whatever the compiler's
// target (functions with target attributes, as panel_kernels_x86.hpp), picked at load.
//
// AVX2 has no int8 dot product into int32: vpmaddubsw multiplies unsigned by signed bytes and
// adds pairs into int16 with saturation, vpmaddwd then adds pairs of those into int32. With
// signed x and w the "sign trick" feeds it |w| (unsigned) and x carrying w's sign (vpsignb), whose
// products are x * w; both lie in [-127, 127], so a pair sums to at most 2 * 127 * 127 = 32258
// and never saturates (q8 never stores -128). AVX-512 VNNI's vpdpbusd does the whole 4-input dot
// product and accumulation in one instruction, but only unsigned by signed: the panels hold
// w + 128 as unsigned bytes and the kernel subtracts 128 * sum(x) per token afterwards.

#include <clip/model/detail/panel_kernels_x86.hpp>
#include <clip/model/detail/quantized_products.hpp>

#if defined(CLIP_HAVE_X86_KERNELS)

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#define CLIP_TARGET_AVX512_VNNI __attribute__((target("avx512f,avx512vnni")))

namespace clip::detail {

/// A token's 4 bytes of one group, as the int32 the kernels broadcast.
inline std::int32_t load_group(const std::int8_t* x) {
  std::int32_t bits;
  std::memcpy(&bits, x, 4);
  return bits;
}

// 16 outputs per panel (two registers of 8 int32 lanes, 4 inputs each), 4 tokens: 8
// accumulators, 2 weight and 2 |weight| registers, the broadcast and the int16 ones.
struct Avx2Q8Kernel {
  static constexpr Eigen::Index width = 16;
  static constexpr int max_rows = 4;

  template <int Rows>
  CLIP_TARGET_AVX2 static void run(const std::int8_t* x, const std::int8_t* w, Eigen::Index groups,
                                   const float* x_scales, const std::int32_t*, const float* w_scales, float* out,
                                   Eigen::Index out_stride, bool accumulate, Prefetch fetch) {
    Eigen::Index countdown = 0;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i low[Rows], high[Rows];  // NOLINT: int32 sums of outputs [0, 8) and [8, 16)
#pragma GCC unroll 4
    for (int t = 0; t < Rows; ++t) low[t] = high[t] = _mm256_setzero_si256();
    for (Eigen::Index g = 0; g < groups; ++g) {
      fetch.step(countdown);
      const __m256i w_low = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + g * width * kQ8Group));
      const __m256i w_high = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + g * width * kQ8Group + 32));
      const __m256i abs_low = _mm256_abs_epi8(w_low);
      const __m256i abs_high = _mm256_abs_epi8(w_high);
#pragma GCC unroll 4
      for (int t = 0; t < Rows; ++t) {
        const __m256i xt = _mm256_set1_epi32(load_group(x + (g * Rows + t) * kQ8Group));
        const __m256i pairs_low = _mm256_maddubs_epi16(abs_low, _mm256_sign_epi8(xt, w_low));
        const __m256i pairs_high = _mm256_maddubs_epi16(abs_high, _mm256_sign_epi8(xt, w_high));
        low[t] = _mm256_add_epi32(low[t], _mm256_madd_epi16(pairs_low, ones));
        high[t] = _mm256_add_epi32(high[t], _mm256_madd_epi16(pairs_high, ones));
      }
    }
    const __m256 scale_low = _mm256_loadu_ps(w_scales);
    const __m256 scale_high = _mm256_loadu_ps(w_scales + 8);
#pragma GCC unroll 4
    for (int t = 0; t < Rows; ++t) {
      float* row = out + t * out_stride;
      const __m256 xs = _mm256_set1_ps(x_scales[t]);
      __m256 value_low = _mm256_mul_ps(_mm256_cvtepi32_ps(low[t]), _mm256_mul_ps(xs, scale_low));
      __m256 value_high = _mm256_mul_ps(_mm256_cvtepi32_ps(high[t]), _mm256_mul_ps(xs, scale_high));
      if (accumulate) {
        value_low = _mm256_add_ps(value_low, _mm256_loadu_ps(row));
        value_high = _mm256_add_ps(value_high, _mm256_loadu_ps(row + 8));
      }
      _mm256_storeu_ps(row, value_low);
      _mm256_storeu_ps(row + 8, value_high);
    }
  }
};

// 32 outputs per panel (two registers of 16 int32 lanes), 12 tokens: 24 accumulators, 2 weight
// registers and the broadcast, as the float AVX-512 kernel.
struct Avx512VnniQ8Kernel {
  static constexpr Eigen::Index width = 32;
  static constexpr int max_rows = 12;

  template <int Rows>
  CLIP_TARGET_AVX512_VNNI static void run(const std::int8_t* x, const std::int8_t* w, Eigen::Index groups,
                                          const float* x_scales, const std::int32_t* x_sums, const float* w_scales,
                                          float* out, Eigen::Index out_stride, bool accumulate, Prefetch fetch) {
    Eigen::Index countdown = 0;
    __m512i low[Rows], high[Rows];  // NOLINT: int32 sums of outputs [0, 16) and [16, 32)
#pragma GCC unroll 12
    for (int t = 0; t < Rows; ++t) low[t] = high[t] = _mm512_setzero_si512();
    for (Eigen::Index g = 0; g < groups; ++g) {
      fetch.step(countdown);
      const __m512i w_low = _mm512_load_si512(w + g * width * kQ8Group);
      const __m512i w_high = _mm512_load_si512(w + g * width * kQ8Group + 64);
#pragma GCC unroll 12
      for (int t = 0; t < Rows; ++t) {
        const __m512i xt = _mm512_set1_epi32(load_group(x + (g * Rows + t) * kQ8Group));
        low[t] = _mm512_dpbusd_epi32(low[t], w_low, xt);  // (w + 128) * x, unsigned by signed
        high[t] = _mm512_dpbusd_epi32(high[t], w_high, xt);
      }
    }
    const __m512 scale_low = _mm512_loadu_ps(w_scales);
    const __m512 scale_high = _mm512_loadu_ps(w_scales + 16);
#pragma GCC unroll 12
    for (int t = 0; t < Rows; ++t) {
      float* row = out + t * out_stride;
      const __m512i offset = _mm512_set1_epi32(128 * x_sums[t]);
      const __m512 xs = _mm512_set1_ps(x_scales[t]);
      __m512 value_low =
          _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(low[t], offset)), _mm512_mul_ps(xs, scale_low));
      __m512 value_high =
          _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(high[t], offset)), _mm512_mul_ps(xs, scale_high));
      if (accumulate) {
        value_low = _mm512_add_ps(value_low, _mm512_loadu_ps(row));
        value_high = _mm512_add_ps(value_high, _mm512_loadu_ps(row + 16));
      }
      _mm512_storeu_ps(row, value_low);
      _mm512_storeu_ps(row + 16, value_high);
    }
  }
};

template <typename Kernel>
const QuantizedKernels& x86_quantized_kernels(Isa isa, const char* name, int weight_offset) {
  static const QuantizedKernels kernels{
      isa, name, Kernel::width, Kernel::max_rows, weight_offset,
      quantized_kernel_rows<Kernel>(std::make_integer_sequence<int, Kernel::max_rows>())};
  return kernels;
}

}  // namespace clip::detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif  // CLIP_HAVE_X86_KERNELS

namespace clip::detail {

/// The int8 kernels of a q8 model loaded for `isa`: VNNI on the avx512 path when the CPU has it,
/// else AVX2's (also for AVX-512 CPUs without VNNI), the portable ones for generic.
inline const QuantizedKernels& quantized_kernels(Isa isa) {
#if defined(CLIP_HAVE_X86_KERNELS)
  if (isa == Isa::avx512 && avx512_vnni_supported())
    return x86_quantized_kernels<Avx512VnniQ8Kernel>(Isa::avx512, "avx512-vnni", 128);
  if (isa == Isa::avx512 || isa == Isa::avx2) return x86_quantized_kernels<Avx2Q8Kernel>(Isa::avx2, "avx2", 0);
#endif
  (void)isa;
  return generic_quantized_kernels();
}

}  // namespace clip::detail
