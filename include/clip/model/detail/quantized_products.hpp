#pragma once
// The block matrices' products for q8 models (formats/q8.hpp): out = x W^T with W int8 per
// output channel and x quantised per token at run time, accumulated exactly in int32 and scaled
// back to float once per kernel call:
//
//   out[t, o] = x_scale[t] * w_scale[o] * sum_i xq[t, i] * wq[o, i]
//
// The layout follows the float panels (products.hpp), with one difference: the integer dot
// product instructions (AVX2's vpmaddubsw + vpmaddwd, AVX-512 VNNI's vpdpbusd) each sum 4
// adjacent inputs into one int32 lane, so a panel step is a group of 4 inputs: width outputs x
// 4 bytes, and a token's 4 bytes of the group are broadcast as one int32. Inputs are padded to
// a multiple of 4 with zeros.

#include <clip/model/detail/panel_kernels.hpp>
#include <clip/model/detail/products.hpp>

#include <clip/formats/q8.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

namespace clip::detail {

/// Inputs per int32 lane of the integer dot products.
constexpr Eigen::Index kQ8Group = 4;

/// Bytes of int8 x one depth block may take. x is a quarter of its float size, so twice the
/// float budget still leaves most of a 2 MiB L2 to the weights, and a 256-token chunk of every
/// ViT-B and ViT-L product (up to 4096 inputs) runs in one block: a depth block costs the VNNI
/// path a pass over x for the token sums (c_proj on 16 images: 2 blocks took 8 % of the image).
constexpr Eigen::Index kQ8TokenBlockBytes = Eigen::Index(1) << 20;

/// One call: out[t, o] (+)= x_scales[t] * w_scales[o] * (sum over `groups` groups of x . w -
/// weight_offset * x_sums[t]) for `rows` tokens and one panel. x holds groups x rows x 4 bytes,
/// w groups x width x 4.
using QuantizedKernelFunction = void (*)(const std::int8_t* x, const std::int8_t* w, Eigen::Index groups,
                                          const float* x_scales, const std::int32_t* x_sums, const float* w_scales,
                                          float* out, Eigen::Index out_stride, bool accumulate, Prefetch fetch);

/// Quantises one token's `count` values (scale max |x| / 127, round to nearest even): the level
/// of value i goes to byte i % 4 of group i / 4, group g at dst + g * stride (the bytes past
/// `count` in its last group are written as zero). Returns the scale and sets *sum to the sum
/// of the levels; a non-finite value gives a NaN scale and no levels, so its outputs are NaN as
/// in float.
using QuantizeRowFunction = float (*)(const float* x, Eigen::Index count, std::int8_t* dst, Eigen::Index stride,
                                      std::int32_t* sum);

/// Portable quantize_row; also the definition the vector versions are tested against.
inline float quantize_row_generic(const float* x, Eigen::Index count, std::int8_t* dst, Eigen::Index stride,
                                  std::int32_t* sum) {
  float largest = 0;
  bool finite = true;
  for (Eigen::Index i = 0; i < count; ++i) {
    const float magnitude = std::fabs(x[i]);
    finite = finite && magnitude <= std::numeric_limits<float>::max();  // false for NaN too
    largest = std::max(largest, magnitude);
  }
  *sum = 0;
  if (!finite) return std::numeric_limits<float>::quiet_NaN();
  const float inverse = largest > 0 ? q8_max / largest : 0.0f;
  for (Eigen::Index g = 0; g * kQ8Group < count; ++g)
    for (Eigen::Index j = 0; j < kQ8Group; ++j) {
      const Eigen::Index i = g * kQ8Group + j;
      // |x * inverse| <= 127 up to rounding, so the level always fits.
      const int level = i < count ? static_cast<int>(std::nearbyint(x[i] * inverse)) : 0;
      dst[g * stride + j] = static_cast<std::int8_t>(level);
      *sum += level;
    }
  return largest / q8_max;
}

/// One instruction set's int8 kernels.
struct QuantizedKernels {
  Isa isa = Isa::generic;
  const char* name = "generic";  // what clip-bench reports: "generic", "avx2", "avx512-vnni"
  Eigen::Index width = 0;        // outputs per panel
  int max_rows = 0;
  /// 128 when the panels hold w + 128 as unsigned bytes (vpdpbusd multiplies unsigned by
  /// signed): the kernel then subtracts 128 * x_sums[t], the token's sum over the call's inputs.
  int weight_offset = 0;
  std::array<QuantizedKernelFunction, kLargestKernelRows + 1> rows{};
  QuantizeRowFunction quantize_row = &quantize_row_generic;
};

/// Portable int8 kernel: the same sums in plain integer loops (the compiler vectorises what its
/// target allows). Also what the x86 kernels are tested against.
struct GenericQ8Kernel {
  static constexpr Eigen::Index width = 16;
  static constexpr int max_rows = 4;

