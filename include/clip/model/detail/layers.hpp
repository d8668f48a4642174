#pragma once
// The building blocks of CLIP's transformer towers, row-wise on batches of tokens (one token per
// row): LayerNorm, softmax, the two activations and the linear layer (attention, built on the
// weight products' kernels, is in attention.hpp). Each mirrors the PyTorch op OpenAI's model.py calls.

#include <clip/types.hpp>

#include <clip/detail/eigen.hpp>
#include <unsupported/Eigen/SpecialFunctions>

#include <cmath>
#include <limits>

namespace clip::detail {

template <typename Scalar>
using RowVector = Eigen::Matrix<Scalar, 1, Eigen::Dynamic>;

/// Read-only views of weights, wherever they live (memory map or owned storage).
template <typename Scalar>
using MatrixView = Eigen::Map<const RowMatrix<Scalar>>;
template <typename Scalar>
using VectorView = Eigen::Map<const RowVector<Scalar>>;

/// torch.nn.LayerNorm over each row: (x - mean) / sqrt(biased variance + eps) * weight + bias.
/// `out` may alias `x`.
template <typename Scalar, typename Input, typename Output>
void layer_norm(const Eigen::MatrixBase<Input>& x, const VectorView<Scalar>& weight, const VectorView<Scalar>& bias,
                double eps, const Eigen::MatrixBase<Output>& out_) {
  auto& out = const_cast<Eigen::MatrixBase<Output>&>(out_);  // Eigen's idiom for writable blocks
  const Eigen::Index width = x.cols();
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    const Scalar mean = x.row(r).mean();
    out.row(r) = x.row(r).array() - mean;
    const Scalar variance = out.row(r).squaredNorm() / static_cast<Scalar>(width);
    const Scalar inverse_std = Scalar(1) / std::sqrt(variance + static_cast<Scalar>(eps));
    out.row(r) = (out.row(r).array() * inverse_std) * weight.array() + bias.array();
  }
}

/// Softmax of each row in place; with `causal`, row i covers only columns 0..i (the rest become 0),
/// which is what adding OpenAI's -inf upper-triangle mask before softmax gives.
template <typename Derived>
void softmax_rows(const Eigen::MatrixBase<Derived>& scores_, bool causal = false) {
  auto& scores = const_cast<Eigen::MatrixBase<Derived>&>(scores_);
  using Scalar = typename Derived::Scalar;
  for (Eigen::Index r = 0; r < scores.rows(); ++r) {
    const Eigen::Index visible = causal ? std::min<Eigen::Index>(r + 1, scores.cols()) : scores.cols();
    auto row = scores.row(r).head(visible);
    const Scalar max = row.maxCoeff();  // subtracting the max keeps exp() from overflowing
    row = (row.array() - max).exp();
    row /= row.sum();
    scores.row(r).tail(scores.cols() - visible).setZero();
  }
}

/// QuickGELU, OpenAI's activation: x * sigmoid(1.702 x), in place.
template <typename Derived>
void quick_gelu(const Eigen::MatrixBase<Derived>& x_) {
  auto& x = const_cast<Eigen::MatrixBase<Derived>&>(x_);
  using Scalar = typename Derived::Scalar;
  x = x.array() / (Scalar(1) + (x.array() * Scalar(-1.702)).exp());
}

/// Exact GELU (torch.nn.GELU default): x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), in place.
template <typename Derived>
void gelu(const Eigen::MatrixBase<Derived>& x_) {
  auto& x = const_cast<Eigen::MatrixBase<Derived>&>(x_);
  using Scalar = typename Derived::Scalar;
  const Scalar inverse_sqrt2 = Scalar(0.70710678118654752440);
  x = (Scalar(0.5) * x.array()) * (Scalar(1) + (x.array() * inverse_sqrt2).erf());
}

/// torch.nn.Linear: out = x W^T + b with W stored [out, in] as PyTorch keeps it.
template <typename Scalar, typename Input>
void linear(const Eigen::MatrixBase<Input>& x, const MatrixView<Scalar>& weight, const VectorView<Scalar>& bias,
            RowMatrix<Scalar>& out) {
  out.noalias() = x * weight.transpose();
  out.rowwise() += bias;
}

}  // namespace clip::detail
