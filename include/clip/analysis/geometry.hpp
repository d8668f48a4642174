#pragma once
// The geometry of CLIP's embedding space as Levi & Gilboa measure it ("The Double-Ellipsoid
// Geometry of CLIP", ICML 2025): each modality on a thin, off-centre, tilted ellipsoidal shell,
// a few features that separate the two shells, conformity (how typical an embedding is) and its
// cheap estimate, and CLIP's loss split into alignment and uniformity, also with the image shell
// shifted toward the origin.
//
// All statistics are population statistics (divide by n) of raw, un-normalised features X [n, d]
// (one item per row; float or double, e.g. RowMatrix or an Eigen::Map over a memory-mapped
// .npy). Everything streams over the rows: nothing is n x n (the covariance is d x d), so a
// million 512-d rows per modality need a few tens of MB beyond the input. Sums are taken in
// double, in a fixed order of row blocks, so results do not depend on the number of threads.

#include <clip/detail/compilation.hpp>
#include <clip/detail/parallel.hpp>
#include <clip/error.hpp>
#include <clip/types.hpp>

#include <clip/detail/eigen.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace clip::geometry {

/// A row-major view of one modality's features; binds to a RowMatrix or a Map without copying.
template <typename Scalar>
using Features = Eigen::Ref<const RowMatrix<Scalar>>;

struct LinearFit {
  double a = 0;  // slope
  double b = 0;  // intercept
};

/// One modality's shell (the statistics of golden.json's "images" and "texts").
struct ShellStatistics {
  Eigen::Index count = 0, dim = 0;
  Eigen::VectorXd mean;             // mean(X)
  double mean_vector_norm = 0;      // |mean(X)|
  Eigen::VectorXd norms;            // |x_i|
  double mean_norm = 0, norm_std = 0;
  Eigen::MatrixXd covariance;       // C = (X - mean)^T (X - mean) / n, d x d
  double sqrt_trace_covariance = 0;
  Eigen::VectorXd feature_variance;        // diag(C)
  Eigen::VectorXd off_diagonal_dominance;  // sum_{j != i} |C_ij| / C_ii (NaN for a constant feature)
  Eigen::VectorXd normalized_mean;  // m = mean of the L2-normalised rows
  Eigen::VectorXd conformity;           // c_i = mean_{j != i} cos(x_i, x_j), exact
  Eigen::VectorXd conformity_estimate;  // e_i = cos(x_i, m)
  double conformity_pearson = 0;
  LinearFit conformity_fit;             // least squares c ~ a e + b
  Eigen::VectorXd feature_min, feature_max;
};

/// How well one feature alone tells images from texts.
struct FeatureSeparability {
  Eigen::Index feature = 0;
  double accuracy = 0;        // correct / (images + texts) of the best single threshold
  std::uint64_t correct = 0;  // items on their modality's side
  bool images_above = false;  // the best rule puts images above the threshold
};

/// CLIP's symmetric cross-entropy split into its two terms (s = scale * cos(I_k, T_j)).
struct PairedTerms {
  double alpha = 0;  // images shifted to I - alpha * mean(I)
  double alignment = 0;   // -mean_k s_kk
  double uniformity = 0;  // mean_k (logsumexp_j s_kj + logsumexp_j s_jk) / 2
  double loss = 0;        // alignment + uniformity
};

/// Conformity of new items against a reference set.
struct ReferenceConformity {
  Eigen::VectorXd conformity;  // mean_j cos(q, r_j) over all reference rows
  Eigen::VectorXd estimate;    // cos(q, m_ref)
};

/// All of one modality's shell statistics in two streamed passes over X; `name` names it in errors.
template <typename Scalar>
ShellStatistics shell_statistics(const Features<Scalar>& x, const std::string& name = "features");

/// mean(X): one pass.
template <typename Scalar>
Eigen::VectorXd mean_vector(const Features<Scalar>& x);

/// Exact conformity c_i = mean_{j != i} cos(x_i, x_j) of every row (see shell_statistics for
/// the O(n d) identity). This convenience computes all of shell_statistics, covariance included.
template <typename Scalar>
Eigen::VectorXd conformity(const Features<Scalar>& x, const std::string& name = "features");

/// Conformity of each query among a reference set (e.g. a query image among a gallery):
/// mean_j cos(q, r_j) over all reference rows, and its estimate cos(q, m_ref).
template <typename Scalar>
ReferenceConformity conformity_against(const Features<Scalar>& reference, const Features<Scalar>& queries);

/// |mean(I) - mean(T)| given both shells.
double centroid_distance(const ShellStatistics& images, const ShellStatistics& texts);

/// The same on L2-normalised rows: |mean(I / |I|) - mean(T / |T|)|.
double normalized_centroid_distance(const ShellStatistics& images, const ShellStatistics& texts);

/// The k features whose single best threshold tells images from texts most accurately (over
/// every threshold between distinct values, both directions), best first, ties by lower index.
/// A feature with no two distinct values scores the majority fraction.
template <typename Scalar>
std::vector<FeatureSeparability> feature_separability(const Features<Scalar>& images, const Features<Scalar>& texts,
                                                      Eigen::Index k = 10);