  template <int Rows>
  static void run(const std::int8_t* x, const std::int8_t* w, Eigen::Index groups, const float* x_scales,
                  const std::int32_t*, const float* w_scales, float* out, Eigen::Index out_stride, bool accumulate,
                  Prefetch fetch) {
    Eigen::Index countdown = 0;
    std::int32_t sums[Rows][width] = {};  // NOLINT
    for (Eigen::Index g = 0; g < groups; ++g) {
      fetch.step(countdown);
      const std::int8_t* wg = w + g * width * kQ8Group;
      const std::int8_t* xg = x + g * Rows * kQ8Group;
      for (int t = 0; t < Rows; ++t)
        for (Eigen::Index o = 0; o < width; ++o)
          for (Eigen::Index j = 0; j < kQ8Group; ++j)
            sums[t][o] += std::int32_t(xg[t * kQ8Group + j]) * std::int32_t(wg[o * kQ8Group + j]);
    }
    for (int t = 0; t < Rows; ++t) {
      float* row = out + t * out_stride;
      for (Eigen::Index o = 0; o < width; ++o) {
        const float value = static_cast<float>(sums[t][o]) * (x_scales[t] * w_scales[o]);
        row[o] = accumulate ? row[o] + value : value;
      }
    }
  }
};

template <typename Kernel, int... Counts>
constexpr std::array<QuantizedKernelFunction, kLargestKernelRows + 1> quantized_kernel_rows(
    std::integer_sequence<int, Counts...>) {
  return {{nullptr, &Kernel::template run<Counts + 1>...}};
}

inline const QuantizedKernels& generic_quantized_kernels() {
  static const QuantizedKernels kernels{
      Isa::generic, "generic", GenericQ8Kernel::width, GenericQ8Kernel::max_rows, 0,
      quantized_kernel_rows<GenericQ8Kernel>(std::make_integer_sequence<int, GenericQ8Kernel::max_rows>())};
  return kernels;
}

/// A q8 matrix W [outputs, inputs] repacked for one QuantizedKernels table: panel p holds
/// outputs [p * width, (p + 1) * width), group-major (groups x width x 4 bytes), outputs past
/// the end of W and inputs past the last zero; scales in panel order, zero past the end.
class QuantizedWeight {
 public:
  static Eigen::Index groups(Eigen::Index inputs) { return (inputs + kQ8Group - 1) / kQ8Group; }
  static Eigen::Index panels(Eigen::Index outputs, const QuantizedKernels& kernels) {
    return (outputs + kernels.width - 1) / kernels.width;
  }
  /// Bytes of values W takes packed.
  static Eigen::Index packed_size(Eigen::Index outputs, Eigen::Index inputs, const QuantizedKernels& kernels) {
    return panels(outputs, kernels) * kernels.width * groups(inputs) * kQ8Group;
  }
  /// Scales it takes (one per output, padded to whole panels).
  static Eigen::Index scale_count(Eigen::Index outputs, const QuantizedKernels& kernels) {
    return panels(outputs, kernels) * kernels.width;
  }

  QuantizedWeight() = default;

  /// W [outputs, inputs] in `values` (packed_size bytes) and `scales` (scale_count floats), both
  /// outliving this, filled by pack_panel.
  QuantizedWeight(std::int8_t* values, float* scales, Eigen::Index outputs, Eigen::Index inputs,
                  const QuantizedKernels& kernels)
      : kernels_(&kernels), values_(values), scales_(scales), outputs_(outputs), inputs_(inputs) {}

  /// Fills panel p from its rows of W: `rows` holds q[p * width + i, k] at i * inputs + k and
  /// `row_scales` their scales, for the panel's outputs (fewer in a last, partial panel).
  void pack_panel(Eigen::Index p, const std::int8_t* rows, const float* row_scales) {
    const Eigen::Index width = this->width();
    const Eigen::Index count = std::min(width, outputs_ - p * width);
    const int offset = kernels_->weight_offset;
    std::int8_t* panel = values_ + p * groups() * width * kQ8Group;
    for (Eigen::Index g = 0; g < groups(); ++g)
      for (Eigen::Index o = 0; o < width; ++o)
        for (Eigen::Index j = 0; j < kQ8Group; ++j) {
          const Eigen::Index k = g * kQ8Group + j;
          const int value = o < count && k < inputs_ ? rows[o * inputs_ + k] : 0;
          // The offset form stores w + 128 in [1, 255] as a byte the kernel reads unsigned.
          const auto byte = static_cast<std::uint8_t>(value + offset);
          std::memcpy(panel + (g * width + o) * kQ8Group + j, &byte, 1);
        }
    for (Eigen::Index o = 0; o < width; ++o) scales_[p * width + o] = o < count ? row_scales[o] : 0.0f;
  }

