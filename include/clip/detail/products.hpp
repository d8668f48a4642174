#pragma once
// The transformer's weight products, out = x W^T with W kept [out, in] as PyTorch stores it
// (read in place from the memory map, never repacked at load), split over threads by output
// columns. Results go to a column-major matrix: Eigen then packs W as its right-hand side
// (4 contiguous weight rows at a time) instead of transposing it into 48-row left-hand panels,
// which was 16% faster on mlp.c_proj. Products with only a few rows (one short prompt) are
// bound by reading W from memory, so they skip Eigen's packing and stream each weight row once.

#include <clip/detail/layers.hpp>
#include <clip/detail/parallel.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <type_traits>

namespace clip::detail {

template <typename Scalar>
using ColMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

/// Row counts up to this use thin_product; above it packed_product (AVX-512) or Eigen's GEMM.
constexpr Eigen::Index kThinRows = 16;
/// Above this many rows Eigen's GEMM, whose cache blocking suits tall x, beats packed_product
/// (ViT-B/32 shapes, 1 core: 50 rows packed 106-117 vs Eigen 92 GFLOP/s; 400 rows 131-140 vs 147).
constexpr Eigen::Index kPackedMaxRows = 160;

/// A block of a row-major weight matrix: some of its rows or columns.
template <typename Scalar>
using WeightSlice = Eigen::Map<const RowMatrix<Scalar>, 0, Eigen::OuterStride<>>;

template <typename Scalar>
WeightSlice<Scalar> weight_rows(const MatrixView<Scalar>& weight, Eigen::Index begin, Eigen::Index count) {
  return WeightSlice<Scalar>(weight.data() + begin * weight.cols(), count, weight.cols(),
                             Eigen::OuterStride<>(weight.cols()));
}

template <typename Scalar>
WeightSlice<Scalar> weight_columns(const MatrixView<Scalar>& weight, Eigen::Index begin, Eigen::Index count) {
  return WeightSlice<Scalar>(weight.data() + begin, weight.rows(), count, Eigen::OuterStride<>(weight.cols()));
}

/// out[t, j] = x[t, :] . W[j, :] for t < rows, j < n. `x` is row-major with a multiple of 4 rows
/// (zero past `rows`), K columns; W is n rows of K values, `stride` apart.
template <typename Scalar, typename Output>
void thin_product(const RowMatrix<Scalar>& x, Eigen::Index rows, const Scalar* weight, Eigen::Index stride,
                  Eigen::Index n, const Eigen::MatrixBase<Output>& out_) {
  auto& out = const_cast<Eigen::MatrixBase<Output>&>(out_);
  using Packet = typename Eigen::internal::packet_traits<Scalar>::type;
  constexpr Eigen::Index P = Eigen::internal::packet_traits<Scalar>::size;
  const Eigen::Index K = x.cols();
  const Scalar* xs = x.data();
  const auto block = [&](auto width_tag, Eigen::Index j) {
    constexpr int J = decltype(width_tag)::value;
    for (Eigen::Index t0 = 0; t0 < x.rows(); t0 += 4) {
      Packet acc[4][J];  // NOLINT
#pragma GCC unroll 4
      for (int t = 0; t < 4; ++t)
#pragma GCC unroll 4
        for (int jj = 0; jj < J; ++jj) acc[t][jj] = Eigen::internal::pset1<Packet>(Scalar(0));
      Eigen::Index k = 0;
      for (; k + P <= K; k += P) {
        Packet w[J];
#pragma GCC unroll 4
        for (int jj = 0; jj < J; ++jj) w[jj] = Eigen::internal::ploadu<Packet>(weight + (j + jj) * stride + k);
#pragma GCC unroll 4
        for (int t = 0; t < 4; ++t) {
          const Packet xv = Eigen::internal::ploadu<Packet>(xs + (t0 + t) * K + k);
#pragma GCC unroll 4
          for (int jj = 0; jj < J; ++jj) acc[t][jj] = Eigen::internal::pmadd(xv, w[jj], acc[t][jj]);
        }
      }
      for (int t = 0; t < 4 && t0 + t < rows; ++t)
        for (int jj = 0; jj < J; ++jj) {
          Scalar sum = Eigen::internal::predux(acc[t][jj]);
          for (Eigen::Index kk = k; kk < K; ++kk) sum += xs[(t0 + t) * K + kk] * weight[(j + jj) * stride + kk];
          out(t0 + t, j + jj) = sum;
        }
    }
  };
  Eigen::Index j = 0;
  for (; j + 4 <= n; j += 4) block(std::integral_constant<int, 4>(), j);
  for (; j < n; ++j) block(std::integral_constant<int, 1>(), j);
}

/// Per-thread buffers of the products, reused across layers.
template <typename Scalar>
struct ProductBuffers {
  RowMatrix<Scalar> padded;  // thin_product's copy of x
  ColMatrix<Scalar> packed;  // packed_product's x^T, rows padded to whole packets
  ColMatrix<Scalar> result;  // packed_product's result, rows padded likewise
};

#ifdef EIGEN_VECTORIZE_AVX512
/// C[t, n0 + j] (+)= sum_k a[k * lda + t] * w[j * ws + k] for NR weight rows and TV packets of
/// tokens: NR x TV accumulators, the weights broadcast straight from their row-major rows.
template <int NR, int TV, typename Scalar>
inline void packed_kernel(const Scalar* a, Eigen::Index lda, const Scalar* w, Eigen::Index ws, Eigen::Index depth,
                          Scalar* c, Eigen::Index ldc, bool accumulate) {
  using Packet = typename Eigen::internal::packet_traits<Scalar>::type;
  constexpr Eigen::Index P = Eigen::internal::packet_traits<Scalar>::size;
  Packet acc[NR][TV];
#pragma GCC unroll 8
  for (int j = 0; j < NR; ++j)
#pragma GCC unroll 4
    for (int v = 0; v < TV; ++v) acc[j][v] = Eigen::internal::pset1<Packet>(Scalar(0));
  // The weights stream from memory (one image reads all ~350 MB of ViT-B/32 once): fetch each
  // row a few cache lines ahead, once per line.
  constexpr Eigen::Index line = 64 / sizeof(Scalar);
  constexpr Eigen::Index ahead = 4 * line;
  for (Eigen::Index k = 0; k < depth; ++k) {
    if (k % line == 0) {
#pragma GCC unroll 8
      for (int j = 0; j < NR; ++j) __builtin_prefetch(w + j * ws + k + ahead);
    }
    Packet x[TV];
#pragma GCC unroll 4
    for (int v = 0; v < TV; ++v) x[v] = Eigen::internal::pload<Packet>(a + k * lda + v * P);
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      const Packet b = Eigen::internal::pset1<Packet>(w[j * ws + k]);
#pragma GCC unroll 4
      for (int v = 0; v < TV; ++v) acc[j][v] = Eigen::internal::pmadd(x[v], b, acc[j][v]);
    }
  }
#pragma GCC unroll 8
  for (int j = 0; j < NR; ++j)
#pragma GCC unroll 4
    for (int v = 0; v < TV; ++v) {
      Scalar* out = c + j * ldc + v * P;
      Eigen::internal::pstore(out, accumulate ? Eigen::internal::padd(Eigen::internal::pload<Packet>(out), acc[j][v])
                                              : acc[j][v]);
    }
}

