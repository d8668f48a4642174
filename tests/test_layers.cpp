// The transformer building blocks against straightforward double loops written from the
// definitions of the PyTorch ops (LayerNorm, softmax, MultiheadAttention, QuickGELU, GELU, Linear).

#include <clip/model/detail/attention.hpp>
#include <clip/model/detail/layers.hpp>
#include <clip/model/detail/products.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <random>
#include <vector>

namespace {

using clip::RowMatrix;
using clip::detail::MatrixView;
using clip::detail::VectorView;

RowMatrix<double> random_matrix(Eigen::Index rows, Eigen::Index cols, unsigned seed, double spread = 1.0) {
  std::mt19937 generator(seed);
  std::normal_distribution<double> normal(0.0, spread);
  RowMatrix<double> matrix(rows, cols);
  for (Eigen::Index i = 0; i < matrix.size(); ++i) matrix.data()[i] = normal(generator);
  return matrix;
}

double max_abs_difference(const RowMatrix<double>& a, const RowMatrix<double>& b) {
  EXPECT_EQ(a.rows(), b.rows());
  EXPECT_EQ(a.cols(), b.cols());
  return (a - b).cwiseAbs().maxCoeff();
}

// Tolerances: double results agree with the loops to a few ulp of the values involved (1e-12 for
// O(1)..O(10) values); float results carry float rounding, ~1e-7 relative per operation summed over
// at most a few dozen terms, so 1e-5 absolute for O(1) outputs.
constexpr double double_tolerance = 1e-12;
constexpr double float_tolerance = 1e-5;

RowMatrix<double> layer_norm_loops(const RowMatrix<double>& x, const std::vector<double>& weight,
                                   const std::vector<double>& bias, double eps) {
  RowMatrix<double> out(x.rows(), x.cols());
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    double mean = 0;
    for (Eigen::Index c = 0; c < x.cols(); ++c) mean += x(r, c);
    mean /= static_cast<double>(x.cols());
    double variance = 0;
    for (Eigen::Index c = 0; c < x.cols(); ++c) variance += (x(r, c) - mean) * (x(r, c) - mean);
    variance /= static_cast<double>(x.cols());  // biased, as torch.nn.LayerNorm
    for (Eigen::Index c = 0; c < x.cols(); ++c)
      out(r, c) = (x(r, c) - mean) / std::sqrt(variance + eps) * weight[c] + bias[c];
  }
  return out;
}

TEST(Layers, LayerNormMatchesDefinition) {
  // Rows with an offset and a large scale: a one-pass variance would lose precision here.
  RowMatrix<double> x = random_matrix(5, 48, 1, 3.0);
  x.array() += 20.0;
  x.row(4).setConstant(7.0);  // zero variance: eps keeps it finite, the output is the bias
  const RowMatrix<double> weight = random_matrix(1, 48, 2), bias = random_matrix(1, 48, 3);
  const std::vector<double> w(weight.data(), weight.data() + 48), b(bias.data(), bias.data() + 48);
  const RowMatrix<double> expected = layer_norm_loops(x, w, b, 1e-5);

  RowMatrix<double> out(5, 48);
  clip::detail::layer_norm(x, VectorView<double>(weight.data(), 48), VectorView<double>(bias.data(), 48), 1e-5, out);
  EXPECT_LT(max_abs_difference(out, expected), double_tolerance);

  const RowMatrix<float> weight_f = weight.cast<float>(), bias_f = bias.cast<float>();
  RowMatrix<float> x_f = x.cast<float>();
  clip::detail::layer_norm(x_f, VectorView<float>(weight_f.data(), 48), VectorView<float>(bias_f.data(), 48), 1e-5,
                           x_f);  // in place, as ln_pre is applied
  EXPECT_LT(max_abs_difference(x_f.cast<double>(), expected), float_tolerance);
}

RowMatrix<double> softmax_loops(const RowMatrix<double>& x, bool causal) {
  RowMatrix<double> out = RowMatrix<double>::Zero(x.rows(), x.cols());
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    const Eigen::Index visible = causal ? r + 1 : x.cols();
    double total = 0;
    for (Eigen::Index c = 0; c < visible; ++c) total += std::exp(x(r, c));
    for (Eigen::Index c = 0; c < visible; ++c) out(r, c) = std::exp(x(r, c)) / total;
  }
  return out;
}