  const QuantizedKernels& kernels() const { return *kernels_; }
  Eigen::Index width() const { return kernels_->width; }
  Eigen::Index outputs() const { return outputs_; }
  Eigen::Index inputs() const { return inputs_; }
  Eigen::Index groups() const { return groups(inputs_); }
  Eigen::Index panels() const { return panels(outputs_, *kernels_); }

  /// Panel p's bytes from group g on.
  const std::int8_t* panel(Eigen::Index p, Eigen::Index g = 0) const {
    return values_ + (p * groups() + g) * width() * kQ8Group;
  }
  const float* scales(Eigen::Index p) const { return scales_ + p * width(); }

  /// W as the products see it, scale[o] * q[o, i] (for tests).
  RowMatrix<float> dequantized() const {
    RowMatrix<float> weight(outputs_, inputs_);
    const int offset = kernels_->weight_offset;
    for (Eigen::Index o = 0; o < outputs_; ++o)
      for (Eigen::Index k = 0; k < inputs_; ++k) {
        const Eigen::Index p = o / width(), g = k / kQ8Group;
        std::uint8_t byte;
        std::memcpy(&byte, panel(p, g) + (o % width()) * kQ8Group + k % kQ8Group, 1);
        const int value = offset != 0 ? int(byte) - offset : int(static_cast<std::int8_t>(byte));
        weight(o, k) = scales(p)[o % width()] * static_cast<float>(value);
      }
    return weight;
  }

