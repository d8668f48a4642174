// clip::geometry and the .npy reader on hand-made cases whose answers are worked out by hand or
// by an all-pairs computation here in the test (never by the code under test), and
// clip-geometry against ../shared/reference/geometry/golden.json (float64 numpy, all pairs).

#include "test_support.hpp"

#include <clip/analysis/geometry.hpp>
#include <clip/formats/npy.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace geometry = clip::geometry;
using Matrix = clip::RowMatrix<double>;
const double pi = std::acos(-1.0);

Matrix random_matrix(Eigen::Index rows, Eigen::Index cols, unsigned seed, double offset = 0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  Matrix m(rows, cols);
  for (Eigen::Index i = 0; i < rows; ++i)
    for (Eigen::Index j = 0; j < cols; ++j) m(i, j) = normal(rng) + offset;
  return m;
}

// ---------------------------------------------------------------------------------------------
// .npy

std::string npy_with_header(const std::string& dict, std::size_t data_bytes) {
  std::string header = dict;
  header.append(63 - (10 + header.size()) % 64, ' ');
  header += '\n';
  std::string file = std::string("\x93NUMPY\x01\x00", 8);
  file.push_back(static_cast<char>(header.size() & 0xFF));
  file.push_back(static_cast<char>(header.size() >> 8));
  return file + header + std::string(data_bytes, '\0');
}

std::string parse_error(const std::string& bytes) {
  try {
    clip::parse_npy_header(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), "x.npy");
  } catch (const clip::Error& e) {
    return e.what();
  }
  return "";
}

TEST(Npy, RoundTripsFloat32AndFloat64) {
  const auto dir = clip_test::scratch_dir("npy-roundtrip");
  const std::vector<float> f = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -0.5f};
  clip::write_npy((dir / "f.npy").string(), f.data(), 2, 3);
  const clip::NpyFile file((dir / "f.npy").string());
  EXPECT_EQ(file.type(), clip::NpyType::Float32);
  EXPECT_EQ(file.rows(), 2u);
  EXPECT_EQ(file.cols(), 3u);
  EXPECT_EQ(file.header().data_offset % 64, 0u);
  EXPECT_EQ(std::vector<float>(file.data<float>(), file.data<float>() + 6), f);
  EXPECT_THROW(file.data<double>(), clip::Error);

  const std::vector<double> d = {1e-300, 2.5, -3.0, 4.0};
  clip::write_npy((dir / "d.npy").string(), d.data(), 4, 1);
  const clip::NpyFile doubles((dir / "d.npy").string());
  EXPECT_EQ(doubles.type(), clip::NpyType::Float64);
  EXPECT_EQ(std::vector<double>(doubles.data<double>(), doubles.data<double>() + 4), d);
}

TEST(Npy, ReadsHeadersNumpyWrites) {
  // Version 2 (4-byte length), no trailing comma, spaces, Python 2's long suffix.
  std::string dict = "{'descr':'<f8','fortran_order':False,'shape':(3L, 2L)}";
  std::string header = dict + std::string(64 - (12 + dict.size() + 1) % 64, ' ') + "\n";
  std::string bytes = std::string("\x93NUMPY\x02\x00", 8);
  for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xFF));
  bytes += header + std::string(48, '\0');
  const clip::NpyHeader parsed = clip::parse_npy_header(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), "v2.npy");
  EXPECT_EQ(parsed.type, clip::NpyType::Float64);
  EXPECT_EQ(parsed.rows, 3u);
  EXPECT_EQ(parsed.cols, 2u);
  EXPECT_EQ(parsed.data_offset, 12 + header.size());
}