/// The same with the extremes already known from both shells' statistics.
template <typename Scalar>
std::vector<FeatureSeparability> feature_separability(const Features<Scalar>& images, const Features<Scalar>& texts,
                                                      const ShellStatistics& image_shell, const ShellStatistics& text_shell,
                                                      Eigen::Index k = 10);

/// The largest logit scale the paired terms accept: exp(s - scale) with s >= -scale must not
/// underflow a double (exp(-2 * 300) ~ 1e-261). CLIP clamps its scale at 100.
constexpr double kMaxLogitScale = 300;

/// Alignment, uniformity and loss of paired rows (row k of images pairs row k of texts), for the
/// images as given (alpha 0) and shifted to I - alpha * mean(I) for each alpha; the first result
/// is alpha 0, then one per alpha in order. `batch` > 0 splits the pairs into consecutive
/// batches of that many (as CLIP's training sees them) and averages over all pairs; 0 means one
/// batch of all n. The cost is n * batch * d: every image against every text of its batch, in
/// tiles, never an n x n matrix.
template <typename Scalar>
std::vector<PairedTerms> paired_terms(const Features<Scalar>& images, const Features<Scalar>& texts, double logit_scale,
                                      const std::vector<double>& alphas = {}, Eigen::Index batch = 0,
                                      const Eigen::VectorXd* image_mean = nullptr);

/// The paper's vSLERP: interpolate between two embeddings of one modality around that
/// modality's mean (subtract it, spherical interpolation, add it back), so the path stays on the
/// off-centre shell instead of cutting through it. t = 0 gives a, t = 1 gives b.
Eigen::VectorXd mean_shifted_slerp(const Eigen::VectorXd& a, const Eigen::VectorXd& b, const Eigen::VectorXd& mean,
                                   double t);

/// Everything clip-geometry reports for two modalities.
struct GeometryOptions {
  double logit_scale = 100;
  std::vector<double> shift_alphas;
  Eigen::Index top_k = 10;
  bool paired = true;         // compute the paired terms (needs equal counts)
  Eigen::Index loss_batch = 0;  // see paired_terms
};

struct GeometryReport {
  ShellStatistics images, texts;
  double centroid_distance = 0, normalized_centroid_distance = 0;
  std::vector<FeatureSeparability> separating_features;
  bool has_paired = false;
  PairedTerms paired;
  std::vector<PairedTerms> shift_sweep;
};

/// All of the above for two modalities, as clip-geometry reports it.
template <typename Scalar>
GeometryReport analyze(const Features<Scalar>& images, const Features<Scalar>& texts, const GeometryOptions& options = {});

}  // namespace clip::geometry

// The computations are compiled once in clip_compiled under separate compilation, for float
// and double (clip/detail/compilation.hpp); other files see the declarations above.
#if CLIP_HEADER_DEFINITIONS

