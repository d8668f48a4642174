#pragma once
// The q8 storage of a model file (docs/model-format.md, "q8"): each weight matrix of both
// towers' blocks (attn.qkv, attn.out, mlp.fc, mlp.proj) as I8 [outputs, inputs] with one F32
// scale per output channel in "<name>.scale"; value = scale[o] * q[o, i]. Symmetric, so the
// products need no zero points, and per output channel because the channels of one matrix
// differ in range by over 10x in trained CLIP models. Everything else stays floating point:
// the patch embedding, the projections and the embeddings are small, and attention runs on
// activations only.

#include <clip/error.hpp>
#include <clip/formats/tensor_file.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace clip {

/// The largest magnitude a q8 value takes: -128 is never written, so weights and activations
/// share the symmetric range [-127, 127] (and AVX2's pairwise int16 sums cannot saturate).
inline constexpr int q8_max = 127;

/// The name of the scale tensor beside a q8 weight.
inline std::string q8_scale_name(const std::string& weight) { return weight + ".scale"; }

/// Whether the model file may hold `name` as q8: the four weight matrices of every block,
/// "{vision,text}.blocks.<i>.{attn.qkv,attn.out,mlp.fc,mlp.proj}.weight". (Parsed by hand: this
/// header is in every model-loading file, and <regex> would add seconds to each compile.)
inline bool is_q8_weight_name(const std::string& name) {
  std::size_t at = 0;
  const auto take = [&](const char* text) {
    const std::size_t length = std::char_traits<char>::length(text);
    if (name.compare(at, length, text) != 0) return false;
    at += length;
    return true;
  };
  if (!take("vision.blocks.") && !take("text.blocks.")) return false;
  const std::size_t digits = at;
  while (at < name.size() && name[at] >= '0' && name[at] <= '9') ++at;
  if (at == digits || !take(".")) return false;
  const std::size_t suffix = at;
  for (const char* matrix : {"attn.qkv.weight", "attn.out.weight", "mlp.fc.weight", "mlp.proj.weight"}) {
    at = suffix;
    if (take(matrix) && at == name.size()) return true;
  }
  return false;
}

/// A matrix in q8: values[o * inputs + i] = round(w[o, i] / scales[o]).
struct Q8Matrix {
  std::vector<std::int8_t> values;
  std::vector<float> scales;
};

/// Quantises W [outputs, inputs] (row-major) per output channel: scale = max |w| / 127, so the
/// largest weight of each row is exact. An all-zero row gets scale 1 (a zero scale is refused
/// at load, as it would be in a damaged file). Non-finite weights are an error.
inline Q8Matrix quantize_q8(const float* weight, std::int64_t outputs, std::int64_t inputs, const std::string& name) {
  Q8Matrix q;
  q.values.resize(static_cast<std::size_t>(outputs * inputs));
  q.scales.resize(static_cast<std::size_t>(outputs));
  for (std::int64_t o = 0; o < outputs; ++o) {
    const float* row = weight + o * inputs;
    float largest = 0.0f;
    for (std::int64_t i = 0; i < inputs; ++i) {
      if (!std::isfinite(row[i])) throw Error("tensor '" + name + "' holds a non-finite value: cannot store it as q8");
      largest = std::max(largest, std::fabs(row[i]));
    }
    const float scale = largest > 0.0f ? largest / q8_max : 1.0f;
    q.scales[static_cast<std::size_t>(o)] = scale;
    for (std::int64_t i = 0; i < inputs; ++i) {
      const float level = std::nearbyint(row[i] / scale);
      q.values[static_cast<std::size_t>(o * inputs + i)] =
          static_cast<std::int8_t>(std::clamp(level, float(-q8_max), float(q8_max)));
    }
  }
  return q;
}

namespace detail {

/// Checks the scale tensor of q8 weight `weight` ([outputs, inputs], I8): present, F32 of shape
/// [outputs], every value finite and positive. Features computed from a damaged scale would be
/// garbage without any sign of it, so the file is refused at load instead.
inline void check_q8_scales(const TensorFile& tensors, const TensorInfo& weight) {
  const std::string& path = tensors.path();
  const std::string name = q8_scale_name(weight.name);
  if (!tensors.contains(name))
    throw Error(path + ": q8 tensor '" + weight.name + "' has no scale tensor '" + name + "'");
  const TensorInfo& scales = tensors.info(name);
  const std::vector<std::int64_t> expected = {weight.shape.at(0)};
  if (scales.dtype != DType::F32 || scales.shape != expected)
    throw Error(path + ": scale tensor '" + name + "' is " + dtype_name(scales.dtype) + " " + shape_string(scales.shape) +
                ", expected F32 " + shape_string(expected));
  const std::uint8_t* bytes = tensors.bytes(scales);
  for (std::int64_t o = 0; o < expected[0]; ++o) {
    float scale;
    std::memcpy(&scale, bytes + 4 * o, 4);
    if (!std::isfinite(scale) || !(scale > 0.0f))
      throw Error(path + ": scale tensor '" + name + "' holds " + std::to_string(scale) + " at output " +
                  std::to_string(o) + "; q8 scales must be finite and positive");
  }
}

/// Rows [first_row, first_row + rows) of q8 tensor `weight` widened: scale[o] * q[o, i].
template <typename Scalar>
void dequantize_q8_rows(const TensorFile& tensors, const TensorInfo& weight, std::int64_t first_row, std::int64_t rows,
                        Scalar* out) {
  const std::int64_t inputs = weight.shape.at(1);
  const auto* values = reinterpret_cast<const std::int8_t*>(tensors.bytes(weight));
  const std::uint8_t* scales = tensors.bytes(tensors.info(q8_scale_name(weight.name)));
  for (std::int64_t o = first_row; o < first_row + rows; ++o) {
    float scale;
    std::memcpy(&scale, scales + 4 * o, 4);
    for (std::int64_t i = 0; i < inputs; ++i)
      *out++ = static_cast<Scalar>(scale * static_cast<float>(values[o * inputs + i]));
  }
}

}  // namespace detail
}  // namespace clip