template <int NR, typename Scalar>
inline void packed_row_block(const Scalar* a, Eigen::Index lda, const Scalar* w, Eigen::Index ws, Eigen::Index depth,
                             Scalar* c, Eigen::Index ldc, bool accumulate) {
  constexpr Eigen::Index P = Eigen::internal::packet_traits<Scalar>::size;
  Eigen::Index t = 0;
  for (; t + 4 * P <= lda; t += 4 * P) packed_kernel<NR, 4>(a + t, lda, w, ws, depth, c + t, ldc, accumulate);
  switch ((lda - t) / P) {
    case 3: packed_kernel<NR, 3>(a + t, lda, w, ws, depth, c + t, ldc, accumulate); break;
    case 2: packed_kernel<NR, 2>(a + t, lda, w, ws, depth, c + t, ldc, accumulate); break;
    case 1: packed_kernel<NR, 1>(a + t, lda, w, ws, depth, c + t, ldc, accumulate); break;
    default: break;
  }
}

/// dest = x W^T with x^T packed (tokens padded to whole packets, so every load is a full aligned
/// packet) and W read in place: each weight is broadcast against 4 packets of tokens, so W needs
/// no repacking at all (Eigen transposes it into panels on every call).
template <typename Scalar, typename Input, typename Output>
void packed_product(const Eigen::MatrixBase<Input>& x, const WeightSlice<Scalar>& weight, Output& dest,
                    ProductBuffers<Scalar>& buffers) {
  constexpr Eigen::Index P = Eigen::internal::packet_traits<Scalar>::size;
  constexpr int NR = 6;
  const Eigen::Index rows = x.rows();
  const Eigen::Index padded_rows = (rows + P - 1) / P * P;
  const Eigen::Index depth = x.cols();
  const Eigen::Index outputs = weight.rows();
  buffers.packed.resize(padded_rows, depth);
  buffers.packed.topRows(rows) = x;
  buffers.packed.bottomRows(padded_rows - rows).setZero();
  buffers.result.resize(padded_rows, outputs);
  // Depth blocks keep the packed x block in L2 (at most ~512 KiB).
  const Eigen::Index block_depth = std::max<Eigen::Index>(256, std::min<Eigen::Index>(depth, (Eigen::Index(1) << 17) / padded_rows));
  const Scalar* a = buffers.packed.data();
  Scalar* c = buffers.result.data();
  const Eigen::Index ws = weight.outerStride();
  for (Eigen::Index k0 = 0; k0 < depth; k0 += block_depth) {
    const Eigen::Index kc = std::min(block_depth, depth - k0);
    const bool accumulate = k0 > 0;
    Eigen::Index n = 0;
    for (; n + NR <= outputs; n += NR)
      packed_row_block<NR>(a + k0 * padded_rows, padded_rows, weight.data() + n * ws + k0, ws, kc, c + n * padded_rows,
                           padded_rows, accumulate);
    for (; n < outputs; ++n)
      packed_row_block<1>(a + k0 * padded_rows, padded_rows, weight.data() + n * ws + k0, ws, kc, c + n * padded_rows,
                          padded_rows, accumulate);
  }
  dest = buffers.result.topRows(rows);
}
#endif

/// dest = x W^T, W being a slice of a weight matrix.
template <typename Scalar, typename Input, typename Output>
void multiply_transposed(const Eigen::MatrixBase<Input>& x, const WeightSlice<Scalar>& weight,
                         const Eigen::MatrixBase<Output>& dest_, ProductBuffers<Scalar>& buffers) {
  auto& dest = const_cast<Eigen::MatrixBase<Output>&>(dest_);
  const Eigen::Index rows = x.rows();
  if (rows <= kThinRows) {
    RowMatrix<Scalar>& padded = buffers.padded;
    padded.resize((rows + 3) / 4 * 4, x.cols());
    padded.topRows(rows) = x;
    padded.bottomRows(padded.rows() - rows).setZero();
    thin_product(padded, rows, weight.data(), weight.outerStride(), weight.rows(), dest);
    return;
  }
#ifdef EIGEN_VECTORIZE_AVX512
  if constexpr (std::is_same_v<Scalar, float>) {
    if (rows <= kPackedMaxRows) {
      packed_product(x, weight, dest, buffers);
      return;
    }
  }
#endif
  dest.noalias() = x.derived() * weight.transpose();
}

}  // namespace clip::detail
