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

namespace clip::detail {

template <typename Scalar>
using ColMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

/// Row counts up to this use thin_product; above it Eigen's GEMM wins.
constexpr Eigen::Index kThinRows = 16;

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

/// dest = x W^T, W being a slice of a weight matrix; `padded` is thin_product's scratch.
template <typename Scalar, typename Input, typename Output>
void multiply_transposed(const Eigen::MatrixBase<Input>& x, const WeightSlice<Scalar>& weight,
                         const Eigen::MatrixBase<Output>& dest_, RowMatrix<Scalar>& padded) {
  auto& dest = const_cast<Eigen::MatrixBase<Output>&>(dest_);
  const Eigen::Index rows = x.rows();
  if (rows <= kThinRows) {
    padded.resize((rows + 3) / 4 * 4, x.cols());
    padded.topRows(rows) = x;
    padded.bottomRows(padded.rows() - rows).setZero();
    thin_product(padded, rows, weight.data(), weight.outerStride(), weight.rows(), dest);
  } else {
    dest.noalias() = x.derived() * weight.transpose();
  }
}

/// Scratch the products reuse across layers.
template <typename Scalar>
struct ProductScratch {
  RowMatrix<Scalar> padded;  // thin_product's copy of x
  ColMatrix<Scalar> result;  // products added onto the residual stream
};

/// dest [rows, N] = x W^T, then finish(c0, c1) on each finished column slice [c0, c1), each
/// slice on its own thread (up to `threads`).
template <typename Scalar, typename Input, typename Finish>
void product_columns(const Eigen::MatrixBase<Input>& x, const MatrixView<Scalar>& weight, ColMatrix<Scalar>& dest,
                     ProductScratch<Scalar>& scratch, int threads, const Finish& finish) {
  const Eigen::Index rows = x.rows();
  const Eigen::Index outputs = weight.rows();
  dest.resize(rows, outputs);
  const bool thin = rows <= kThinRows;
  if (thin) {
    scratch.padded.resize((rows + 3) / 4 * 4, x.cols());
    scratch.padded.topRows(rows) = x;
    scratch.padded.bottomRows(scratch.padded.rows() - rows).setZero();
  }
  const int parts = outputs >= 64 * threads ? threads : 1;
  parallel_for(parts, parts, [&](int part) {
    const auto [begin, end] = slice(outputs, parts, part);
    if (begin == end) return;
    auto block = dest.middleCols(begin, end - begin);
    if (thin)
      thin_product(scratch.padded, rows, weight.data() + begin * weight.cols(), weight.cols(), end - begin, block);
    else
      block.noalias() = x.derived() * weight.middleRows(begin, end - begin).transpose();
    finish(begin, end);
  });
}

/// dest = x W^T + b.
template <typename Scalar, typename Input>
void linear_columns(const Eigen::MatrixBase<Input>& x, const MatrixView<Scalar>& weight, const VectorView<Scalar>& bias,
                    ColMatrix<Scalar>& dest, ProductScratch<Scalar>& scratch, int threads) {
  product_columns(x, weight, dest, scratch, threads, [&](Eigen::Index begin, Eigen::Index end) {
    dest.middleCols(begin, end - begin).rowwise() += bias.segment(begin, end - begin);
  });
}

/// residual += x W^T + b.
template <typename Scalar, typename Input>
void linear_add(const Eigen::MatrixBase<Input>& x, const MatrixView<Scalar>& weight, const VectorView<Scalar>& bias,
                RowMatrix<Scalar>& residual, ProductScratch<Scalar>& scratch, int threads) {
  ColMatrix<Scalar>& result = scratch.result;
  product_columns(x, weight, result, scratch, threads, [&](Eigen::Index begin, Eigen::Index end) {
    const Eigen::Index n = end - begin;
    result.middleCols(begin, n).rowwise() += bias.segment(begin, n);
    residual.middleCols(begin, n) += result.middleCols(begin, n);
  });
}

}  // namespace clip::detail
