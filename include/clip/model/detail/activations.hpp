#pragma once
// The MLP activations of CLIP's transformer blocks, in place on a batch of tokens. Apart from
// layers.hpp because exact GELU needs Eigen's erf (unsupported/Eigen/SpecialFunctions), a large
// header only the files that compile the encoders should parse.

#include <clip/detail/eigen.hpp>
#include <unsupported/Eigen/SpecialFunctions>

namespace clip::detail {

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

}  // namespace clip::detail