TEST(Layers, SoftmaxMatchesDefinitionWithAndWithoutCausalMask) {
  const RowMatrix<double> x = random_matrix(6, 6, 4, 4.0);
  for (bool causal : {false, true}) {
    RowMatrix<double> out = x;
    clip::detail::softmax_rows(out, causal);
    EXPECT_LT(max_abs_difference(out, softmax_loops(x, causal)), double_tolerance) << "causal " << causal;
    RowMatrix<float> out_f = x.cast<float>();
    clip::detail::softmax_rows(out_f, causal);
    EXPECT_LT(max_abs_difference(out_f.cast<double>(), softmax_loops(x, causal)), float_tolerance);
  }
  // Large logits must not overflow (the max is subtracted first).
  RowMatrix<float> large(1, 3);
  large << 1000.0f, 999.0f, -1000.0f;
  clip::detail::softmax_rows(large);
  EXPECT_NEAR(large(0, 0), 1.0 / (1.0 + std::exp(-1.0)), 1e-6);
  EXPECT_TRUE(large.allFinite());
}

/// torch.nn.MultiheadAttention's core: per head softmax(q k^T / sqrt(d) + mask) v.
RowMatrix<double> attention_loops(const RowMatrix<double>& qkv, int heads, bool causal) {
  const Eigen::Index tokens = qkv.rows(), width = qkv.cols() / 3, head_dim = width / heads;
  RowMatrix<double> context = RowMatrix<double>::Zero(tokens, width);
  for (int h = 0; h < heads; ++h)
    for (Eigen::Index i = 0; i < tokens; ++i) {
      std::vector<double> weights(tokens);
      double max = -INFINITY;
      for (Eigen::Index j = 0; j < tokens; ++j) {
        double dot = 0;
        for (Eigen::Index d = 0; d < head_dim; ++d) dot += qkv(i, h * head_dim + d) * qkv(j, width + h * head_dim + d);
        weights[j] = (causal && j > i) ? -INFINITY : dot / std::sqrt(static_cast<double>(head_dim));
        max = std::max(max, weights[j]);
      }
      double total = 0;
      for (double& weight : weights) total += (weight = std::exp(weight - max));
      for (Eigen::Index j = 0; j < tokens; ++j)
        for (Eigen::Index d = 0; d < head_dim; ++d)
          context(i, h * head_dim + d) += weights[j] / total * qkv(j, 2 * width + h * head_dim + d);
    }
  return context;
}

/// Every instruction set this CPU can run, generic first.
std::vector<clip::Isa> supported_isas() {
  std::vector<clip::Isa> isas;
  for (clip::Isa isa : {clip::Isa::generic, clip::Isa::avx2, clip::Isa::avx512})
    if (clip::isa_supported(isa)) isas.push_back(isa);
  return isas;
}

// Attention runs on the panel kernels: small heads (8 wide, less than a panel), CLIP's 64 and
// the 80 of some open_clip models, token counts of the towers (50 image tokens, 77 text ones),
// on every path. float sums of up to 80 products: 2e-5 relative to the values' scale.
TEST(Layers, AttentionMatchesDefinitionWithAndWithoutCausalMask) {
  struct Shape {
    int heads, head_dim, tokens;
  };
  for (const Shape shape : {Shape{3, 8, 7}, Shape{2, 64, 50}, Shape{2, 80, 77}}) {
    const int width = shape.heads * shape.head_dim;
    const RowMatrix<double> qkv = random_matrix(shape.tokens, 3 * width, 5, 2.0);
    for (bool causal : {false, true}) {
      SCOPED_TRACE(testing::Message() << shape.heads << " heads of " << shape.head_dim << ", " << shape.tokens
                                      << " tokens, causal " << causal);
      const RowMatrix<double> expected = attention_loops(qkv, shape.heads, causal);
      RowMatrix<double> context(shape.tokens, width);
      clip::detail::AttentionScratch<double> scratch;
      clip::detail::attention<double>(qkv, shape.heads, causal, clip::detail::product_kernels<double>(clip::Isa::generic),
                                      context, scratch);
      EXPECT_LT(max_abs_difference(context, expected), double_tolerance);

      // float, writing into a block of a larger matrix as the batched encoders do
      const RowMatrix<float> qkv_f = qkv.cast<float>();
      for (clip::Isa isa : supported_isas()) {
        SCOPED_TRACE(clip::isa_name(isa));
        RowMatrix<float> batch = RowMatrix<float>::Constant(shape.tokens + 2, width, 42.0f);
        clip::detail::AttentionScratch<float> scratch_f;
        clip::detail::attention<float>(qkv_f, shape.heads, causal, clip::detail::product_kernels<float>(isa),
                                       batch.middleRows(1, shape.tokens), scratch_f);
        EXPECT_LT(max_abs_difference(batch.middleRows(1, shape.tokens).cast<double>(), expected),
                  2e-5 * expected.cwiseAbs().maxCoeff());
        EXPECT_TRUE((batch.row(0).array() == 42.0f).all() && (batch.row(shape.tokens + 1).array() == 42.0f).all());
      }
    }
  }
  // With the mask the first token attends only to itself: its output is its own v.
  const int heads = 3, width = 24, tokens = 7;
  const RowMatrix<double> qkv = random_matrix(tokens, 3 * width, 5, 2.0);
  RowMatrix<double> context(tokens, width);
  clip::detail::AttentionScratch<double> scratch;
  clip::detail::attention<double>(qkv, heads, true, clip::detail::product_kernels<double>(clip::Isa::generic), context,
                                  scratch);
  EXPECT_LT((context.row(0) - qkv.row(0).tail(width)).cwiseAbs().maxCoeff(), double_tolerance);
}

