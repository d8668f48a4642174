#pragma once
// The transformer's weight products, out = x W^T for W [outputs, inputs] as PyTorch stores it.
//
// Each such W is repacked once, at load, into panels of a kernel table's width (two SIMD
// registers of outputs; the table is chosen from the CPU at load, see panel_kernels.hpp),
// every panel stored input-major: one kernel step loads a panel's weights for one input as two
// aligned registers and multiplies them by x values broadcast from up to max_rows tokens. Vectorising over outputs instead of tokens wastes no lanes on the
// token count (a ViT-B/32 image's 50 tokens would fill four 16-float packets for 3.1 packets
// of work), and each panel is one sequential stream that the kernel prefetches into L2 one
// panel ahead: one image reads every weight of its tower once, so that stream is the product.

#include <clip/model/detail/layers.hpp>
#include <clip/model/detail/panel_kernels_x86.hpp>

#include <clip/detail/eigen.hpp>

#include <algorithm>
#include <cstddef>
#include <utility>

namespace clip::detail {

template <typename Scalar>
using ColMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

// PacketBlock's argument is a SIMD type whose alignment attribute GCC notes it drops; harmless.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
#endif
/// P x P values in P packets, transposed in registers by Eigen's ptranspose.
template <typename Scalar>
using Tile = Eigen::internal::PacketBlock<Packet<Scalar>, int(packet_size<Scalar>())>;
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

/// A weight matrix W [outputs, inputs] repacked for x W^T by one kernel table: panel p holds
/// outputs [p * width, (p + 1) * width) as an inputs x width row-major block (width = the
/// table's), outputs past the end of W zero. The values live in storage the owner provides
/// (Weights keeps all of a model's in one WeightArena).
template <typename Scalar>
class PackedWeight {
 public:
  /// Scalars W [outputs, inputs] takes packed for `kernels`.
  static Eigen::Index packed_size(Eigen::Index outputs, Eigen::Index inputs, const ProductKernels<Scalar>& kernels) {
    return (outputs + kernels.width - 1) / kernels.width * kernels.width * inputs;
  }

  PackedWeight() = default;

  /// W [outputs, inputs] in `storage` (packed_size values, aligned for SIMD loads, outliving
  /// this), its panels filled by pack_panel.
  PackedWeight(Scalar* storage, Eigen::Index outputs, Eigen::Index inputs, const ProductKernels<Scalar>& kernels)
      : kernels_(&kernels), values_(storage), outputs_(outputs), inputs_(inputs) {
    eigen_assert(kernels.width % packet_size<Scalar>() == 0);
  }

  /// Packs all of `weight` into `storage`.
  PackedWeight(const MatrixView<Scalar>& weight, Scalar* storage, const ProductKernels<Scalar>& kernels)
      : PackedWeight(storage, weight.rows(), weight.cols(), kernels) {
    for (Eigen::Index p = 0; p < panels(); ++p) pack_panel(p, weight.data() + p * width() * inputs_);
  }

  /// Fills panel p from its rows of W: `rows` holds W[p * width + i, k] at i * inputs + k for
  /// the panel's width outputs (fewer in a last, partial panel).
  void pack_panel(Eigen::Index p, const Scalar* rows) {
    const Eigen::Index width = this->width();
    constexpr Eigen::Index P = packet_size<Scalar>();
    const Eigen::Index count = std::min(width, outputs_ - p * width);
    const MatrixView<Scalar> weight(rows, count, inputs_);
    // The panel as a column-major width x inputs matrix is W's rows, one output per row.
    Eigen::Map<ColMatrix<Scalar>> panel(values_ + p * inputs_ * width, width, inputs_);
    Eigen::Index done = 0;  // inputs packed by whole P x P tiles
    if constexpr (P > 1) {
      if (count == width) {
        // P x P tiles transposed in registers: scalar copies with a stride take ~5x longer,
        // which at load is most of the time for a ViT-B/32 file.
        for (; done + P <= inputs_; done += P)
          for (Eigen::Index half = 0; half < width; half += P) {
            Tile<Scalar> tile;
            for (Eigen::Index i = 0; i < P; ++i)
              tile.packet[i] = Eigen::internal::ploadu<Packet<Scalar>>(rows + (half + i) * inputs_ + done);
            Eigen::internal::ptranspose(tile);
            for (Eigen::Index i = 0; i < P; ++i) Eigen::internal::pstoreu(&panel(half, done + i), tile.packet[i]);
          }
      }
    }
    panel.topRows(count).rightCols(inputs_ - done) = weight.rightCols(inputs_ - done);
    panel.bottomRows(width - count).setZero();
  }

