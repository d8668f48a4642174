#pragma once
// Resampling exactly as Pillow 9.4 does it for Image.resize(size, BICUBIC) and for the NEAREST
// resize it forces on palette ('P') and bilevel ('1') images. CLIP's reference preprocessing
// runs through Pillow, so matching it to the last 8-bit level means matching its arithmetic:
// the a = -0.5 cubic kernel stretched by the downscale factor, coefficients normalised to sum
// 1 and then rounded to 22-bit fixed point, a horizontal pass over only the rows the vertical
// pass will read, then a vertical pass, each pass rounding and clipping to 8 bits.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace clip::detail {

/// Pillow's bicubic kernel (libImaging/Resample.c, "bicubic_filter"), a = -0.5.
inline double bicubic_kernel(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}
inline constexpr double bicubic_support = 2.0;

/// Fixed-point fraction bits for 8-bit resampling (Pillow's PRECISION_BITS = 32 - 8 - 2).
inline constexpr int resample_precision_bits = 22;

/// One output sample along an axis reads input samples [first, first + count) with
/// weights[output * taps_per_output + i].
struct ResampleAxis {
  int taps_per_output = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<double> weights;
};

/// The coefficients Pillow's precompute_coeffs makes for the box [0, in_size) -> out_size.
/// The arithmetic order is kept as Pillow's (the box bounds are floats there), because any
/// change can move a weight by one ulp and a rounded pixel by one level.
inline ResampleAxis bicubic_axis(int in_size, int out_size) {
  const float box_begin = 0.0f;
  const float box_end = static_cast<float>(in_size);
  const double scale = static_cast<double>(box_end - box_begin) / out_size;
  const double filter_scale = scale < 1.0 ? 1.0 : scale;
  const double support = bicubic_support * filter_scale;

  ResampleAxis axis;
  axis.taps_per_output = static_cast<int>(std::ceil(support)) * 2 + 1;
  axis.first.resize(out_size);
  axis.count.resize(out_size);
  axis.weights.assign(static_cast<std::size_t>(out_size) * axis.taps_per_output, 0.0);

  for (int out = 0; out < out_size; ++out) {
    const double center = box_begin + (out + 0.5) * scale;
    const double inverse_scale = 1.0 / filter_scale;
    int lo = static_cast<int>(center - support + 0.5);  // Pillow truncates after adding 0.5
    if (lo < 0) lo = 0;
    int hi = static_cast<int>(center + support + 0.5);
    if (hi > in_size) hi = in_size;
    const int count = hi - lo;
    double* w = &axis.weights[static_cast<std::size_t>(out) * axis.taps_per_output];
    double total = 0.0;
    for (int i = 0; i < count; ++i) {
      w[i] = bicubic_kernel((i + lo - center + 0.5) * inverse_scale);
      total += w[i];
    }
    if (total != 0.0)
      for (int i = 0; i < count; ++i) w[i] /= total;
    axis.first[out] = lo;
    axis.count[out] = count;
  }
  return axis;
}

/// Pillow's normalize_coeffs_8bpc: round half away from zero into 22-bit fixed point.
inline std::vector<std::int32_t> fixed_point_weights(const std::vector<double>& weights) {
  std::vector<std::int32_t> fixed(weights.size());
  const double one = static_cast<double>(1 << resample_precision_bits);
  for (std::size_t i = 0; i < weights.size(); ++i)
    fixed[i] = static_cast<std::int32_t>(weights[i] < 0 ? -0.5 + weights[i] * one
                                                         : 0.5 + weights[i] * one);
  return fixed;
}

/// Pillow's clip8 for a fixed-point sum that already includes the rounding half.
inline std::uint8_t clip_fixed_point_to_u8(std::int32_t sum) {
  if (sum >= (255 << resample_precision_bits)) return 255;
  if (sum <= 0) return 0;
  return static_cast<std::uint8_t>(sum >> resample_precision_bits);
}