namespace clip::geometry {

namespace detail {

using clip::detail::available_threads;
using clip::detail::parallel_for;

constexpr Eigen::Index kRowBlock = 2048;  // rows per block of a streamed pass

/// [begin, end) rows of part `part` of `parts`, cut at multiples of the row block.
inline std::pair<Eigen::Index, Eigen::Index> part_rows(Eigen::Index rows, int parts, int part) {
  const Eigen::Index blocks = (rows + kRowBlock - 1) / kRowBlock;
  const auto cut = [&](int p) { return std::min(rows, blocks * p / parts * kRowBlock); };
  return {cut(part), cut(part + 1)};
}

/// A fixed number of parts for n rows, independent of the thread count (deterministic sums).
inline int fixed_parts(Eigen::Index rows, int most = 8) {
  const Eigen::Index blocks = (rows + kRowBlock - 1) / kRowBlock;
  return static_cast<int>(std::max<Eigen::Index>(1, std::min<Eigen::Index>(most, blocks)));
}

template <typename Scalar>
const Scalar* row_data(const Features<Scalar>& x, Eigen::Index row) {
  return x.data() + row * x.outerStride();
}

template <typename Scalar>
Eigen::Map<const Eigen::Matrix<Scalar, Eigen::Dynamic, 1>> row_map(const Features<Scalar>& x, Eigen::Index row) {
  return {row_data(x, row), x.cols()};
}

inline void check_features(Eigen::Index rows, Eigen::Index cols, const std::string& name, Eigen::Index min_rows = 2) {
  if (rows < min_rows)
    throw Error(name + ": needs at least " + std::to_string(min_rows) + " rows, has " + std::to_string(rows));
  if (cols < 1) throw Error(name + ": has no features (0 columns)");
}

inline void check_same_dim(Eigen::Index a, Eigen::Index b, const std::string& what) {
  if (a != b)
    throw Error(what + ": images have " + std::to_string(a) + " features, texts " + std::to_string(b) +
                "; both modalities need the same dimension");
}

/// First pass over one modality: row norms, column sums, the sum of the normalised rows, and
/// per-feature extremes. Rejects rows that are not finite or are zero (no direction).
template <typename Scalar>
void first_pass(const Features<Scalar>& x, const std::string& name, Eigen::VectorXd& norms, Eigen::VectorXd& column_sum,
                Eigen::VectorXd& unit_sum, Eigen::VectorXd& minimum, Eigen::VectorXd& maximum) {
  const Eigen::Index n = x.rows(), d = x.cols();
  const int parts = fixed_parts(n);
  std::vector<Eigen::VectorXd> sums(parts, Eigen::VectorXd::Zero(d)), units(parts, Eigen::VectorXd::Zero(d));
  std::vector<Eigen::VectorXd> lows(parts, Eigen::VectorXd::Constant(d, std::numeric_limits<double>::infinity()));
  std::vector<Eigen::VectorXd> highs(parts, Eigen::VectorXd::Constant(d, -std::numeric_limits<double>::infinity()));
  norms.resize(n);
  parallel_for(parts, available_threads(), [&](int part) {
    const auto [begin, end] = part_rows(n, parts, part);
    Eigen::VectorXd row(d);
    for (Eigen::Index i = begin; i < end; ++i) {
      row = row_map(x, i).template cast<double>();
      const double squared = row.squaredNorm();
      if (!std::isfinite(squared))
        throw Error(name + ": row " + std::to_string(i) + " is not finite (NaN, Inf or overflowing values)");
      if (squared == 0) throw Error(name + ": row " + std::to_string(i) + " is all zeros (it has no direction)");
      const double norm = std::sqrt(squared);
      norms[i] = norm;
      sums[part] += row;
      units[part] += row / norm;
      lows[part] = lows[part].cwiseMin(row);
      highs[part] = highs[part].cwiseMax(row);
    }
  });
  column_sum = sums[0], unit_sum = units[0], minimum = lows[0], maximum = highs[0];
  for (int part = 1; part < parts; ++part) {
    column_sum += sums[part], unit_sum += units[part];
    minimum = minimum.cwiseMin(lows[part]), maximum = maximum.cwiseMax(highs[part]);
  }
}

/// Pearson r of two vectors and the least-squares line y ~ a x + b (two-pass: centred sums).
inline std::pair<double, LinearFit> correlate(const Eigen::VectorXd& x, const Eigen::VectorXd& y) {
  const double mx = x.mean(), my = y.mean();
  const Eigen::ArrayXd dx = x.array() - mx, dy = y.array() - my;
  const double sxy = (dx * dy).sum(), sxx = dx.square().sum(), syy = dy.square().sum();
  LinearFit fit;
  fit.a = sxx > 0 ? sxy / sxx : 0;
  fit.b = my - fit.a * mx;
  const double r = sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : std::numeric_limits<double>::quiet_NaN();
  return {r, fit};
}

}  // namespace detail

/// All of one modality's shell statistics in two streamed passes over X.
template <typename Scalar>
ShellStatistics shell_statistics(const Features<Scalar>& x, const std::string& name) {
  using namespace detail;
  const Eigen::Index n = x.rows(), d = x.cols();
  check_features(n, d, name);
  [[maybe_unused]] const clip::detail::SerialEigenScope serial;
  ShellStatistics s;
  s.count = n, s.dim = d;
  Eigen::VectorXd column_sum, unit_sum;
  first_pass(x, name, s.norms, column_sum, unit_sum, s.feature_min, s.feature_max);
  s.mean = column_sum / static_cast<double>(n);
  s.mean_vector_norm = s.mean.norm();
  s.mean_norm = s.norms.mean();
  s.norm_std = std::sqrt((s.norms.array() - s.mean_norm).square().mean());
  s.normalized_mean = unit_sum / static_cast<double>(n);
  const double unit_sum_norm = unit_sum.norm();

  // Second pass: the covariance of the centred rows (two-pass, so no E[x^2] - E[x]^2
  // cancellation), one block of rows at a time, each block's product in Scalar and the blocks
  // summed in double; and conformity.
  //
  // Exact conformity in O(n d): with u_j = x_j / |x_j| and S = sum_j u_j,
  //   sum_{j != i} cos(x_i, x_j) = sum_{j != i} u_i . u_j = u_i . S - u_i . u_i = u_i . S - 1,
  // so c_i = (u_i . S - 1) / (n - 1), and the estimate e_i = cos(x_i, m) = u_i . S / |S|
  // (m = S / n). Hence c is exactly linear in e: c = (n |m| e - 1) / (n - 1).
  s.conformity.resize(n);
  s.conformity_estimate.resize(n);
  const int parts = fixed_parts(n);
  std::vector<Eigen::MatrixXd> partial(parts, Eigen::MatrixXd::Zero(d, d));
  const Eigen::Matrix<Scalar, 1, Eigen::Dynamic> mean_row = s.mean.transpose().template cast<Scalar>();
  parallel_for(parts, available_threads(), [&](int part) {
    const auto [begin, end] = part_rows(n, parts, part);
    RowMatrix<Scalar> centred(kRowBlock, d);
    Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> block_product(d, d);
    for (Eigen::Index first = begin; first < end; first += kRowBlock) {
      const Eigen::Index rows = std::min(kRowBlock, end - first);
      for (Eigen::Index i = 0; i < rows; ++i) {
        const Eigen::Index row = first + i;
        centred.row(i) = row_map(x, row).transpose() - mean_row;
        const double dot = row_map(x, row).template cast<double>().dot(unit_sum) / s.norms[row];
        s.conformity[row] = (dot - 1.0) / static_cast<double>(n - 1);
        s.conformity_estimate[row] = dot / unit_sum_norm;
      }
      block_product.setZero();
      block_product.template selfadjointView<Eigen::Lower>().rankUpdate(centred.topRows(rows).transpose());
      partial[part].template triangularView<Eigen::Lower>() += block_product.template cast<double>();
    }
  });
  Eigen::MatrixXd lower = partial[0];
  for (int part = 1; part < parts; ++part) lower += partial[part];
  s.covariance = lower.selfadjointView<Eigen::Lower>();
  s.covariance /= static_cast<double>(n);
  s.feature_variance = s.covariance.diagonal();
  s.sqrt_trace_covariance = std::sqrt(s.feature_variance.sum());
  s.off_diagonal_dominance.resize(d);
  for (Eigen::Index i = 0; i < d; ++i) {
    const double diagonal = s.covariance(i, i);
    s.off_diagonal_dominance[i] = diagonal > 0 ? (s.covariance.row(i).cwiseAbs().sum() - diagonal) / diagonal
                                               : std::numeric_limits<double>::quiet_NaN();
  }
  std::tie(s.conformity_pearson, s.conformity_fit) = correlate(s.conformity_estimate, s.conformity);
  return s;
}

/// mean(X): one pass.
template <typename Scalar>
Eigen::VectorXd mean_vector(const Features<Scalar>& x) {
  detail::check_features(x.rows(), x.cols(), "features", 1);
  Eigen::VectorXd sum = Eigen::VectorXd::Zero(x.cols());
  for (Eigen::Index i = 0; i < x.rows(); ++i) sum += detail::row_map(x, i).template cast<double>();
  return sum / static_cast<double>(x.rows());
}

/// Exact conformity c_i = mean_{j != i} cos(x_i, x_j) of every row (see shell_statistics for
/// the O(n d) identity). This convenience computes all of shell_statistics, covariance included.
template <typename Scalar>
Eigen::VectorXd conformity(const Features<Scalar>& x, const std::string& name) {
  return shell_statistics(x, name).conformity;
}

/// Conformity of each query among a reference set (e.g. a query image among a gallery):
/// mean_j cos(q, r_j) over all reference rows, and its estimate cos(q, m_ref).
template <typename Scalar>
ReferenceConformity conformity_against(const Features<Scalar>& reference, const Features<Scalar>& queries) {
  detail::check_features(reference.rows(), reference.cols(), "reference", 1);
  detail::check_features(queries.rows(), queries.cols(), "queries", 1);
  if (reference.cols() != queries.cols())
    throw Error("conformity_against: reference has " + std::to_string(reference.cols()) + " features, queries " +
                std::to_string(queries.cols()));
  Eigen::VectorXd norms, sum, unit_sum, low, high;
  detail::first_pass(reference, "reference", norms, sum, unit_sum, low, high);
  ReferenceConformity result;
  result.conformity.resize(queries.rows());
  result.estimate.resize(queries.rows());
  for (Eigen::Index q = 0; q < queries.rows(); ++q) {
    const Eigen::VectorXd row = detail::row_map(queries, q).template cast<double>();
    const double norm = row.norm();
    if (!std::isfinite(norm) || norm == 0)
      throw Error("queries: row " + std::to_string(q) + " is not finite or all zeros");
    const double dot = row.dot(unit_sum) / norm;
    result.conformity[q] = dot / static_cast<double>(reference.rows());
    result.estimate[q] = dot / unit_sum.norm();
  }
  return result;
}

/// |mean(I) - mean(T)| given both shells.
CLIP_INLINE double centroid_distance(const ShellStatistics& images, const ShellStatistics& texts) {
  detail::check_same_dim(images.dim, texts.dim, "centroid_distance");
  return (images.mean - texts.mean).norm();
}

/// The same on L2-normalised rows: |mean(I / |I|) - mean(T / |T|)|.
CLIP_INLINE double normalized_centroid_distance(const ShellStatistics& images, const ShellStatistics& texts) {
  detail::check_same_dim(images.dim, texts.dim, "normalized_centroid_distance");
  return (images.normalized_mean - texts.normalized_mean).norm();
}

namespace detail {

constexpr int kSeparabilityBins = 1024;

/// Per-feature binning shared by both passes; monotone in the value, so a bin boundary is a
/// threshold between the largest value below it and the smallest at or above it.
struct FeatureBins {
  Eigen::VectorXd low, scale;
  int bin(Eigen::Index feature, double value) const {
    const int b = static_cast<int>((value - low[feature]) * scale[feature]);
    return std::min(std::max(b, 0), kSeparabilityBins - 1);
  }
};

/// Best single-threshold accuracy of every feature, exact where it can reach the top k.
///
/// Counting per feature the images and texts in 1024 bins between its extremes gives the exact
/// accuracy at every bin boundary (a lower bound for the feature) and, per bin, an upper bound
/// for thresholds inside it. Only features whose bound can reach the k-th best lower bound are
/// refined: their values in the bins that could beat the boundaries are gathered, sorted and
/// swept exactly. No sort of all 2n values per feature, and memory is a few histograms.
template <typename Scalar>
std::vector<FeatureSeparability> separability(const Features<Scalar>& images, const Features<Scalar>& texts,
                                              const Eigen::VectorXd& low, const Eigen::VectorXd& high, Eigen::Index k) {
  const Eigen::Index d = images.cols();
  constexpr int B = kSeparabilityBins;
  const std::uint64_t n_images = static_cast<std::uint64_t>(images.rows()), n_texts = static_cast<std::uint64_t>(texts.rows());
  const std::uint64_t total = n_images + n_texts;
  FeatureBins bins{low, Eigen::VectorXd(d)};
  for (Eigen::Index f = 0; f < d; ++f) bins.scale[f] = high[f] > low[f] ? B / (high[f] - low[f]) : 0.0;

  // Histograms: per part, counts[feature * B + bin]; parts cover image rows, then text rows.
  const int image_parts = fixed_parts(images.rows(), 4), text_parts = fixed_parts(texts.rows(), 4);
  std::vector<std::vector<std::uint32_t>> counts(image_parts + text_parts);
  parallel_for(image_parts + text_parts, available_threads(), [&](int part) {
    const bool is_image = part < image_parts;
    const Features<Scalar>& x = is_image ? images : texts;
    const int local = is_image ? part : part - image_parts;
    const auto [begin, end] = part_rows(x.rows(), is_image ? image_parts : text_parts, local);
    std::vector<std::uint32_t>& hist = counts[part];
    hist.assign(static_cast<std::size_t>(d) * B, 0);
    for (Eigen::Index i = begin; i < end; ++i) {
      const Scalar* row = row_data(x, i);
      for (Eigen::Index f = 0; f < d; ++f) ++hist[static_cast<std::size_t>(f) * B + bins.bin(f, static_cast<double>(row[f]))];
    }
  });
  std::vector<std::uint64_t> image_hist(static_cast<std::size_t>(d) * B, 0), text_hist(image_hist.size(), 0);
  for (int part = 0; part < image_parts + text_parts; ++part) {
    std::vector<std::uint64_t>& into = part < image_parts ? image_hist : text_hist;
    for (std::size_t i = 0; i < into.size(); ++i) into[i] += counts[part][i];
    std::vector<std::uint32_t>().swap(counts[part]);
  }

  // correct(cut) for "images below": images before the cut + texts after it.
  const auto images_below = [&](std::uint64_t images_before, std::uint64_t texts_before) {
    return images_before + (n_texts - texts_before);
  };
  struct Best {
    std::uint64_t correct = 0;
    bool images_above = false;
    bool found = false;
    void offer(std::uint64_t below, std::uint64_t all) {
      const std::uint64_t above = all - below;
      const std::uint64_t value = std::max(below, above);
      if (!found || value > correct) correct = value, images_above = above > below, found = true;
    }
  };
  std::vector<Best> lower(d);
  std::vector<std::uint64_t> upper(d, 0);
  for (Eigen::Index f = 0; f < d; ++f) {
    const std::uint64_t* hi = &image_hist[static_cast<std::size_t>(f) * B];
    const std::uint64_t* ht = &text_hist[static_cast<std::size_t>(f) * B];
    std::uint64_t ib = 0, tb = 0;
    for (int b = 0; b < B; ++b) {
      // A boundary before bin b with items on both sides is a threshold between distinct values.
      if (ib + tb > 0 && ib + tb < total) lower[f].offer(images_below(ib, tb), total);
      const std::uint64_t a0 = images_below(ib, tb), a1 = images_below(ib + hi[b], tb + ht[b]);
      if (hi[b] + ht[b] >= 2) {  // thresholds inside the bin: correct moves by at most its counts
        const std::uint64_t up_below = std::min(a0 + hi[b], a1 + ht[b]);
        const std::uint64_t low_below = std::max(a0 >= ht[b] ? a0 - ht[b] : 0, a1 >= hi[b] ? a1 - hi[b] : 0);
        upper[f] = std::max({upper[f], up_below, total - low_below});
      }
      ib += hi[b], tb += ht[b];
    }
    if (!lower[f].found) {  // no two distinct values: no threshold; the majority is all one can do
      lower[f].correct = std::max(n_images, n_texts);
      lower[f].images_above = false;
    }
    upper[f] = std::max(upper[f], lower[f].correct);
  }

  // Features that can reach the top k: upper bound >= the k-th best lower bound.
  k = std::min<Eigen::Index>(std::max<Eigen::Index>(k, 0), d);
  if (k == 0) return {};
  std::vector<std::uint64_t> lows(d);
  for (Eigen::Index f = 0; f < d; ++f) lows[f] = lower[f].correct;
  std::nth_element(lows.begin(), lows.begin() + (k - 1), lows.end(), std::greater<>());
  const std::uint64_t kth = lows[k - 1];
  std::vector<Eigen::Index> candidates;
  for (Eigen::Index f = 0; f < d; ++f)
    if (upper[f] >= kth && upper[f] > lower[f].correct) candidates.push_back(f);

  std::vector<Best> exact = lower;
  parallel_for(static_cast<int>(candidates.size()), available_threads(), [&](int c) {
    const Eigen::Index f = candidates[c];
    const std::uint64_t* hi = &image_hist[static_cast<std::size_t>(f) * B];
    const std::uint64_t* ht = &text_hist[static_cast<std::size_t>(f) * B];
    // Which bins could hold a threshold better than the best boundary, and the counts before each.
    std::vector<char> open(B, 0);
    std::vector<std::uint64_t> images_before(B), texts_before(B);
    std::uint64_t ib = 0, tb = 0;
    for (int b = 0; b < B; ++b) {
      images_before[b] = ib, texts_before[b] = tb;
      const std::uint64_t a0 = images_below(ib, tb), a1 = images_below(ib + hi[b], tb + ht[b]);
      const std::uint64_t up_below = std::min(a0 + hi[b], a1 + ht[b]);
      const std::uint64_t low_below = std::max(a0 >= ht[b] ? a0 - ht[b] : 0, a1 >= hi[b] ? a1 - hi[b] : 0);
      open[b] = hi[b] + ht[b] >= 2 && std::max(up_below, total - low_below) > exact[f].correct;
      ib += hi[b], tb += ht[b];
    }
    std::vector<std::pair<double, bool>> values;  // (value, is_image) in the open bins
    for (const bool is_image : {true, false}) {
      const Features<Scalar>& x = is_image ? images : texts;
      for (Eigen::Index i = 0; i < x.rows(); ++i) {
        const double v = static_cast<double>(row_data(x, i)[f]);
        if (open[bins.bin(f, v)]) values.emplace_back(v, is_image);
      }
    }
    std::sort(values.begin(), values.end());
    Best best = exact[f];
    for (std::size_t i = 0; i < values.size();) {
      const int b = bins.bin(f, values[i].first);
      std::uint64_t ib_now = images_before[b], tb_now = texts_before[b];
      std::size_t j = i;
      // Cuts after each group of equal values inside bin b, except after the bin's last group
      // (that is the next boundary, counted already).
      while (j < values.size() && bins.bin(f, values[j].first) == b) {
        const double v = values[j].first;
        while (j < values.size() && values[j].first == v) (values[j].second ? ib_now : tb_now) += 1, ++j;
        if (j < values.size() && bins.bin(f, values[j].first) == b) best.offer(images_below(ib_now, tb_now), total);
      }
      i = j;
    }
    exact[f] = best;
  });

  std::vector<FeatureSeparability> all(d);
  for (Eigen::Index f = 0; f < d; ++f)
    all[f] = {f, static_cast<double>(exact[f].correct) / static_cast<double>(total), exact[f].correct, exact[f].images_above};
  // Highest accuracy first, ties by the lower feature index. Features outside the candidates
  // have upper bounds below the k-th exact value, so the first k are exact.
  std::stable_sort(all.begin(), all.end(), [](const FeatureSeparability& a, const FeatureSeparability& b) {
    return a.correct > b.correct;
  });
  all.resize(k);
  return all;
}

}  // namespace detail

/// The k features whose single best threshold tells images from texts most accurately (over
/// every threshold between distinct values, both directions), best first, ties by lower index.
/// A feature with no two distinct values scores the majority fraction.
template <typename Scalar>
std::vector<FeatureSeparability> feature_separability(const Features<Scalar>& images, const Features<Scalar>& texts,
                                                      Eigen::Index k) {
  detail::check_features(images.rows(), images.cols(), "images", 1);
  detail::check_features(texts.rows(), texts.cols(), "texts", 1);
  detail::check_same_dim(images.cols(), texts.cols(), "feature_separability");
  Eigen::VectorXd norms, sum, units, low_i, high_i, low_t, high_t;
  detail::first_pass(images, "images", norms, sum, units, low_i, high_i);
  detail::first_pass(texts, "texts", norms, sum, units, low_t, high_t);
  return detail::separability(images, texts, low_i.cwiseMin(low_t), high_i.cwiseMax(high_t), k);
}

/// The same with the extremes already known from both shells' statistics.
template <typename Scalar>
std::vector<FeatureSeparability> feature_separability(const Features<Scalar>& images, const Features<Scalar>& texts,
                                                      const ShellStatistics& image_shell, const ShellStatistics& text_shell,
                                                      Eigen::Index k) {
  detail::check_same_dim(images.cols(), texts.cols(), "feature_separability");
  return detail::separability(images, texts, image_shell.feature_min.cwiseMin(text_shell.feature_min),
                              image_shell.feature_max.cwiseMax(text_shell.feature_max), k);
}


/// Alignment, uniformity and loss of paired rows (row k of images pairs row k of texts), for the
/// images as given (alpha 0) and shifted to I - alpha * mean(I) for each alpha; the first result
/// is alpha 0, then one per alpha in order. `batch` > 0 splits the pairs into consecutive
/// batches of that many (as CLIP's training sees them) and averages over all pairs; 0 means one
/// batch of all n. The cost is n * batch * d: every image against every text of its batch, in
/// tiles, never an n x n matrix.
template <typename Scalar>
std::vector<PairedTerms> paired_terms(const Features<Scalar>& images, const Features<Scalar>& texts, double logit_scale,
                                      const std::vector<double>& alphas, Eigen::Index batch,
                                      const Eigen::VectorXd* image_mean) {
  using namespace detail;
  check_features(images.rows(), images.cols(), "images", 1);
  check_features(texts.rows(), texts.cols(), "texts", 1);
  check_same_dim(images.cols(), texts.cols(), "paired statistics");
  if (images.rows() != texts.rows())
    throw Error("paired statistics need one text per image: " + std::to_string(images.rows()) + " images, " +
                std::to_string(texts.rows()) + " texts");
  if (!(logit_scale > 0) || logit_scale > kMaxLogitScale)
    throw Error("logit scale " + std::to_string(logit_scale) + " is outside (0, 300]");
  const Eigen::Index n = images.rows();
  [[maybe_unused]] const clip::detail::SerialEigenScope serial;
  const Eigen::VectorXd mean = image_mean ? *image_mean : mean_vector<Scalar>(images);
  std::vector<double> shifts{0.0};
  shifts.insert(shifts.end(), alphas.begin(), alphas.end());
  const Eigen::Index a_count = static_cast<Eigen::Index>(shifts.size());
  if (batch <= 0 || batch > n) batch = n;

  // Per row: 1/|T_j|, mean . T_j, 1/|I_k - alpha mean| per alpha, and the paired products.
  Eigen::VectorXd text_inverse(n), mean_dot_text(n), pair_dot(n);
  Eigen::MatrixXd image_inverse(n, a_count);
  for (Eigen::Index i = 0; i < n; ++i) {
    const Eigen::VectorXd image = row_map(images, i).template cast<double>();
    const Eigen::VectorXd text = row_map(texts, i).template cast<double>();
    const double text_norm = text.norm();
    if (!std::isfinite(text_norm) || text_norm == 0) throw Error("texts: row " + std::to_string(i) + " is not finite or all zeros");
    text_inverse[i] = 1 / text_norm;
    mean_dot_text[i] = mean.dot(text);
    pair_dot[i] = image.dot(text);
    for (Eigen::Index a = 0; a < a_count; ++a) {
      const double norm = (image - shifts[a] * mean).norm();
      if (!std::isfinite(norm) || norm == 0)
        throw Error("images: row " + std::to_string(i) + (a ? " shifted by alpha " + std::to_string(shifts[a]) : std::string()) +
                    " is not finite or all zeros");
      image_inverse(i, a) = 1 / norm;
    }
  }

  // Sums of exp(s - scale): s >= -scale, so no term underflows and none overflows (s <= scale).
  Eigen::MatrixXd row_sum = Eigen::MatrixXd::Zero(n, a_count), column_sum = Eigen::MatrixXd::Zero(n, a_count);
  constexpr Eigen::Index kTileRows = 128, kTileCols = 512;
  for (Eigen::Index first = 0; first < n; first += batch) {
    const Eigen::Index size = std::min(batch, n - first);
    const Eigen::Index row_tiles = (size + kTileRows - 1) / kTileRows;
    const int parts = static_cast<int>(std::min<Eigen::Index>(4, row_tiles));
    std::vector<Eigen::MatrixXd> part_columns(parts, Eigen::MatrixXd::Zero(size, a_count));
    parallel_for(parts, available_threads(), [&](int part) {
      Eigen::MatrixXd image_tile, text_tile, products;
      Eigen::ArrayXXd e;
      for (Eigen::Index tile = row_tiles * part / parts; tile < row_tiles * (part + 1) / parts; ++tile) {
        const Eigen::Index r0 = first + tile * kTileRows, rows = std::min(kTileRows, first + size - r0);
        image_tile = images.middleRows(r0, rows).template cast<double>();
        for (Eigen::Index c0 = first; c0 < first + size; c0 += kTileCols) {
          const Eigen::Index cols = std::min(kTileCols, first + size - c0);
          text_tile = texts.middleRows(c0, cols).template cast<double>();
          products.noalias() = image_tile * text_tile.transpose();  // I_k . T_j
          for (Eigen::Index a = 0; a < a_count; ++a) {
            // s = scale (I_k - alpha mean) . T_j / (|I_k - alpha mean| |T_j|)
            e = ((products.rowwise() - shifts[a] * mean_dot_text.segment(c0, cols).transpose()).array().colwise() *
                     image_inverse.col(a).segment(r0, rows).array()).rowwise() *
                text_inverse.segment(c0, cols).transpose().array();
            e = (logit_scale * (e - 1.0)).exp();
            row_sum.col(a).segment(r0, rows) += e.rowwise().sum().matrix();
            part_columns[part].col(a).segment(c0 - first, cols) += e.colwise().sum().transpose().matrix();
          }
        }
      }
    });
    for (int part = 0; part < parts; ++part) column_sum.middleRows(first, size) += part_columns[part];
  }

  std::vector<PairedTerms> terms(a_count);
  for (Eigen::Index a = 0; a < a_count; ++a) {
    double alignment = 0, uniformity = 0;
    for (Eigen::Index k = 0; k < n; ++k) {
      alignment -= logit_scale * (pair_dot[k] - shifts[a] * mean_dot_text[k]) * image_inverse(k, a) * text_inverse[k];
      uniformity += (2 * logit_scale + std::log(row_sum(k, a)) + std::log(column_sum(k, a))) / 2;
    }
    terms[a].alpha = shifts[a];
    terms[a].alignment = alignment / static_cast<double>(n);
    terms[a].uniformity = uniformity / static_cast<double>(n);
    terms[a].loss = terms[a].alignment + terms[a].uniformity;
  }
  return terms;
}

/// The paper's vSLERP: interpolate between two embeddings of one modality around that
/// modality's mean (subtract it, spherical interpolation, add it back), so the path stays on the
/// off-centre shell instead of cutting through it. t = 0 gives a, t = 1 gives b.
CLIP_INLINE Eigen::VectorXd mean_shifted_slerp(const Eigen::VectorXd& a, const Eigen::VectorXd& b,
                                               const Eigen::VectorXd& mean, double t) {
  if (a.size() != b.size() || a.size() != mean.size()) throw Error("mean_shifted_slerp: vectors of different sizes");
  const Eigen::VectorXd u = a - mean, v = b - mean;
  const double nu = u.norm(), nv = v.norm();
  if (nu == 0 || nv == 0) return mean + (1 - t) * u + t * v;
  const double cosine = std::clamp(u.dot(v) / (nu * nv), -1.0, 1.0);
  const double angle = std::acos(cosine);
  if (angle < 1e-7) return mean + (1 - t) * u + t * v;  // (nearly) parallel: SLERP is the straight line
  const double s = std::sin(angle);
  return mean + (std::sin((1 - t) * angle) / s) * u + (std::sin(t * angle) / s) * v;
}

template <typename Scalar>
GeometryReport analyze(const Features<Scalar>& images, const Features<Scalar>& texts, const GeometryOptions& options) {
  detail::check_same_dim(images.cols(), texts.cols(), "geometry");
  if (options.paired && images.rows() != texts.rows())
    throw Error("paired statistics need one text per image: " + std::to_string(images.rows()) + " images, " +
                std::to_string(texts.rows()) + " texts");
  GeometryReport report;
  report.images = shell_statistics(images, "images");
  report.texts = shell_statistics(texts, "texts");
  report.centroid_distance = centroid_distance(report.images, report.texts);
  report.normalized_centroid_distance = normalized_centroid_distance(report.images, report.texts);
  report.separating_features = feature_separability(images, texts, report.images, report.texts, options.top_k);
  if (options.paired) {
    std::vector<PairedTerms> terms =
        paired_terms(images, texts, options.logit_scale, options.shift_alphas, options.loss_batch, &report.images.mean);
    report.has_paired = true;
    report.paired = terms[0];
    report.shift_sweep.assign(terms.begin() + 1, terms.end());
  }
  return report;
}

}  // namespace clip::geometry