  /// Fills every panel from W^T [inputs, outputs] stored row-major with row stride `stride`:
  /// panel p's row k is W^T's row k, columns [p * width, (p + 1) * width), a straight copy
  /// (attention's values enter their product this way, v being W^T).
  void pack_transposed(const Scalar* transposed, Eigen::Index stride) {
    const Eigen::Index width = this->width();
    for (Eigen::Index p = 0; p < panels(); ++p) {
      const Eigen::Index count = std::min(width, outputs_ - p * width);
      Scalar* panel = values_ + p * inputs_ * width;
      for (Eigen::Index k = 0; k < inputs_; ++k) {
        std::copy_n(transposed + k * stride + p * width, count, panel + k * width);
        std::fill_n(panel + k * width + count, width - count, Scalar(0));
      }
    }
  }

  /// The kernels that multiply by this packing.
  const ProductKernels<Scalar>& kernels() const { return *kernels_; }
  Eigen::Index width() const { return kernels_->width; }
  Eigen::Index outputs() const { return outputs_; }
  Eigen::Index inputs() const { return inputs_; }
  Eigen::Index panels() const { return (outputs_ + width() - 1) / width(); }

  /// Panel p's weights for inputs from `input` on, width values per input.
  const Scalar* panel(Eigen::Index p, Eigen::Index input = 0) const {
    return values_ + (p * inputs_ + input) * width();
  }

  /// W itself (for tests and tools): unpacks the panels.
  RowMatrix<Scalar> unpacked() const {
    RowMatrix<Scalar> weight(outputs_, inputs_);
    const Eigen::Index width = this->width();
    for (Eigen::Index p = 0; p < panels(); ++p) {
      const Eigen::Index count = std::min(width, outputs_ - p * width);
      weight.middleRows(p * width, count) =
          Eigen::Map<const ColMatrix<Scalar>>(panel(p), width, inputs_).topRows(count);
    }
    return weight;
  }

 private:
  const ProductKernels<Scalar>* kernels_ = &generic_kernels<Scalar>();
  Scalar* values_ = nullptr;
  Eigen::Index outputs_ = 0;
  Eigen::Index inputs_ = 0;
};

/// The part of a PackedWeight one product uses: outputs [output_begin, output_begin +
/// output_count) over inputs [input_begin, input_begin + input_count).
template <typename Scalar>
struct WeightSlice {
  const PackedWeight<Scalar>* weight = nullptr;
  Eigen::Index output_begin = 0;
  Eigen::Index output_count = 0;
  Eigen::Index input_begin = 0;
  Eigen::Index input_count = 0;
};

/// Outputs [begin, begin + count) of W over all its inputs (a thread's share of q/k/v or c_fc).
template <typename Scalar>
WeightSlice<Scalar> weight_rows(const PackedWeight<Scalar>& weight, Eigen::Index begin, Eigen::Index count) {
  return {&weight, begin, count, 0, weight.inputs()};
}

/// Inputs [begin, begin + count) of W for all its outputs (a thread's share of out_proj or c_proj).
template <typename Scalar>
WeightSlice<Scalar> weight_columns(const PackedWeight<Scalar>& weight, Eigen::Index begin, Eigen::Index count) {
  return {&weight, 0, weight.outputs(), begin, count};
}

/// Per-thread buffers of the products, reused across layers.
template <typename Scalar>
struct ProductBuffers {
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> tokens;  // x in kernel blocks, each input-major (pack_tokens)
  Eigen::Index token_rows = 0;                      // x's shape there
  Eigen::Index token_depth = 0;
  int token_block_rows = 0;  // the largest kernel block it was cut into (the kernels' max_rows)
  RowMatrix<Scalar> result;  // x W^T over whole panels
};

/// Tokens per chunk: a chunk's x block stays in L2 while every panel passes over it.
constexpr Eigen::Index kChunkRows = 256;
/// Bytes of x one depth block may take, a quarter of a 2 MiB L2: c_proj on one image (50 x 3072
/// inputs) then runs in 2 depth blocks, 147 -> 159 GFLOP/s against 1 MiB (bench_encoders).
constexpr Eigen::Index kTokenBlockBytes = Eigen::Index(512) << 10;

/// Tokens [begin, begin + rows) of x, one chunk, cut into `blocks` kernel blocks of near-equal
/// size, none above max_rows (50 tokens, 12 rows: 5 x 10). Chunk c of n covers tokens
/// [tokens * c / n, tokens * (c + 1) / n).
struct TokenChunk {
  Eigen::Index begin, rows, blocks;

  TokenChunk(Eigen::Index tokens, Eigen::Index chunk, Eigen::Index chunks, int max_rows)
      : begin(tokens * chunk / chunks), rows(tokens * (chunk + 1) / chunks - begin),
        blocks((rows + max_rows - 1) / max_rows) {}

