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
// accumulators, 2 weight and 2 |weight| registers, the broadcast and the int16 ones. The step is
// bound by its 4 instructions per register and token: 3 and 5 tokens measured the same and
// slower (VisionBlockStep/q8 on a Sapphire Rapids core).
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

// quantize_row_generic in vectors: a pass for max |x| (and whether any value is NaN, which
// vmaxps would drop), then levels by vcvtps2dq, which rounds to nearest even as nearbyint does,
// narrowed to bytes and stored a group (one int32) at a time.
/// Lanes [0, left) of 8 (all when left >= 8), as a maskload mask.
CLIP_TARGET_AVX2 inline __m256i first_lanes_avx2(Eigen::Index left) {
  const int count = static_cast<int>(std::min<Eigen::Index>(left, 8));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0));
}

CLIP_TARGET_AVX2 inline float quantize_row_avx2(const float* x, Eigen::Index count, std::int8_t* dst,
                                                Eigen::Index stride, std::int32_t* sum) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 largest = _mm256_setzero_ps();
  __m256 unordered = _mm256_setzero_ps();
  for (Eigen::Index i = 0; i < count; i += 8) {
    const __m256 v = i + 8 <= count ? _mm256_loadu_ps(x + i) : _mm256_maskload_ps(x + i, first_lanes_avx2(count - i));
    largest = _mm256_max_ps(largest, _mm256_andnot_ps(sign, v));
    unordered = _mm256_or_ps(unordered, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  __m128 top4 = _mm_max_ps(_mm256_castps256_ps128(largest), _mm256_extractf128_ps(largest, 1));
  top4 = _mm_max_ps(top4, _mm_movehl_ps(top4, top4));
  const float top = _mm_cvtss_f32(_mm_max_ss(top4, _mm_shuffle_ps(top4, top4, 1)));
  *sum = 0;
  if (_mm256_movemask_ps(unordered) != 0 || !(top <= std::numeric_limits<float>::max()))
    return std::numeric_limits<float>::quiet_NaN();
  const __m256 inverse = _mm256_set1_ps(top > 0 ? q8_max / top : 0.0f);
  __m256i total = _mm256_setzero_si256();
  for (Eigen::Index i = 0; i < count; i += 8) {
    const __m256 v = i + 8 <= count ? _mm256_loadu_ps(x + i) : _mm256_maskload_ps(x + i, first_lanes_avx2(count - i));
    const __m256i levels = _mm256_cvtps_epi32(_mm256_mul_ps(v, inverse));
    total = _mm256_add_epi32(total, levels);
    const __m128i words = _mm_packs_epi32(_mm256_castsi256_si128(levels), _mm256_extracti128_si256(levels, 1));
    const __m128i bytes = _mm_packs_epi16(words, words);
    const std::int32_t groups[2] = {_mm_cvtsi128_si32(bytes), _mm_extract_epi32(bytes, 1)};
    for (Eigen::Index g = 0; g < 2 && i + g * kQ8Group < count; ++g)
      std::memcpy(dst + (i / kQ8Group + g) * stride, &groups[g], 4);
  }
  __m128i sum4 = _mm_add_epi32(_mm256_castsi256_si128(total), _mm256_extracti128_si256(total, 1));
  sum4 = _mm_add_epi32(sum4, _mm_shuffle_epi32(sum4, 0x4e));
  sum4 = _mm_add_epi32(sum4, _mm_shuffle_epi32(sum4, 0xb1));
  *sum = _mm_cvtsi128_si32(sum4);
  return top / q8_max;
}

CLIP_TARGET_AVX512 inline float quantize_row_avx512(const float* x, Eigen::Index count, std::int8_t* dst,
                                                    Eigen::Index stride, std::int32_t* sum) {
  // Integer arithmetic only, so a lambda may compute it (lambdas do not get the target attribute).
  const auto tail_mask = [&](Eigen::Index i) {
    return static_cast<__mmask16>(i + 16 <= count ? 0xffff : (1u << (count - i)) - 1);
  };
  __m512 largest = _mm512_setzero_ps();
  __mmask16 unordered = 0;
  for (Eigen::Index i = 0; i < count; i += 16) {
    const __m512 v = _mm512_maskz_loadu_ps(tail_mask(i), x + i);
    largest = _mm512_max_ps(largest, _mm512_abs_ps(v));
    unordered = static_cast<__mmask16>(unordered | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q));
  }
  const float top = _mm512_reduce_max_ps(largest);
  *sum = 0;
  if (unordered != 0 || !(top <= std::numeric_limits<float>::max())) return std::numeric_limits<float>::quiet_NaN();
  const __m512 inverse = _mm512_set1_ps(top > 0 ? q8_max / top : 0.0f);
  __m512i total = _mm512_setzero_si512();
  for (Eigen::Index i = 0; i < count; i += 16) {
    const __m512i levels = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(tail_mask(i), x + i), inverse));
    total = _mm512_add_epi32(total, levels);
    const __m128i bytes = _mm512_cvtsepi32_epi8(levels);
    const std::int32_t groups[4] = {_mm_cvtsi128_si32(bytes), _mm_extract_epi32(bytes, 1), _mm_extract_epi32(bytes, 2),
                                    _mm_extract_epi32(bytes, 3)};
    for (Eigen::Index g = 0; g < 4 && i + g * kQ8Group < count; ++g)
      std::memcpy(dst + (i / kQ8Group + g) * stride, &groups[g], 4);
  }
  *sum = _mm512_reduce_add_epi32(total);
  return top / q8_max;
}

template <typename Kernel>
const QuantizedKernels& x86_quantized_kernels(Isa isa, const char* name, int weight_offset,
                                              QuantizeRowFunction quantize_row) {
  static const QuantizedKernels kernels{
      isa, name, Kernel::width, Kernel::max_rows, weight_offset,
      quantized_kernel_rows<Kernel>(std::make_integer_sequence<int, Kernel::max_rows>()), quantize_row};
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
    return x86_quantized_kernels<Avx512VnniQ8Kernel>(Isa::avx512, "avx512-vnni", 128, &quantize_row_avx512);
  if (isa == Isa::avx512 || isa == Isa::avx2)
    return x86_quantized_kernels<Avx2Q8Kernel>(Isa::avx2, "avx2", 0, &quantize_row_avx2);
#endif
  (void)isa;
  return generic_quantized_kernels();
}

}  // namespace clip::detail