/// Pillow's ROUND_UP for the 32-bit integer ('I' mode) passes: half away from zero.
inline std::int32_t round_half_away(double value) {
  return static_cast<std::int32_t>(value >= 0.0 ? value + 0.5 : value - 0.5);
}

/// Interleaved samples of one image plane set: width x height pixels, channels per pixel.
template <typename Sample>
struct Plane {
  int width = 0;
  int height = 0;
  int channels = 0;
  std::vector<Sample> samples;
};

namespace resample_pass {

// Accumulates one output sample; 8-bit samples use Pillow's integer arithmetic, 32-bit
// integer samples its double arithmetic.
inline std::uint8_t finish(std::int32_t sum) { return clip_fixed_point_to_u8(sum); }
inline std::int32_t finish(double sum) { return round_half_away(sum); }

template <typename Sample>
using Accumulator = std::conditional_t<std::is_same_v<Sample, std::uint8_t>, std::int32_t, double>;

template <typename Sample>
Accumulator<Sample> start() {
  if constexpr (std::is_same_v<Sample, std::uint8_t>)
    return std::int32_t{1} << (resample_precision_bits - 1);
  else
    return 0.0;
}

template <typename Sample, typename Weight>
void horizontal(const Plane<Sample>& in, int first_row, int rows, const ResampleAxis& axis,
                const std::vector<Weight>& weights, Plane<Sample>& out) {
  const int out_width = static_cast<int>(axis.first.size());
  const int channels = in.channels;
  out.width = out_width;
  out.height = rows;
  out.channels = channels;
  out.samples.assign(static_cast<std::size_t>(out_width) * rows * channels, Sample{});
  for (int y = 0; y < rows; ++y) {
    const Sample* in_row = &in.samples[static_cast<std::size_t>(y + first_row) * in.width * channels];
    Sample* out_row = &out.samples[static_cast<std::size_t>(y) * out_width * channels];
    for (int x = 0; x < out_width; ++x) {
      const Weight* w = &weights[static_cast<std::size_t>(x) * axis.taps_per_output];
      const Sample* src = in_row + static_cast<std::size_t>(axis.first[x]) * channels;
      const int count = axis.count[x];
      if (channels == 3) {  // the common case: all channels in one sweep over the taps
        Accumulator<Sample> s0 = start<Sample>(), s1 = s0, s2 = s0;
        for (int i = 0; i < count; ++i) {
          s0 += src[i * 3] * w[i];
          s1 += src[i * 3 + 1] * w[i];
          s2 += src[i * 3 + 2] * w[i];
        }
        out_row[x * 3] = finish(s0);
        out_row[x * 3 + 1] = finish(s1);
        out_row[x * 3 + 2] = finish(s2);
        continue;
      }
      for (int c = 0; c < channels; ++c) {
        Accumulator<Sample> sum = start<Sample>();
        for (int i = 0; i < count; ++i) sum += src[i * channels + c] * w[i];
        out_row[x * channels + c] = finish(sum);
      }
    }
  }
}

// first_row_shift: the rows of `in` start at this source row (the horizontal pass kept only
// the rows the vertical pass reads).
template <typename Sample, typename Weight>
void vertical(const Plane<Sample>& in, int first_row_shift, const ResampleAxis& axis,
              const std::vector<Weight>& weights, Plane<Sample>& out) {
  const int out_height = static_cast<int>(axis.first.size());
  const int row_samples = in.width * in.channels;
  out.width = in.width;
  out.height = out_height;
  out.channels = in.channels;
  out.samples.assign(static_cast<std::size_t>(row_samples) * out_height, Sample{});
  std::vector<Accumulator<Sample>> sums(row_samples);
  for (int y = 0; y < out_height; ++y) {
    const Weight* w = &weights[static_cast<std::size_t>(y) * axis.taps_per_output];
    const int first = axis.first[y] - first_row_shift;
    std::fill(sums.begin(), sums.end(), start<Sample>());
    // Row-at-a-time accumulation: same sums in the same order as Pillow's per-pixel loop.
    for (int i = 0; i < axis.count[y]; ++i) {
      const Sample* src = &in.samples[static_cast<std::size_t>(first + i) * row_samples];
      const Weight wi = w[i];
      for (int s = 0; s < row_samples; ++s) sums[s] += src[s] * wi;
    }
    Sample* dst = &out.samples[static_cast<std::size_t>(y) * row_samples];
    for (int s = 0; s < row_samples; ++s) dst[s] = finish(sums[s]);
  }
}

}  // namespace resample_pass

