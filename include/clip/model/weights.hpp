#pragma once
// Weights<Scalar>: the canonical tensors of a model file, typed and read-only.
// The transformers' weight matrices (patch embedding, q/k/v, out_proj, c_fc, c_proj: all but
// ~1/6 of a ViT-B/32 file) are repacked at load into the panels the products read
// (detail::PackedWeight), on all threads clip may use; the file's pages they came from are then
// released. A q8 file's block matrices (formats/q8.hpp) stay int8 for a float model
// (detail::QuantizedWeight, multiplied in int32) and are widened for a double one, the
// reference the tests compare with. Everything else is read in place through the memory map when it is F32 and Scalar
// is float, and converted once into owned storage otherwise (double, F16, BF16, misaligned).
// Immutable after construction, so any number of threads may read it.

#include <clip/detail/compilation.hpp>
#include <clip/isa.hpp>
#include <clip/model/detail/block_matrix.hpp>
#include <clip/model/detail/layers.hpp>
#include <clip/detail/parallel.hpp>
#include <clip/model/detail/products.hpp>
#include <clip/model/detail/weight_arena.hpp>
#include <clip/formats/model_file.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace clip {

/// A tensor's values with the shape the encoders read it as; copies share the same data.
template <typename Scalar>
struct TensorView {
  const Scalar* data = nullptr;
  Eigen::Index rows = 0;
  Eigen::Index cols = 0;

  detail::MatrixView<Scalar> matrix() const { return detail::MatrixView<Scalar>(data, rows, cols); }
  detail::VectorView<Scalar> vector() const { return detail::VectorView<Scalar>(data, rows * cols); }
};

/// One pre-LN residual attention block (OpenAI's ResidualAttentionBlock). Matrices are
/// PyTorch's [out, in] ones, packed; the encoders multiply by their transposes.
template <typename Scalar>
struct BlockWeights {
  TensorView<Scalar> ln_1_weight, ln_1_bias;
  detail::BlockMatrix<Scalar> qkv_weight;  // attn.in_proj: rows q; k; v  [3W, W]
  TensorView<Scalar> qkv_bias;
  detail::BlockMatrix<Scalar> out_weight;  // attn.out_proj [W, W]
  TensorView<Scalar> out_bias;
  TensorView<Scalar> ln_2_weight, ln_2_bias;
  detail::BlockMatrix<Scalar> fc_weight;  // mlp.c_fc   [mlp, W]
  TensorView<Scalar> fc_bias;
  detail::BlockMatrix<Scalar> proj_weight;  // mlp.c_proj [W, mlp]
  TensorView<Scalar> proj_bias;
};

template <typename Scalar>
struct VisionWeights {
  detail::PackedWeight<Scalar> patch_embedding;  // conv1 as [W, 3*P*P], columns in (channel, y, x) order
  TensorView<Scalar> class_embedding;  // [W]
  TensorView<Scalar> position_embedding;  // [grid*grid + 1, W]
  TensorView<Scalar> ln_pre_weight, ln_pre_bias;
  std::vector<BlockWeights<Scalar>> blocks;
  TensorView<Scalar> ln_post_weight, ln_post_bias;
  TensorView<Scalar> proj;  // [W, embed_dim]
};

template <typename Scalar>
struct TextWeights {
  TensorView<Scalar> token_embedding;     // [vocab, W]
  TensorView<Scalar> position_embedding;  // [context_length, W]
  std::vector<BlockWeights<Scalar>> blocks;
  TensorView<Scalar> ln_final_weight, ln_final_bias;
  TensorView<Scalar> proj;  // [W, embed_dim]
};

template <typename Scalar>
class Weights {
  static_assert(std::is_floating_point_v<Scalar>, "Weights<Scalar> needs float or double");

 public:
  /// Opens and validates `path` (see ModelFile) and loads its tensors.
  explicit Weights(const std::string& path) : Weights(std::make_shared<const ModelFile>(path)) {}

  /// Shares an already opened file; the views into its memory map keep it alive.
  explicit Weights(std::shared_ptr<const ModelFile> file);

  // Views point into owned storage or the shared map: moving is safe, copying would need care.
  Weights(const Weights&) = delete;
  Weights& operator=(const Weights&) = delete;
  Weights(Weights&&) = default;
  Weights& operator=(Weights&&) = default;