TEST(Npy, RejectsBadFilesClearly) {
  const std::string good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  EXPECT_EQ(parse_error(npy_with_header(good, 24)), "");
  EXPECT_NE(parse_error(npy_with_header(good, 23)).find("truncated"), std::string::npos);
  EXPECT_NE(parse_error(npy_with_header(good, 28)).find("padded"), std::string::npos);
  EXPECT_NE(parse_error(npy_with_header("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", 24)).find("not float32"),
            std::string::npos);
  EXPECT_NE(parse_error(npy_with_header("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24)).find("Fortran"),
            std::string::npos);
  EXPECT_NE(parse_error(npy_with_header("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 24)).find("big-endian"),
            std::string::npos);
  EXPECT_NE(parse_error(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 24)).find("2-d"),
            std::string::npos);
  EXPECT_NE(parse_error(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }", 24)).find("2-d"),
            std::string::npos);
  EXPECT_NE(parse_error(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", 24))
                .find("overflows"),
            std::string::npos);
  EXPECT_NE(parse_error(npy_with_header("{'descr': '<f4', 'shape': (2, 3), }", 24)).find("needs descr"), std::string::npos);
  EXPECT_NE(parse_error(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", 24)).find("not a valid"),
            std::string::npos);
  EXPECT_NE(parse_error("PK\x03\x04 not numpy at all").find("magic"), std::string::npos);
  EXPECT_NE(parse_error(std::string("\x93NUMPY\x09\x00\x10\x00", 10)).find("version"), std::string::npos);
  // A header length far beyond the file, and a huge one.
  EXPECT_NE(parse_error(std::string("\x93NUMPY\x01\x00\x00\x10", 10) + "{}").find("truncated"), std::string::npos);
  EXPECT_NE(parse_error(std::string("\x93NUMPY\x02\x00\xff\xff\xff\x7f", 12)).find("larger than"), std::string::npos);
  // Every prefix of a good file fails cleanly.
  const std::string whole = npy_with_header(good, 24);
  for (std::size_t size = 0; size < whole.size(); ++size) EXPECT_NE(parse_error(whole.substr(0, size)), "") << size;

  const auto dir = clip_test::scratch_dir("npy-bad");
  EXPECT_THROW(clip::NpyFile(dir.string()), clip::Error);  // a folder
  EXPECT_THROW(clip::NpyFile((dir / "missing.npy").string()), clip::Error);
}

// ---------------------------------------------------------------------------------------------
// One modality

/// n points at equal angles on an ellipse with half-axes a, b, rotated by phi, centred at c.
Matrix ellipse(int n, double a, double b, double phi, double cx, double cy) {
  Matrix x(n, 2);
  for (int k = 0; k < n; ++k) {
    const double t = 2 * pi * k / n, u = a * std::cos(t), v = b * std::sin(t);
    x(k, 0) = cx + u * std::cos(phi) - v * std::sin(phi);
    x(k, 1) = cy + u * std::sin(phi) + v * std::cos(phi);
  }
  return x;
}

TEST(Geometry, PointsOnAKnownEllipse) {
  // At equal angles mean(cos^2) = mean(sin^2) = 1/2 and mean(cos sin) = mean(cos) = 0, so the
  // centre is the mean and C = R diag(a^2/2, b^2/2) R^T.
  const double a = 3, b = 1, phi = pi / 6, cx = 10, cy = -4;
  const geometry::ShellStatistics s = geometry::shell_statistics<double>(ellipse(12, a, b, phi, cx, cy));
  EXPECT_EQ(s.count, 12);
  EXPECT_NEAR(s.mean[0], cx, 1e-12);
  EXPECT_NEAR(s.mean[1], cy, 1e-12);
  EXPECT_NEAR(s.mean_vector_norm, std::sqrt(cx * cx + cy * cy), 1e-12);
  const double co = std::cos(phi), si = std::sin(phi);
  const double c00 = (a * a * co * co + b * b * si * si) / 2, c11 = (a * a * si * si + b * b * co * co) / 2;
  const double c01 = (a * a - b * b) * si * co / 2;
  EXPECT_NEAR(s.covariance(0, 0), c00, 1e-12);
  EXPECT_NEAR(s.covariance(1, 1), c11, 1e-12);
  EXPECT_NEAR(s.covariance(0, 1), c01, 1e-12);
  EXPECT_NEAR(s.covariance(1, 0), c01, 1e-12);
  EXPECT_NEAR(s.feature_variance[0], c00, 1e-12);
  EXPECT_NEAR(s.sqrt_trace_covariance, std::sqrt((a * a + b * b) / 2), 1e-12);
  EXPECT_NEAR(s.off_diagonal_dominance[0], std::abs(c01) / c00, 1e-12);
  EXPECT_NEAR(s.off_diagonal_dominance[1], std::abs(c01) / c11, 1e-12);
}

TEST(Geometry, AxisAlignedEllipseHasNoOffDiagonalMassAndACircleAThinShell) {
  const geometry::ShellStatistics e = geometry::shell_statistics<double>(ellipse(16, 2, 0.5, 0, 0, 0));
  EXPECT_NEAR(e.off_diagonal_dominance[0], 0, 1e-12);
  EXPECT_NEAR(e.off_diagonal_dominance[1], 0, 1e-12);
  EXPECT_NEAR(e.feature_variance[0], 2.0, 1e-12);     // a^2 / 2
  EXPECT_NEAR(e.feature_variance[1], 0.125, 1e-12);   // b^2 / 2
  const geometry::ShellStatistics circle = geometry::shell_statistics<double>(ellipse(10, 5, 5, 0.3, 0, 0));
  EXPECT_NEAR(circle.mean_norm, 5, 1e-12);
  EXPECT_NEAR(circle.norm_std, 0, 1e-12);
  // Norms 1, 2, 3, 4 along one axis: mean 2.5, population std sqrt(1.25).
  Matrix line(4, 2);
  line << 1, 0, 2, 0, 3, 0, 4, 0;
  const geometry::ShellStatistics l = geometry::shell_statistics<double>(line);
  EXPECT_NEAR(l.mean_norm, 2.5, 1e-14);
  EXPECT_NEAR(l.norm_std, std::sqrt(1.25), 1e-14);
  EXPECT_TRUE(std::isnan(l.off_diagonal_dominance[1]));  // constant feature: no variance to compare with
}

TEST(Geometry, ConformityMatchesAllPairs) {
  const Matrix x = random_matrix(57, 9, 7, 1.5);
  const Eigen::Index n = x.rows();
  const geometry::ShellStatistics s = geometry::shell_statistics<double>(x);
  Eigen::VectorXd unit_mean = Eigen::VectorXd::Zero(x.cols());
  for (Eigen::Index i = 0; i < n; ++i) unit_mean += x.row(i).transpose() / x.row(i).norm() / static_cast<double>(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    double sum = 0;
    for (Eigen::Index j = 0; j < n; ++j)
      if (j != i) sum += x.row(i).dot(x.row(j)) / (x.row(i).norm() * x.row(j).norm());
    EXPECT_NEAR(s.conformity[i], sum / static_cast<double>(n - 1), 1e-13) << i;
    EXPECT_NEAR(s.conformity_estimate[i], x.row(i).dot(unit_mean.transpose()) / (x.row(i).norm() * unit_mean.norm()), 1e-13);
  }
  // c = (n |m| e - 1) / (n - 1) exactly (worked out in the header), so r = 1 and the fit is known.
  EXPECT_NEAR(s.conformity_pearson, 1.0, 1e-12);
  EXPECT_NEAR(s.conformity_fit.a, static_cast<double>(n) * unit_mean.norm() / static_cast<double>(n - 1), 1e-12);
  EXPECT_NEAR(s.conformity_fit.b, -1.0 / static_cast<double>(n - 1), 1e-12);

  // A query among a reference set: the plain mean over all reference rows.
  const Matrix queries = random_matrix(5, 9, 8, 1.0);
  const geometry::ReferenceConformity q = geometry::conformity_against<double>(x, queries);
  for (Eigen::Index k = 0; k < queries.rows(); ++k) {
    double sum = 0;
    for (Eigen::Index j = 0; j < n; ++j) sum += queries.row(k).dot(x.row(j)) / (queries.row(k).norm() * x.row(j).norm());
    EXPECT_NEAR(q.conformity[k], sum / static_cast<double>(n), 1e-13);
    EXPECT_NEAR(q.estimate[k], queries.row(k).dot(unit_mean.transpose()) / (queries.row(k).norm() * unit_mean.norm()), 1e-13);
  }
}

TEST(Geometry, CovarianceIsTwoPassAndFloatAgreesWithDouble) {
  // A large offset with a small spread: E[x^2] - E[x]^2 would lose every digit in float.
  Matrix x = random_matrix(5000, 6, 3);
  x.array() = x.array() * 0.01 + 1000.0;
  const geometry::ShellStatistics d = geometry::shell_statistics<double>(x);
  const clip::RowMatrix<float> xf = x.cast<float>();
  const geometry::ShellStatistics f = geometry::shell_statistics<float>(xf);
  Eigen::VectorXd direct = Eigen::VectorXd::Zero(6);
  const Eigen::RowVectorXd mean = x.colwise().mean();
  for (Eigen::Index i = 0; i < x.rows(); ++i) direct += (x.row(i) - mean).cwiseAbs2().transpose();
  direct /= 5000.0;
  for (int j = 0; j < 6; ++j) {
    EXPECT_NEAR(d.feature_variance[j], direct[j], 1e-12 * direct[j]);
    // float input is rounded to ~6e-5 absolute at 1000, so compare with the float data's variance.
    Eigen::VectorXd xf_col = xf.col(j).cast<double>();
    const double var_f = (xf_col.array() - xf_col.mean()).square().mean();
    EXPECT_NEAR(f.feature_variance[j], var_f, 1e-3 * var_f);
  }
}

// ---------------------------------------------------------------------------------------------
// Two modalities

/// The best single-threshold accuracy of one feature by brute force: every cut between
/// consecutive distinct values, both directions, counted from scratch.
double brute_force_accuracy(const Matrix& images, const Matrix& texts, Eigen::Index f) {
  std::set<double> distinct;
  for (Eigen::Index i = 0; i < images.rows(); ++i) distinct.insert(images(i, f));
  for (Eigen::Index i = 0; i < texts.rows(); ++i) distinct.insert(texts(i, f));
  const std::vector<double> v(distinct.begin(), distinct.end());
  const double total = static_cast<double>(images.rows() + texts.rows());
  if (v.size() < 2) return static_cast<double>(std::max(images.rows(), texts.rows())) / total;
  double best = 0;
  for (std::size_t c = 0; c + 1 < v.size(); ++c) {
    const double t = (v[c] + v[c + 1]) / 2;
    double images_below = 0, texts_below = 0;
    for (Eigen::Index i = 0; i < images.rows(); ++i) images_below += images(i, f) < t;
    for (Eigen::Index i = 0; i < texts.rows(); ++i) texts_below += texts(i, f) < t;
    const double rule = images_below + (static_cast<double>(texts.rows()) - texts_below);
    best = std::max({best, rule, total - rule});
  }
  return best / total;
}

void expect_separability_matches_brute_force(const Matrix& images, const Matrix& texts, Eigen::Index k) {
  const auto top = geometry::feature_separability<double>(images, texts, k);
  std::vector<std::pair<double, Eigen::Index>> expected;
  for (Eigen::Index f = 0; f < images.cols(); ++f) expected.emplace_back(-brute_force_accuracy(images, texts, f), f);
  std::sort(expected.begin(), expected.end());  // best first, ties by lower index
  ASSERT_EQ(static_cast<Eigen::Index>(top.size()), std::min(k, images.cols()));
  for (std::size_t i = 0; i < top.size(); ++i) {
    EXPECT_EQ(top[i].feature, expected[i].second) << "rank " << i;
    EXPECT_DOUBLE_EQ(top[i].accuracy, -expected[i].first) << "rank " << i;
  }
}

TEST(Geometry, TwoSeparableClouds) {
  // Feature 2 separates perfectly (images in [1, 2], texts in [-2, -1]); feature 4 almost (one
  // text among the images); the others are noise. Centroids are known by construction.
  Matrix images = random_matrix(40, 6, 11), texts = random_matrix(40, 6, 12);
  for (Eigen::Index i = 0; i < 40; ++i) {
    images(i, 2) = 1 + static_cast<double>(i) / 39, texts(i, 2) = -1 - static_cast<double>(i) / 39;
    images(i, 4) = 5 + static_cast<double>(i), texts(i, 4) = -5 - static_cast<double>(i);
  }
  texts(0, 4) = 100;
  const auto top = geometry::feature_separability<double>(images, texts, 3);
  EXPECT_EQ(top[0].feature, 2);
  EXPECT_EQ(top[0].accuracy, 1.0);
  EXPECT_TRUE(top[0].images_above);
  EXPECT_EQ(top[1].feature, 4);
  EXPECT_EQ(top[1].accuracy, 79.0 / 80.0);
  expect_separability_matches_brute_force(images, texts, 6);

  const geometry::ShellStatistics si = geometry::shell_statistics<double>(images), st = geometry::shell_statistics<double>(texts);
  const Eigen::RowVectorXd gap = images.colwise().mean() - texts.colwise().mean();
  EXPECT_NEAR(geometry::centroid_distance(si, st), gap.norm(), 1e-12);
  Eigen::RowVectorXd ui = Eigen::RowVectorXd::Zero(6), ut = ui;
  for (Eigen::Index i = 0; i < 40; ++i) ui += images.row(i).normalized() / 40.0, ut += texts.row(i).normalized() / 40.0;
  EXPECT_NEAR(geometry::normalized_centroid_distance(si, st), (ui - ut).norm(), 1e-12);
}

TEST(Geometry, SeparabilityTiesAndRepeatedValues) {
  // Features 1 and 3 are the same column (a tie: the lower index first); values on a coarse grid
  // repeat many times, across both modalities; feature 5 is constant.
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> grid(0, 6);
  Matrix images(300, 6), texts(250, 6);
  for (Matrix* m : {&images, &texts})
    for (Eigen::Index i = 0; i < m->rows(); ++i)
      for (Eigen::Index j = 0; j < 6; ++j) (*m)(i, j) = grid(rng) + (m == &images && j == 1 ? 2 : 0);
  images.col(3) = images.col(1);
  texts.col(3) = texts.col(1);
  images.col(5).setConstant(1.0);
  texts.col(5).setConstant(1.0);
  const auto top = geometry::feature_separability<double>(images, texts, 6);
  EXPECT_EQ(top[0].feature, 1);
  EXPECT_EQ(top[1].feature, 3);
  EXPECT_EQ(top[0].accuracy, top[1].accuracy);
  expect_separability_matches_brute_force(images, texts, 6);
  expect_separability_matches_brute_force(images, texts, 2);
}

TEST(Geometry, SeparabilityOnManyRowsUsesExactRefinement) {
  // Enough rows that the 1024 bins hold many values each: the exact sweep inside bins decides.
  Matrix images = random_matrix(6000, 5, 21), texts = random_matrix(6000, 5, 22);
  images.col(0).array() += 0.8;
  images.col(3).array() -= 0.3;
  texts.col(1) = texts.col(1).array().round() / 4;  // repeated values in one modality
  expect_separability_matches_brute_force(images, texts, 5);
  expect_separability_matches_brute_force(images, texts, 1);
}

// ---------------------------------------------------------------------------------------------
// Paired terms

/// CLIP's loss written as the two cross-entropies over the full logits matrix (its own
/// formulation), with the images shifted by alpha * mean.
geometry::PairedTerms brute_force_terms(const Matrix& images, const Matrix& texts, double scale, double alpha) {
  const Eigen::RowVectorXd mean = images.colwise().mean();
  const Eigen::Index n = images.rows();
  Matrix s(n, n);
  for (Eigen::Index k = 0; k < n; ++k)
    for (Eigen::Index j = 0; j < n; ++j) {
      const Eigen::RowVectorXd shifted = images.row(k) - alpha * mean;
      s(k, j) = scale * shifted.dot(texts.row(j)) / (shifted.norm() * texts.row(j).norm());
    }
  double ce_images = 0, ce_texts = 0, alignment = 0;
  for (Eigen::Index k = 0; k < n; ++k) {
    const double row_max = s.row(k).maxCoeff(), col_max = s.col(k).maxCoeff();
    ce_images += -s(k, k) + row_max + std::log((s.row(k).array() - row_max).exp().sum());
    ce_texts += -s(k, k) + col_max + std::log((s.col(k).array() - col_max).exp().sum());
    alignment -= s(k, k);
  }
  geometry::PairedTerms t;
  t.alpha = alpha;
  t.loss = (ce_images + ce_texts) / 2 / static_cast<double>(n);
  t.alignment = alignment / static_cast<double>(n);
  t.uniformity = t.loss - t.alignment;
  return t;
}

TEST(Geometry, PairedTermsAreClipsSymmetricCrossEntropy) {
  Matrix images = random_matrix(70, 5, 31, 2.0), texts = random_matrix(70, 5, 32, -1.0);
  texts += 0.7 * images;  // some alignment between pairs
  const std::vector<double> alphas = {-1, 0.5, 1, 1.5};
  const auto terms = geometry::paired_terms<double>(images, texts, 100.0, alphas);
  ASSERT_EQ(terms.size(), 5u);
  for (std::size_t a = 0; a < terms.size(); ++a) {
    const double alpha = a == 0 ? 0.0 : alphas[a - 1];
    const geometry::PairedTerms expected = brute_force_terms(images, texts, 100.0, alpha);
    EXPECT_EQ(terms[a].alpha, alpha);
    EXPECT_NEAR(terms[a].alignment, expected.alignment, 1e-10 * std::max(1.0, std::abs(expected.alignment)));
    EXPECT_NEAR(terms[a].uniformity, expected.uniformity, 1e-10 * std::max(1.0, std::abs(expected.uniformity)));
    EXPECT_NEAR(terms[a].loss, expected.loss, 1e-10 * std::max(1.0, std::abs(expected.loss)));
  }
  // In float the same to float precision of the logits (scale 100 * ~1e-7).
  const clip::RowMatrix<float> fi = images.cast<float>(), ft = texts.cast<float>();
  const auto float_terms = geometry::paired_terms<float>(fi, ft, 100.0, alphas);
  for (std::size_t a = 0; a < terms.size(); ++a) EXPECT_NEAR(float_terms[a].loss, terms[a].loss, 1e-4);

  // Batches of 35: the mean over both halves computed alone, with the shift by the global mean.
  const auto batched = geometry::paired_terms<double>(images, texts, 100.0, {}, 35);
  const auto first = geometry::paired_terms<double>(images.topRows(35), texts.topRows(35), 100.0);
  const auto second = geometry::paired_terms<double>(images.bottomRows(35), texts.bottomRows(35), 100.0);
  EXPECT_NEAR(batched[0].loss, (first[0].loss + second[0].loss) / 2, 1e-10);
}

TEST(Geometry, MeanShiftedSlerp) {
  Eigen::VectorXd mean(3), a(3), b(3);
  mean << 1, 2, 3;
  a = mean + Eigen::Vector3d(2, 0, 0);
  b = mean + Eigen::Vector3d(0, 2, 0);
  EXPECT_LT((geometry::mean_shifted_slerp(a, b, mean, 0) - a).norm(), 1e-12);
  EXPECT_LT((geometry::mean_shifted_slerp(a, b, mean, 1) - b).norm(), 1e-12);
  // Halfway around the quarter circle of radius 2 about the mean: 2 (cos 45°, sin 45°, 0).
  const Eigen::VectorXd half = geometry::mean_shifted_slerp(a, b, mean, 0.5);
  EXPECT_LT((half - (mean + Eigen::Vector3d(std::sqrt(2.0), std::sqrt(2.0), 0))).norm(), 1e-12);
}

// ---------------------------------------------------------------------------------------------
// Bad input

TEST(Geometry, BadInputIsAClearError) {
  const auto message = [](auto&& call) {
    try {
      call();
    } catch (const clip::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  Matrix one = random_matrix(1, 4, 1), x = random_matrix(10, 4, 2), y = random_matrix(10, 3, 3), z = random_matrix(9, 4, 4);
  EXPECT_NE(message([&] { geometry::shell_statistics<double>(one, "images"); }).find("images: needs at least 2 rows"), std::string::npos);
  Matrix bad = x;
  bad(3, 1) = std::nan("");
  EXPECT_NE(message([&] { geometry::shell_statistics<double>(bad, "texts"); }).find("texts: row 3 is not finite"), std::string::npos);
  bad(3, 1) = std::numeric_limits<double>::infinity();
  EXPECT_NE(message([&] { geometry::shell_statistics<double>(bad); }).find("row 3 is not finite"), std::string::npos);
  bad.row(3).setZero();
  EXPECT_NE(message([&] { geometry::shell_statistics<double>(bad); }).find("row 3 is all zeros"), std::string::npos);
  EXPECT_NE(message([&] { geometry::analyze<double>(x, y); }).find("same dimension"), std::string::npos);
  EXPECT_NE(message([&] { geometry::analyze<double>(x, z); }).find("one text per image"), std::string::npos);
  geometry::GeometryOptions unpaired;
  unpaired.paired = false;
  EXPECT_EQ(message([&] { geometry::analyze<double>(x, z, unpaired); }), "");
  EXPECT_NE(message([&] { geometry::paired_terms<double>(x, x, 1000.0); }).find("logit scale"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// The tool

#ifdef CLIP_GEOMETRY_EXE

using clip_test::CommandResult;

/// clip-geometry with `arguments` (already quoted for the shell).
CommandResult run(const std::string& arguments) {
  return clip_test::run_command(std::string(CLIP_GEOMETRY_EXE) + " " + arguments);
}

/// Every number of `actual` within `relative` of `expected`, key by key (and the same keys).
/// Returns the worst relative error seen.
double expect_close(const nlohmann::json& actual, const nlohmann::json& expected, const std::string& path, double relative) {
  double worst = 0;
  if (expected.is_object()) {
    EXPECT_TRUE(actual.is_object()) << path;
    if (!actual.is_object()) return worst;
    for (auto it = expected.begin(); it != expected.end(); ++it) {
      EXPECT_TRUE(actual.contains(it.key())) << path << "." << it.key();
      if (actual.contains(it.key())) worst = std::max(worst, expect_close(actual[it.key()], it.value(), path + "." + it.key(), relative));
    }
    for (auto it = actual.begin(); it != actual.end(); ++it) EXPECT_TRUE(expected.contains(it.key())) << "extra key " << path << "." << it.key();
  } else if (expected.is_array()) {
    EXPECT_EQ(actual.size(), expected.size()) << path;
    for (std::size_t i = 0; i < std::min(actual.size(), expected.size()); ++i)
      worst = std::max(worst, expect_close(actual[i], expected[i], path + "[" + std::to_string(i) + "]", relative));
  } else if (expected.is_number_integer()) {
    EXPECT_EQ(actual, expected) << path;  // counts, dims, feature indices: exactly
  } else {
    const double a = actual.get<double>(), e = expected.get<double>();
    const double error = e == 0 ? std::abs(a) : std::abs(a - e) / std::abs(e);
    EXPECT_LE(error, relative) << path << ": " << a << " vs " << e;
    worst = std::max(worst, error);
  }
  return worst;
}

TEST(GeometryTool, ReproducesGolden) {
  CLIP_REFERENCE_OR_SKIP(dir, "geometry/golden.json");
  const std::string folder = fs::path(dir).parent_path().string();
  const CommandResult result = run("--images-npy '" + folder + "/images.npy' --texts-npy '" + folder +
                                   "/texts.npy' --json --logit-scale 100 --shift-sweep -1,-0.5,0,0.25,0.5,0.75,1,1.5");
  ASSERT_EQ(result.status, 0) << result.err;
  const nlohmann::json actual = nlohmann::json::parse(result.out);
  std::ifstream golden_file(dir);
  const nlohmann::json golden = nlohmann::json::parse(golden_file);
  // The tolerance: 1e-4 relative per number (each element of the per-feature and
  // per-item lists on its own); counts and separating features exactly. Float32 inputs with
  // float32 block products summed in double land near 1e-6.
  const double worst = expect_close(actual, golden, "", 1e-4);
  std::cout << "worst relative error against golden.json: " << worst << "\n";
  // Separating features exactly: the same indices in the same order (checked above) and the
  // same number of correctly placed items (numpy's mean of booleans and count / total can
  // differ in the last bit, nothing more).
  const double total = golden["images"]["count"].get<double>() + golden["texts"]["count"].get<double>();
  for (std::size_t i = 0; i < golden["gap"]["feature_separability"].size(); ++i)
    EXPECT_EQ(std::llround(actual["gap"]["feature_separability"][i]["accuracy"].get<double>() * total),
              std::llround(golden["gap"]["feature_separability"][i]["accuracy"].get<double>() * total))
        << "rank " << i;
}

TEST(GeometryTool, SummaryAndReport) {
  const auto dir = clip_test::scratch_dir("geometry-report");
  const Matrix images = random_matrix(120, 8, 41, 1.0), texts = random_matrix(120, 8, 42, -1.0);
  const clip::RowMatrix<float> fi = images.cast<float>(), ft = texts.cast<float>();
  clip::write_npy((dir / "i.npy").string(), fi.data(), 120, 8);
  clip::write_npy((dir / "t.npy").string(), ft.data(), 120, 8);
  const std::string inputs = "--images-npy '" + (dir / "i.npy").string() + "' --texts-npy '" + (dir / "t.npy").string() + "'";
  const CommandResult summary = run(inputs + " --report '" + (dir / "report").string() + "'");
  ASSERT_EQ(summary.status, 0) << summary.err;
  EXPECT_NE(summary.out.find("separating features"), std::string::npos);
  std::ifstream page(dir / "report" / "index.html");
  const std::string html((std::istreambuf_iterator<char>(page)), std::istreambuf_iterator<char>());
  EXPECT_NE(html.find("<!DOCTYPE html>"), std::string::npos);
  EXPECT_GE(std::count(html.begin(), html.end(), '\n'), 10);
  std::size_t svgs = 0;
  for (std::size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1)) ++svgs;
  EXPECT_EQ(svgs, 9u);  // norms, variance, separating bars, scatter, conformity x2, dominance, sweep x2
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);  // self-contained
  for (const char* figure : {"norms.svg", "variance.svg", "separating-features.svg", "best-two-features.svg", "conformity-vs-estimate.svg",
                             "conformity.svg", "off-diagonal-dominance.svg", "shift-sweep.svg", "shift-sweep-loss.svg"})
    EXPECT_TRUE(fs::is_regular_file(dir / "report" / figure)) << figure;

  const CommandResult json = run(inputs + " --json --top-k 3 --unpaired");
  ASSERT_EQ(json.status, 0) << json.err;
  const nlohmann::json parsed = nlohmann::json::parse(json.out);
  EXPECT_EQ(parsed["gap"]["feature_separability"].size(), 3u);
  EXPECT_TRUE(parsed["paired"].is_null());
}

TEST(GeometryTool, BadInputsFailClearlyAndWriteNothing) {
  const auto dir = clip_test::scratch_dir("geometry-bad");
  const auto write = [&](const std::string& name, const Matrix& m) {
    const clip::RowMatrix<float> f = m.cast<float>();
    clip::write_npy((dir / name).string(), f.data(), static_cast<std::uint64_t>(f.rows()), static_cast<std::uint64_t>(f.cols()));
    return "'" + (dir / name).string() + "'";
  };
  const std::string good = write("good.npy", random_matrix(20, 4, 1));
  const std::string other = write("other.npy", random_matrix(20, 4, 2));
  const std::string narrow = write("narrow.npy", random_matrix(20, 3, 3));
  const std::string fewer = write("fewer.npy", random_matrix(19, 4, 4));
  const std::string single = write("single.npy", random_matrix(1, 4, 5));
  Matrix with_nan = random_matrix(20, 4, 6);
  with_nan(7, 2) = std::nan("");
  const std::string nan_rows = write("nan.npy", with_nan);
  Matrix with_inf = random_matrix(20, 4, 6);
  with_inf(9, 0) = -std::numeric_limits<double>::infinity();
  const std::string inf_rows = write("inf.npy", with_inf);
  std::string bytes;
  {
    std::ifstream in(dir / "good.npy", std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  clip_test::write_bytes(dir / "truncated.npy", bytes.substr(0, bytes.size() - 5));
  clip_test::write_bytes(dir / "ints.npy", npy_with_header("{'descr': '<i4', 'fortran_order': False, 'shape': (20, 4), }", 320));

  const fs::path report = dir / "report";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--images-npy " + good + " --texts-npy " + narrow, "same dimension"},
      {"--images-npy " + good + " --texts-npy " + fewer, "one text per image"},
      {"--images-npy " + single + " --texts-npy " + single, "at least 2 rows"},
      {"--images-npy " + nan_rows + " --texts-npy " + other, "row 7 is not finite"},
      {"--images-npy " + good + " --texts-npy " + inf_rows, "row 9 is not finite"},
      {"--images-npy '" + (dir / "truncated.npy").string() + "' --texts-npy " + other, "truncated"},
      {"--images-npy '" + (dir / "ints.npy").string() + "' --texts-npy " + other, "not float32"},
      {"--images-npy " + good, "go together"},
      {"--images-npy " + good + " --texts-npy " + other + " --shift-sweep 1,x", "not a number"},
  };
  for (const auto& [arguments, expected] : cases) {
    const CommandResult result = run(arguments + " --json --report '" + report.string() + "'");
    EXPECT_EQ(result.status, 2) << arguments;
    EXPECT_NE(result.err.find(expected), std::string::npos) << arguments << "\n" << result.err;
    EXPECT_TRUE(result.out.empty()) << arguments;
    EXPECT_FALSE(fs::exists(report)) << arguments;
  }
  // Unpaired counts are fine when the paired terms are not asked for.
  EXPECT_EQ(run("--images-npy " + good + " --texts-npy " + fewer + " --unpaired --json").status, 0);
}

TEST(GeometryTool, EmbedsWithTheDemoModel) {
  const std::string source = CLIP_SOURCE_DIR;
  const CommandResult result = run("--model '" + source + "/examples/models/clip-demo.safetensors' --input '" + source +
                                   "/examples/geometry-pairs' --captions '" + source + "/examples/geometry-pairs/captions.tsv' --json");
  ASSERT_EQ(result.status, 0) << result.err;
  const nlohmann::json json = nlohmann::json::parse(result.out);
  EXPECT_EQ(json["images"]["count"], 320);
  EXPECT_EQ(json["texts"]["count"], 320);
  EXPECT_EQ(json["images"]["dim"], 64);
  EXPECT_GT(json["paired"]["logit_scale"].get<double>(), 1.0);  // the model's, not the default 100
  EXPECT_NE(json["paired"]["logit_scale"].get<double>(), 100.0);
}

#endif  // CLIP_GEOMETRY_EXE

}  // namespace