/// Pillow's ImagingResample with BICUBIC for 8-bit planes (modes L, RGB, La, RGBa: every
/// channel filtered alike) and for 32-bit integer planes (mode I). Pillow skips a pass whose
/// dimension does not change and always runs the horizontal pass first.
template <typename Sample>
Plane<Sample> resize_bicubic(const Plane<Sample>& in, int out_width, int out_height) {
  static_assert(std::is_same_v<Sample, std::uint8_t> || std::is_same_v<Sample, std::int32_t>);
  const bool need_horizontal = out_width != in.width;
  const bool need_vertical = out_height != in.height;
  const ResampleAxis horizontal_axis = bicubic_axis(in.width, out_width);
  const ResampleAxis vertical_axis = bicubic_axis(in.height, out_height);

  auto weights_for = [](const ResampleAxis& axis) {
    if constexpr (std::is_same_v<Sample, std::uint8_t>)
      return fixed_point_weights(axis.weights);
    else
      return axis.weights;
  };

  // Only source rows [first_row, last_row) feed the vertical pass.
  const int first_row = vertical_axis.first.front();
  const int last_row = vertical_axis.first.back() + vertical_axis.count.back();

  Plane<Sample> current;
  const Plane<Sample>* source = &in;
  int row_shift = 0;
  if (need_horizontal) {
    resample_pass::horizontal(in, first_row, last_row - first_row, horizontal_axis,
                              weights_for(horizontal_axis), current);
    source = &current;
    row_shift = first_row;
  }
  if (need_vertical) {
    Plane<Sample> out;
    resample_pass::vertical(*source, row_shift, vertical_axis, weights_for(vertical_axis), out);
    return out;
  }
  if (need_horizontal) return current;
  return in;
}

/// Pillow's NEAREST resize (ImagingScaleAffine): the source coordinate starts at half a step
/// and is advanced by repeated addition, truncated toward zero; positions outside the source
/// are left zero as Pillow's fill does.
template <typename Sample>
Plane<Sample> resize_nearest(const Plane<Sample>& in, int out_width, int out_height) {
  auto source_positions = [](int in_size, int out_size) {
    const double step = static_cast<double>(static_cast<float>(in_size)) / out_size;
    std::vector<int> positions(out_size);
    double position = step * 0.5;
    for (int i = 0; i < out_size; ++i) {
      const int index = position < 0.0 ? -1 : static_cast<int>(position);
      positions[i] = (index >= 0 && index < in_size) ? index : -1;
      position += step;
    }
    return positions;
  };
  const std::vector<int> columns = source_positions(in.width, out_width);
  const std::vector<int> rows = source_positions(in.height, out_height);
  Plane<Sample> out;
  out.width = out_width;
  out.height = out_height;
  out.channels = in.channels;
  out.samples.assign(static_cast<std::size_t>(out_width) * out_height * in.channels, Sample{});
  for (int y = 0; y < out_height; ++y) {
    if (rows[y] < 0) continue;
    const Sample* in_row = &in.samples[static_cast<std::size_t>(rows[y]) * in.width * in.channels];
    Sample* out_row = &out.samples[static_cast<std::size_t>(y) * out_width * in.channels];
    for (int x = 0; x < out_width; ++x) {
      if (columns[x] < 0) continue;
      for (int c = 0; c < in.channels; ++c)
        out_row[x * in.channels + c] = in_row[columns[x] * in.channels + c];
    }
  }
  return out;
}

}  // namespace clip::detail