  const ModelConfig& config() const { return file_->config(); }
  const ModelFile& file() const { return *file_; }
  const VisionWeights<Scalar>& vision() const { return vision_; }
  const TextWeights<Scalar>& text() const { return text_; }
  /// The stored parameter: the log of the scale logits are multiplied by.
  Scalar logit_scale_log() const { return logit_scale_log_; }

  /// Bytes of tensors converted into owned storage; 0 when every unpacked tensor is used in place.
  std::size_t owned_bytes() const {
    std::size_t bytes = 0;
    for (const auto& values : owned_) bytes += values.size() * sizeof(Scalar);
    return bytes;
  }

  /// Bytes of the packed weight matrices (float and int8 panels, with the int8 scales).
  std::size_t packed_bytes() const { return arena_.size() * sizeof(Scalar) + quantized_arena_.size(); }

  /// The int8 kernels of a float model's q8 matrices ("avx512-vnni" or "avx2"), or null when
  /// none runs in int8 (a float file, a double model, or the generic path, which widens them).
  const char* q8_kernels() const { return quantized_ ? detail::quantized_kernels(isa()).name : nullptr; }

  /// The instruction set the matrices were packed for (clip::active_isa() at load; always
  /// generic for double), which every product of this model runs on.
  Isa isa() const { return kernels_->isa; }

 private:
  struct PackJob {
    const TensorInfo* tensor;
    Eigen::Index rows, cols;
    detail::PackedWeight<Scalar>* target;
    std::size_t offset;  // in arena_
    detail::BlockMatrix<Scalar>* block = nullptr;  // set when the tensor stays int8
  };

  /// Schedules tensor `name`, read as [rows, cols], to be packed into `target` at the end of
  /// the constructor.
  void pack(const std::string& name, Eigen::Index rows, Eigen::Index cols, detail::PackedWeight<Scalar>& target) {
    pack_jobs_.push_back({&file_->tensors().info(name), rows, cols, &target, 0});
  }

  /// The same for a block matrix: int8 panels when a float model reads a q8 tensor on a path
  /// with int8 kernels (AVX2, AVX-512 VNNI). The portable int8 loop runs at a third of the
  /// portable float kernel's speed (bench_encoders VisionBlockStep), so on the generic path q8
  /// matrices are widened to float at load instead, as for a double model.
  void pack(const std::string& name, Eigen::Index rows, Eigen::Index cols, detail::BlockMatrix<Scalar>& target) {
    target.float_kernels = kernels_;
    pack(name, rows, cols, target.dense);
    if (std::is_same_v<Scalar, float> && pack_jobs_.back().tensor->dtype == DType::I8 &&
        detail::quantized_kernels(kernels_->isa).isa != Isa::generic) {
      pack_jobs_.back().block = &target;
      quantized_ = true;
    }
  }

  void run(const PackJob& job);
  void run_quantized(const PackJob& job);

  TensorView<Scalar> load(const std::string& name, Eigen::Index rows, Eigen::Index cols);

  /// Fills `blocks` in place: the pack jobs keep pointers into it.
  void load_blocks(const std::string& tower, int layers, int width, int mlp_width,
                   std::vector<BlockWeights<Scalar>>& blocks);

  std::shared_ptr<const ModelFile> file_;
  const detail::ProductKernels<Scalar>* kernels_;
  // A vector of buffers: each buffer's heap block never moves, so views stay valid as it grows.
  std::vector<std::vector<Scalar>> owned_;
  detail::WeightArena<Scalar> arena_;  // every PackedWeight's values
  detail::WeightArena<std::int8_t> quantized_arena_;  // every QuantizedWeight's values, then its scales
  bool quantized_ = false;
  std::vector<PackJob> pack_jobs_;     // only during construction
  VisionWeights<Scalar> vision_;
  TextWeights<Scalar> text_;
  Scalar logit_scale_log_ = 0;
};

}  // namespace clip

// The member functions are compiled once in clip_compiled under separate compilation (the
// explicit instantiations below); other files see only the class.
#if CLIP_HEADER_DEFINITIONS