  static Eigen::Index count(Eigen::Index tokens) { return (tokens + kChunkRows - 1) / kChunkRows; }
  Eigen::Index block_begin(Eigen::Index b) const { return begin + rows * b / blocks; }
  Eigen::Index block_rows(Eigen::Index b) const { return block_begin(b + 1) - block_begin(b); }
};

/// Copies x [tokens, depth] into buffers.tokens in the layout of `kernels` (each kernel block
/// input-major), for the multiply_packed calls that follow: one copy for several products with
/// the same input, such as q, k and v.
template <typename Scalar, typename Input>
void pack_tokens(const Eigen::MatrixBase<Input>& x, const ProductKernels<Scalar>& kernels,
                 ProductBuffers<Scalar>& buffers) {
  const Eigen::Index tokens = x.rows();
  const Eigen::Index depth = x.cols();
  buffers.tokens.resize(tokens * depth);
  buffers.token_rows = tokens;
  buffers.token_depth = depth;
  buffers.token_block_rows = kernels.max_rows;
  for (Eigen::Index c = 0; c < TokenChunk::count(tokens); ++c) {
    const TokenChunk chunk(tokens, c, TokenChunk::count(tokens), kernels.max_rows);
    for (Eigen::Index b = 0; b < chunk.blocks; ++b) {
      const Eigen::Index begin = chunk.block_begin(b);
      Eigen::Map<ColMatrix<Scalar>>(buffers.tokens.data() + begin * depth, chunk.block_rows(b), depth) =
          x.middleRows(begin, chunk.block_rows(b));
    }
  }
}

/// Where the kernels write a product's whole panels: straight into a row-major dest when the
/// slice [begin, begin + count) of outputs is made of whole panels (always so for CLIP's
/// shapes), else into `result`, which finish() copies the slice from.
template <typename Scalar, typename Output>
class PanelOutput {
 public:
  PanelOutput(const Eigen::MatrixBase<Output>& dest, Eigen::Index begin, Eigen::Index count, Eigen::Index width,
              RowMatrix<Scalar>& result)
      : dest_(const_cast<Eigen::MatrixBase<Output>&>(dest)), result_(result), begin_(begin), count_(count),
        first_(begin / width * width) {
    constexpr bool row_major_dest = (int(Output::Flags) & Eigen::DirectAccessBit) && bool(Output::IsRowMajor) &&
                                    int(Eigen::internal::traits<Output>::InnerStrideAtCompileTime) == 1;
    if constexpr (row_major_dest) {
      if (begin % width == 0 && count % width == 0) {
        out_ = dest_.derived().data();
        stride_ = dest_.derived().outerStride();
        return;
      }
    }
    result_.resize(dest_.rows(), (begin + count + width - 1) / width * width - first_);
    out_ = result_.data();
    stride_ = result_.cols();
  }

  /// Token t's outputs of panel p (counted from the slice's first panel).
  Scalar* row(Eigen::Index t, Eigen::Index p, Eigen::Index width) const { return out_ + t * stride_ + p * width; }
  Eigen::Index stride() const { return stride_; }

  void finish() {
    if (out_ == result_.data()) dest_ = result_.middleCols(begin_ - first_, count_);
  }