#endif  // CLIP_HEADER_DEFINITIONS

namespace clip::geometry {

#define CLIP_DETAIL_GEOMETRY(Scalar)                                                                                  \
  CLIP_INSTANTIATE(ShellStatistics shell_statistics<Scalar>(const Features<Scalar>&, const std::string&))             \
  CLIP_INSTANTIATE(Eigen::VectorXd mean_vector<Scalar>(const Features<Scalar>&))                                      \
  CLIP_INSTANTIATE(Eigen::VectorXd conformity<Scalar>(const Features<Scalar>&, const std::string&))                   \
  CLIP_INSTANTIATE(ReferenceConformity conformity_against<Scalar>(const Features<Scalar>&, const Features<Scalar>&))  \
  CLIP_INSTANTIATE(std::vector<FeatureSeparability> feature_separability<Scalar>(                                     \
      const Features<Scalar>&, const Features<Scalar>&, Eigen::Index))                                                 \
  CLIP_INSTANTIATE(std::vector<FeatureSeparability> feature_separability<Scalar>(                                     \
      const Features<Scalar>&, const Features<Scalar>&, const ShellStatistics&, const ShellStatistics&, Eigen::Index)) \
  CLIP_INSTANTIATE(std::vector<PairedTerms> paired_terms<Scalar>(const Features<Scalar>&, const Features<Scalar>&,   \
                                                                 double, const std::vector<double>&, Eigen::Index,     \
                                                                 const Eigen::VectorXd*))                               \
  CLIP_INSTANTIATE(GeometryReport analyze<Scalar>(const Features<Scalar>&, const Features<Scalar>&, const GeometryOptions&))
CLIP_DETAIL_GEOMETRY(float)
CLIP_DETAIL_GEOMETRY(double)
#undef CLIP_DETAIL_GEOMETRY

}  // namespace clip::geometry