namespace clip {

template <typename Scalar>
Weights<Scalar>::Weights(std::shared_ptr<const ModelFile> file)
    : file_(std::move(file)), kernels_(&detail::product_kernels<Scalar>(active_isa())) {
  const ModelConfig& config = file_->config();
  const VisionConfig& v = config.vision;
  const TextConfig& t = config.text;
  const int patch_values = 3 * v.patch_size * v.patch_size;

  pack("vision.patch_embedding", v.width, patch_values, vision_.patch_embedding);
  vision_.class_embedding = load("vision.class_embedding", 1, v.width);
  vision_.position_embedding = load("vision.position_embedding", v.tokens(), v.width);
  vision_.ln_pre_weight = load("vision.ln_pre.weight", 1, v.width);
  vision_.ln_pre_bias = load("vision.ln_pre.bias", 1, v.width);
  load_blocks("vision", v.layers, v.width, v.mlp_width, vision_.blocks);
  vision_.ln_post_weight = load("vision.ln_post.weight", 1, v.width);
  vision_.ln_post_bias = load("vision.ln_post.bias", 1, v.width);
  vision_.proj = load("vision.proj", v.width, config.embed_dim);

  text_.token_embedding = load("text.token_embedding", t.vocab_size, t.width);
  text_.position_embedding = load("text.position_embedding", t.context_length, t.width);
  load_blocks("text", t.layers, t.width, t.mlp_width, text_.blocks);
  text_.ln_final_weight = load("text.ln_final.weight", 1, t.width);
  text_.ln_final_bias = load("text.ln_final.bias", 1, t.width);
  text_.proj = load("text.proj", t.width, config.embed_dim);

  logit_scale_log_ = load("logit_scale", 1, 1).data[0];

  // One arena for every packed matrix (one more for the int8 ones), each at a 64-byte
  // boundary; one thread per matrix.
  const auto aligned = [](std::size_t bytes) { return (bytes + 63) / 64 * 64; };
  const detail::QuantizedKernels& q8 = detail::quantized_kernels(kernels_->isa);
  std::size_t total = 0, quantized_total = 0;
  for (PackJob& job : pack_jobs_) {
    if (job.block != nullptr) {
      job.offset = quantized_total;
      quantized_total += aligned(static_cast<std::size_t>(detail::QuantizedWeight::packed_size(job.rows, job.cols, q8))) +
                         aligned(sizeof(float) * static_cast<std::size_t>(detail::QuantizedWeight::scale_count(job.rows, q8)));
      continue;
    }
    job.offset = total;
    const auto size = static_cast<std::size_t>(detail::PackedWeight<Scalar>::packed_size(job.rows, job.cols, *kernels_));
    total += aligned(size * sizeof(Scalar)) / sizeof(Scalar);
  }
  arena_ = detail::WeightArena<Scalar>(total);
  quantized_arena_ = detail::WeightArena<std::int8_t>(quantized_total);
  detail::parallel_for(static_cast<int>(pack_jobs_.size()), detail::available_threads(), [&](int job) {
    const PackJob& pack_job = pack_jobs_[static_cast<std::size_t>(job)];
    pack_job.block != nullptr ? run_quantized(pack_job) : run(pack_job);
  });
  pack_jobs_.clear();
}

template <typename Scalar>
void Weights<Scalar>::run(const PackJob& job) {
  const TensorFile& tensors = file_->tensors();
  Scalar* storage = arena_.data() + job.offset;
  arena_.populate(storage, static_cast<std::size_t>(detail::PackedWeight<Scalar>::packed_size(job.rows, job.cols, *kernels_)));
  tensors.populate(*job.tensor);
  if constexpr (std::is_same_v<Scalar, float>) {
    if (const float* mapped = tensors.mapped_f32(*job.tensor)) {
      *job.target =
          detail::PackedWeight<Scalar>(detail::MatrixView<Scalar>(mapped, job.rows, job.cols), storage, *kernels_);
      tensors.release(*job.tensor);  // only the packed copy is read from now on
      return;
    }
  }
  // Converted a panel's rows at a time: a whole-matrix buffer per job made load spend half
  // its time having the kernel zero fresh pages.
  detail::PackedWeight<Scalar> packed(storage, job.rows, job.cols, *kernels_);
  const Eigen::Index width = packed.width();
  std::vector<Scalar> rows(static_cast<std::size_t>(width * job.cols));
  for (Eigen::Index p = 0; p < packed.panels(); ++p) {
    const Eigen::Index count = std::min(width, job.rows - p * width);
    if (job.tensor->dtype == DType::I8)  // q8 widened (a double model, the tests' reference)
      detail::dequantize_q8_rows(tensors, *job.tensor, p * width, count, rows.data());
    else
      tensors.copy_to(*job.tensor, rows.data(), static_cast<std::size_t>(p * width * job.cols),
                      static_cast<std::size_t>(count * job.cols));
    packed.pack_panel(p, rows.data());
  }
  *job.target = packed;
  tensors.release(*job.tensor);
}

template <typename Scalar>
void Weights<Scalar>::run_quantized(const PackJob& job) {
  const TensorFile& tensors = file_->tensors();
  const detail::QuantizedKernels& q8 = detail::quantized_kernels(kernels_->isa);
  const auto values_bytes = static_cast<std::size_t>(detail::QuantizedWeight::packed_size(job.rows, job.cols, q8));
  std::int8_t* values = quantized_arena_.data() + job.offset;
  auto* scales = reinterpret_cast<float*>(values + (values_bytes + 63) / 64 * 64);
  quantized_arena_.populate(values, values_bytes);
  tensors.populate(*job.tensor);
  const TensorInfo& scale_tensor = tensors.info(q8_scale_name(job.tensor->name));
  std::vector<float> row_scales(static_cast<std::size_t>(job.rows));
  tensors.copy_to(scale_tensor, row_scales.data());  // checked by ModelFile: F32, finite, positive
  detail::QuantizedWeight packed(values, scales, job.rows, job.cols, q8);
  const auto* rows = reinterpret_cast<const std::int8_t*>(tensors.bytes(*job.tensor));
  for (Eigen::Index p = 0; p < packed.panels(); ++p)
    packed.pack_panel(p, rows + p * q8.width * job.cols, row_scales.data() + p * q8.width);
  job.block->quantized = packed;
  tensors.release(*job.tensor);
}

template <typename Scalar>
TensorView<Scalar> Weights<Scalar>::load(const std::string& name, Eigen::Index rows, Eigen::Index cols) {
  const TensorFile& tensors = file_->tensors();
  const TensorInfo& info = tensors.info(name);
  // ModelFile has checked the shape against the config; rows * cols is the same count.
  if constexpr (std::is_same_v<Scalar, float>) {
    if (const float* mapped = tensors.mapped_f32(info)) return {mapped, rows, cols};
  }
  owned_.emplace_back(static_cast<std::size_t>(info.numel()));
  tensors.copy_to(info, owned_.back().data());
  return {owned_.back().data(), rows, cols};
}

template <typename Scalar>
void Weights<Scalar>::load_blocks(const std::string& tower, int layers, int width, int mlp_width,
                                  std::vector<BlockWeights<Scalar>>& blocks) {
  blocks.resize(static_cast<std::size_t>(layers));
  for (int i = 0; i < layers; ++i) {
    const std::string prefix = tower + ".blocks." + std::to_string(i) + ".";
    BlockWeights<Scalar>& block = blocks[static_cast<std::size_t>(i)];
    block.ln_1_weight = load(prefix + "ln_1.weight", 1, width);
    block.ln_1_bias = load(prefix + "ln_1.bias", 1, width);
    pack(prefix + "attn.qkv.weight", 3 * width, width, block.qkv_weight);
    block.qkv_bias = load(prefix + "attn.qkv.bias", 1, 3 * width);
    pack(prefix + "attn.out.weight", width, width, block.out_weight);
    block.out_bias = load(prefix + "attn.out.bias", 1, width);
    block.ln_2_weight = load(prefix + "ln_2.weight", 1, width);
    block.ln_2_bias = load(prefix + "ln_2.bias", 1, width);
    pack(prefix + "mlp.fc.weight", mlp_width, width, block.fc_weight);
    block.fc_bias = load(prefix + "mlp.fc.bias", 1, mlp_width);
    pack(prefix + "mlp.proj.weight", width, mlp_width, block.proj_weight);
    block.proj_bias = load(prefix + "mlp.proj.bias", 1, width);
  }
}

}  // namespace clip

#endif  // CLIP_HEADER_DEFINITIONS

namespace clip {

CLIP_INSTANTIATE(class Weights<float>)
CLIP_INSTANTIATE(class Weights<double>)

}  // namespace clip