 private:
  const QuantizedKernels* kernels_ = &generic_quantized_kernels();
  std::int8_t* values_ = nullptr;
  float* scales_ = nullptr;
  Eigen::Index outputs_ = 0;
  Eigen::Index inputs_ = 0;
};

/// Per-thread buffers of the int8 products: x quantised per token over the inputs of the
/// product it was quantised for, in kernel blocks.
struct QuantizedTokens {
  std::vector<std::int8_t> values;  // each kernel block group-major: groups x rows x 4
  std::vector<float> scales;        // per token: max |x| / 127
  std::vector<std::int32_t> sums;   // per token: its levels' sum (for weight_offset kernels)
  std::vector<std::int32_t> block_sums;  // the same over one depth block, when there are several
  std::vector<float> row;                // a token's values when they are not contiguous in x
  Eigen::Index rows = 0;
  Eigen::Index first_group = 0;  // of W's inputs: x's column 0 is W's input input_begin
  Eigen::Index groups = 0;
  Eigen::Index input_begin = 0;
  Eigen::Index input_count = 0;
  int block_rows = 0;
  RowMatrix<float> result;
};

/// Quantises x [tokens, count], which multiplies W's inputs [input_begin, input_begin + count),
/// per token (scale max |x| / 127, round to nearest) into `tokens` in the layout of `kernels`.
/// Inputs of the groups outside that range are zero, so they add nothing. A token with a
/// non-finite value gets a NaN scale: its outputs are NaN, as in float.
template <typename Input>
void quantize_tokens(const Eigen::MatrixBase<Input>& x, Eigen::Index input_begin, const QuantizedKernels& kernels,
                     QuantizedTokens& tokens) {
  const Eigen::Index rows = x.rows();
  const Eigen::Index count = x.cols();
  const Eigen::Index lead = input_begin % kQ8Group;
  tokens.rows = rows;
  tokens.first_group = input_begin / kQ8Group;
  tokens.groups = (lead + count + kQ8Group - 1) / kQ8Group;
  tokens.input_begin = input_begin;
  tokens.input_count = count;
  tokens.block_rows = kernels.max_rows;
  const Eigen::Index groups = tokens.groups;
  tokens.values.assign(static_cast<std::size_t>(rows * groups * kQ8Group), 0);
  tokens.scales.resize(static_cast<std::size_t>(rows));
  tokens.sums.resize(static_cast<std::size_t>(rows));
  // Rows are read in place when contiguous and group-aligned (lead 0, as for every product but
  // a thread's share of out_proj / c_proj that starts inside a group); else copied after `lead` zeros.
  constexpr bool contiguous_rows = std::is_same_v<typename Input::Scalar, float> &&
                                   (int(Input::Flags) & Eigen::DirectAccessBit) && bool(Input::IsRowMajor) &&
                                   int(Eigen::internal::traits<Input>::InnerStrideAtCompileTime) == 1;
  if (!contiguous_rows || lead != 0) tokens.row.assign(static_cast<std::size_t>(lead + count), 0.0f);
  for (Eigen::Index c = 0; c < TokenChunk::count(rows); ++c) {
    const TokenChunk chunk(rows, c, TokenChunk::count(rows), kernels.max_rows);
    for (Eigen::Index b = 0; b < chunk.blocks; ++b) {
      const Eigen::Index begin = chunk.block_begin(b);
      const Eigen::Index block_rows = chunk.block_rows(b);
      std::int8_t* block = tokens.values.data() + begin * groups * kQ8Group;
      for (Eigen::Index t = 0; t < block_rows; ++t) {
        const float* values = nullptr;
        if constexpr (contiguous_rows) {
          if (lead == 0) values = x.derived().data() + (begin + t) * x.derived().outerStride();
        }
        if (values == nullptr) {
          Eigen::Map<Eigen::RowVectorXf>(tokens.row.data() + lead, count) = x.row(begin + t).template cast<float>();
          values = tokens.row.data();
        }
        const auto index = static_cast<std::size_t>(begin + t);
        tokens.scales[index] =
            kernels.quantize_row(values, lead + count, block + t * kQ8Group, block_rows * kQ8Group, &tokens.sums[index]);
      }
    }
  }
}

/// dest = x W^T over outputs [output_begin, output_begin + output_count), for the x last given
/// to quantize_tokens.
template <typename Output>
void multiply_quantized(const QuantizedWeight& weight, Eigen::Index output_begin, Eigen::Index output_count,
                        const Eigen::MatrixBase<Output>& dest, QuantizedTokens& tokens) {
  const QuantizedKernels& kernels = weight.kernels();
  const Eigen::Index width = kernels.width;
  const Eigen::Index groups = tokens.groups;
  eigen_assert(tokens.block_rows == kernels.max_rows && dest.rows() == tokens.rows && dest.cols() == output_count &&
               tokens.input_begin + tokens.input_count <= weight.inputs());
  const Eigen::Index first_panel = output_begin / width;
  const Eigen::Index end_panel = (output_begin + output_count + width - 1) / width;
  PanelOutput<float, Output> out(dest, output_begin, output_count, width, tokens.result);
  // Each token's sum over a depth block's inputs, for the offset correction: quantize_tokens'
  // sums when the block is all of them.
  const std::int32_t* sums = tokens.sums.data();
  const auto sum_tokens = [&](const TokenChunk& chunk, Eigen::Index g0, Eigen::Index gc) {
    sums = tokens.sums.data();
    if (kernels.weight_offset == 0 || gc == groups) return;
    tokens.block_sums.resize(static_cast<std::size_t>(tokens.rows));
    sums = tokens.block_sums.data();
    for (Eigen::Index b = 0; b < chunk.blocks; ++b) {
      const Eigen::Index begin = chunk.block_begin(b), rows = chunk.block_rows(b);
      const std::int8_t* block = tokens.values.data() + begin * groups * kQ8Group;
      std::int32_t* block_sums = tokens.block_sums.data() + begin;
      std::fill_n(block_sums, rows, 0);
      for (Eigen::Index g = g0; g < g0 + gc; ++g)  // the block's bytes in memory order
        for (Eigen::Index t = 0; t < rows; ++t)
          for (Eigen::Index j = 0; j < kQ8Group; ++j) block_sums[t] += block[(g * rows + t) * kQ8Group + j];
    }
  };
  const PanelStream stream{reinterpret_cast<const char*>(weight.panel(0, tokens.first_group)),
                           weight.groups() * width * kQ8Group, width * kQ8Group};
  for_each_kernel_call(tokens.rows, kernels.max_rows, groups, kQ8Group, stream, first_panel, end_panel,
                       kQ8TokenBlockBytes, sum_tokens,
                       [&](Eigen::Index begin, Eigen::Index rows, Eigen::Index g0, Eigen::Index gc, Eigen::Index p,
                           const char* w, bool accumulate, Prefetch fetch) {
                         kernels.rows[static_cast<std::size_t>(rows)](
                             tokens.values.data() + (begin * groups + g0 * rows) * kQ8Group,
                             reinterpret_cast<const std::int8_t*>(w), gc, tokens.scales.data() + begin,
                             sums + begin, weight.scales(p), out.row(begin, p - first_panel, width),
                             out.stride(), accumulate, fetch);
                       });
  out.finish();
}

}  // namespace clip::detail