TEST(Layers, ActivationsMatchDefinitions) {
  RowMatrix<double> x = random_matrix(4, 50, 6, 3.0);
  x(0, 0) = 0.0;
  x(0, 1) = -30.0;  // QuickGELU's exp(+51) must not turn into inf/inf
  x(0, 2) = 30.0;
  RowMatrix<double> quick_expected(x.rows(), x.cols()), gelu_expected(x.rows(), x.cols());
  for (Eigen::Index i = 0; i < x.size(); ++i) {
    const double v = x.data()[i];
    quick_expected.data()[i] = v / (1.0 + std::exp(-1.702 * v));
    gelu_expected.data()[i] = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
  }
  RowMatrix<double> quick = x, gelu = x;
  clip::detail::quick_gelu(quick);
  clip::detail::gelu(gelu);
  EXPECT_LT(max_abs_difference(quick, quick_expected), double_tolerance);
  EXPECT_LT(max_abs_difference(gelu, gelu_expected), double_tolerance);

  RowMatrix<float> quick_f = x.cast<float>(), gelu_f = x.cast<float>();
  clip::detail::quick_gelu(quick_f);
  clip::detail::gelu(gelu_f);
  ASSERT_TRUE(quick_f.allFinite() && gelu_f.allFinite());
  // Relative to the value: for |x| up to 30, 1e-5 absolute would be too tight near 30.
  EXPECT_LT(((quick_f.cast<double>() - quick_expected).array() / (1.0 + quick_expected.array().abs())).abs().maxCoeff(),
            float_tolerance);
  EXPECT_LT(((gelu_f.cast<double>() - gelu_expected).array() / (1.0 + gelu_expected.array().abs())).abs().maxCoeff(),
            float_tolerance);

  // The instruction sets' own QuickGELU (an exp of their own) on rows of 50, so the last
  // register of each row is partial; values past a row's end must stay untouched. Compared with
  // Eigen's float QuickGELU above (itself checked against the definition), which computes the
  // same float argument -1.702 x: the two exps then differ by a few ulps, relative 1e-6 at most.
  // (Against the double definition the float argument's own rounding already moves results at
  // x ~ -9 by ~1e-6 relative, whichever exp is used.)
  for (clip::Isa isa : supported_isas()) {
    const auto kernel = clip::detail::product_kernels<float>(isa).quick_gelu;
    if (kernel == nullptr) continue;
    SCOPED_TRACE(clip::isa_name(isa));
    RowMatrix<float> values = x.cast<float>();
    for (Eigen::Index r = 0; r + 1 < values.rows(); ++r) kernel(&values(r, 0), values.cols());
    const auto rows = values.rows() - 1;
    const RowMatrix<double> got = values.topRows(rows).cast<double>();
    const RowMatrix<double> eigen = quick_f.topRows(rows).cast<double>();
    EXPECT_LT(((got - eigen).array() / (1e-30 + eigen.array().abs())).abs().maxCoeff(), 1e-6);
    EXPECT_EQ(values.bottomRows(1), x.bottomRows(1).cast<float>());
  }
}

TEST(Layers, LinearMatchesDefinition) {
  const RowMatrix<double> x = random_matrix(5, 12, 7), weight = random_matrix(9, 12, 8), bias = random_matrix(1, 9, 9);
  RowMatrix<double> expected(5, 9);
  for (Eigen::Index r = 0; r < 5; ++r)
    for (Eigen::Index o = 0; o < 9; ++o) {
      double sum = bias(0, o);
      for (Eigen::Index i = 0; i < 12; ++i) sum += x(r, i) * weight(o, i);  // W is [out, in]
      expected(r, o) = sum;
    }
  RowMatrix<double> out;
  clip::detail::linear(x, MatrixView<double>(weight.data(), 9, 12), VectorView<double>(bias.data(), 9), out);
  EXPECT_LT(max_abs_difference(out, expected), double_tolerance);
}