 private:
  Eigen::MatrixBase<Output>& dest_;
  RowMatrix<Scalar>& result_;
  Eigen::Index begin_, count_, first_;
  Scalar* out_ = nullptr;
  Eigen::Index stride_ = 0;
};

/// Panel p's data for depth step k is at base + p * panel_bytes + k * step_bytes.
struct PanelStream {
  const char* base;
  Eigen::Index panel_bytes;
  Eigen::Index step_bytes;
};

/// The loop nest of every panel product, float or int8: chunks of tokens (kChunkRows), depth
/// blocks (at most token_block_bytes of x each), panels [first_panel, end_panel), kernel blocks of at
/// most max_rows tokens. Calls on_depth_block(chunk, k0, kc) before each depth block's panels
/// and call(block_begin, block_rows, k0, kc, panel, weights, fetch) for each kernel call, with
/// the next panel's weights for the block shared out among the calls as prefetches.
template <typename OnDepthBlock, typename Call>
void for_each_kernel_call(Eigen::Index tokens, int max_rows, Eigen::Index depth, Eigen::Index token_step_bytes,
                          const PanelStream& stream, Eigen::Index first_panel, Eigen::Index end_panel,
                          Eigen::Index token_block_bytes, OnDepthBlock&& on_depth_block, Call&& call) {
  for (Eigen::Index c = 0; c < TokenChunk::count(tokens); ++c) {
    const TokenChunk chunk(tokens, c, TokenChunk::count(tokens), max_rows);
    const Eigen::Index chunk_bytes = chunk.rows * depth * token_step_bytes;
    const Eigen::Index depth_blocks =
        std::max<Eigen::Index>(1, (chunk_bytes + token_block_bytes - 1) / token_block_bytes);
    for (Eigen::Index d = 0; d < depth_blocks; ++d) {
      const Eigen::Index k0 = depth * d / depth_blocks;
      const Eigen::Index kc = depth * (d + 1) / depth_blocks - k0;
      on_depth_block(chunk, k0, kc);
      // The next panel's kc steps are fetched evenly over this panel's kernel calls
      // (chunk.blocks * kc steps): as few misses in flight as keep up with the compute. On
      // ViT-B/32's float products, twice that rate, every other line (for the adjacent-line
      // prefetcher) or a panel further ahead were slower or no faster, on AVX2 and AVX-512.
      const Eigen::Index panel_lines = std::max<Eigen::Index>(1, (kc * stream.step_bytes + 63) / 64);
      const Eigen::Index steps = std::max<Eigen::Index>(1, chunk.blocks * kc);  // 0 for no inputs
      Prefetch fetch;
      fetch.lines = static_cast<int>(std::max<Eigen::Index>(1, (panel_lines + steps - 1) / steps));
      fetch.every = std::max<Eigen::Index>(1, steps * fetch.lines / panel_lines);
      const Eigen::Index lines_per_call = kc / fetch.every * fetch.lines;
      for (Eigen::Index p = first_panel; p < end_panel; ++p) {
        const char* w = stream.base + p * stream.panel_bytes + k0 * stream.step_bytes;
        const char* next = w + stream.panel_bytes;
        const char* next_end = p + 1 < end_panel ? next + kc * stream.step_bytes : next;
        for (Eigen::Index b = 0; b < chunk.blocks; ++b) {
          fetch.begin = std::min(next + b * lines_per_call * 64, next_end);
          fetch.end = next_end;
          call(chunk.block_begin(b), chunk.block_rows(b), k0, kc, p, w, d > 0, fetch);
        }
      }
    }
  }
}

/// dest = x W^T over the slice's outputs, for the x last given to pack_tokens (its columns
/// being the slice's inputs).
template <typename Scalar, typename Output>
void multiply_packed(const WeightSlice<Scalar>& slice, const Eigen::MatrixBase<Output>& dest,
                     ProductBuffers<Scalar>& buffers) {
  const PackedWeight<Scalar>& weight = *slice.weight;
  const ProductKernels<Scalar>& kernels = weight.kernels();
  const Eigen::Index width = kernels.width;
  const Eigen::Index tokens = buffers.token_rows;
  const Eigen::Index depth = slice.input_count;
  eigen_assert(buffers.token_depth == depth && buffers.token_block_rows == kernels.max_rows &&
               dest.rows() == tokens && dest.cols() == slice.output_count);
  const Eigen::Index first_panel = slice.output_begin / width;
  const Eigen::Index end_panel = (slice.output_begin + slice.output_count + width - 1) / width;
  PanelOutput<Scalar, Output> out(dest, slice.output_begin, slice.output_count, width, buffers.result);
  constexpr auto bytes = Eigen::Index(sizeof(Scalar));
  const PanelStream stream{reinterpret_cast<const char*>(weight.panel(0, slice.input_begin)),
                           weight.inputs() * width * bytes, width * bytes};
  for_each_kernel_call(
      tokens, kernels.max_rows, depth, bytes, stream, first_panel, end_panel, kTokenBlockBytes,
      [](const TokenChunk&, Eigen::Index, Eigen::Index) {},
      [&](Eigen::Index begin, Eigen::Index rows, Eigen::Index k0, Eigen::Index kc, Eigen::Index p, const char* w,
          bool accumulate, Prefetch fetch) {
        kernels.rows[static_cast<std::size_t>(rows)](buffers.tokens.data() + begin * depth + k0 * rows,
                                                     reinterpret_cast<const Scalar*>(w), kc,
                                                     out.row(begin, p - first_panel, width), out.stride(), accumulate,
                                                     fetch);
      });
  out.finish();
}

/// dest = x W^T over the slice's outputs, x [tokens, slice inputs].
template <typename Scalar, typename Input, typename Output>
void multiply_transposed(const Eigen::MatrixBase<Input>& x, const WeightSlice<Scalar>& slice,
                         const Eigen::MatrixBase<Output>& dest, ProductBuffers<Scalar>& buffers) {
  eigen_assert(x.cols() == slice.input_count);
  pack_tokens(x, slice.weight->kernels(), buffers);
  multiply_packed(slice, dest, buffers);
}

}  // namespace clip::detail