// The encoders' product x W^T reads W packed into panels of a kernel table's width and runs one
// kernel per block of up to max_rows tokens, in chunks and depth blocks for many tokens; on
// slices of W (outputs for q/k/v and c_fc, inputs for out_proj and c_proj) that start and end
// inside panels, every token count must match the definition, on every instruction set this
// CPU has (the float kernels differ per ISA; 1e-4 relative covers float sums of 1100 terms).
void check_weight_products(const clip::detail::ProductKernels<float>& kernels) {
  const RowMatrix<double> full_weight = random_matrix(53, 70, 11);
  const RowMatrix<float> weight_f = full_weight.cast<float>();
  Eigen::VectorXf storage(clip::detail::PackedWeight<float>::packed_size(53, 70, kernels));
  const clip::detail::PackedWeight<float> weight(MatrixView<float>(weight_f.data(), 53, 70), storage.data(), kernels);
  EXPECT_EQ(weight.unpacked(), weight_f);
  clip::detail::ProductBuffers<float> buffers;
  for (Eigen::Index rows : {1, 3, 12, 13, 50, 65, 300, 700}) {
    const RowMatrix<double> x = random_matrix(rows, 70, 12 + static_cast<unsigned>(rows));
    const RowMatrix<float> x_f = x.cast<float>();
    // Rows 5..47 of W (43 outputs, not a whole panel) over all 70 inputs.
    clip::detail::ColMatrix<float> out(rows, 43);
    clip::detail::multiply_transposed(x_f, clip::detail::weight_rows(weight, 5, 43), out, buffers);
    const RowMatrix<double> expected = x * full_weight.middleRows(5, 43).transpose();
    EXPECT_LT(max_abs_difference(out.cast<double>(), expected), 1e-4 * expected.cwiseAbs().maxCoeff()) << rows << " rows";
    // Into row-major blocks, as the encoders' scratch is: written in place when the slice is
    // whole panels (outputs 0..31: one or two panels for any SIMD width), else through a buffer.
    const Eigen::Index panel = kernels.width;
    RowMatrix<float> rows_out = RowMatrix<float>::Zero(rows, 7 + 32 + 43);
    clip::detail::multiply_transposed(x_f, clip::detail::weight_rows(weight, 0, 32), rows_out.middleCols(7, 32), buffers);
    clip::detail::multiply_transposed(x_f, clip::detail::weight_rows(weight, 5, 43), rows_out.rightCols(43), buffers);
    const RowMatrix<double> expected_rows = x * full_weight.topRows(32).transpose();
    EXPECT_LT(max_abs_difference(rows_out.middleCols(7, 32).cast<double>(), expected_rows),
              1e-4 * expected_rows.cwiseAbs().maxCoeff())
        << rows << " rows, whole panels of " << panel << " into a row-major block";
    EXPECT_LT(max_abs_difference(rows_out.rightCols(43).cast<double>(), expected), 1e-4 * expected.cwiseAbs().maxCoeff())
        << rows << " rows, part panels into a row-major block";
    // Columns 9..45 of W (37 inputs, not a whole packet) for all 53 outputs, x's matching columns.
    clip::detail::ColMatrix<float> partial(rows, 53);
    clip::detail::multiply_transposed(x_f.middleCols(9, 37), clip::detail::weight_columns(weight, 9, 37), partial,
                                      buffers);
    const RowMatrix<double> expected_partial = x.middleCols(9, 37) * full_weight.middleCols(9, 37).transpose();
    EXPECT_LT(max_abs_difference(partial.cast<double>(), expected_partial), 1e-4 * expected_partial.cwiseAbs().maxCoeff())
        << rows << " rows, column slice";
  }
  // Deep enough that a 256-token chunk of x is split into depth blocks whose sums accumulate.
  const RowMatrix<double> deep_weight = random_matrix(40, 1100, 13);
  const RowMatrix<float> deep_weight_f = deep_weight.cast<float>();
  Eigen::VectorXf deep_storage(clip::detail::PackedWeight<float>::packed_size(40, 1100, kernels));
  const clip::detail::PackedWeight<float> deep(MatrixView<float>(deep_weight_f.data(), 40, 1100), deep_storage.data(),
                                               kernels);
  const RowMatrix<double> x = random_matrix(256, 1100, 14);
  clip::detail::ColMatrix<float> out(256, 40);
  clip::detail::multiply_transposed(x.cast<float>(), clip::detail::weight_rows(deep, 0, 40), out, buffers);
  const RowMatrix<double> expected = x * deep_weight.transpose();
  EXPECT_LT(max_abs_difference(out.cast<double>(), expected), 1e-4 * expected.cwiseAbs().maxCoeff()) << "depth blocks";
}

TEST(Layers, WeightProductsMatchDefinitionOnSlices) {
  int paths = 0;
  for (clip::Isa isa : supported_isas()) {
    SCOPED_TRACE(clip::isa_name(isa));
    const clip::detail::ProductKernels<float>& kernels = clip::detail::product_kernels<float>(isa);
    EXPECT_EQ(kernels.isa, isa);
    check_weight_products(kernels);
    ++paths;
  }
  std::cout << "checked " << paths << " instruction set(s); best here: " << clip::isa_name(clip::best_isa()) << "\n";
}

}  // namespace
