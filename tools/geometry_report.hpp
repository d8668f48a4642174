#pragma once
// clip-geometry's HTML report: one self-contained page (inline SVG, no scripts, no external
// files) with the plots of Levi & Gilboa's analysis. Presentation only; the numbers come from
// clip::geometry.

#include <clip/analysis/geometry.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace report_detail {

namespace geometry = clip::geometry;

inline double median(const Eigen::VectorXd& values) {
  std::vector<double> v;
  for (Eigen::Index i = 0; i < values.size(); ++i)
    if (std::isfinite(values[i])) v.push_back(values[i]);
  if (v.empty()) return std::nan("");
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

inline std::string number(double value, int digits = 3) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*g", digits, value);
  return buffer;
}

inline std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

constexpr const char* kImageColour = "#d9612b";  // images: orange
constexpr const char* kTextColour = "#2b7bd9";   // texts: blue
constexpr const char* kThirdColour = "#3a9a4a";

/// "Nice" tick positions covering [low, high].
inline std::vector<double> ticks(double low, double high, int wanted = 6) {
  if (!(high > low)) return {low};
  const double raw = (high - low) / wanted;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  std::vector<double> out;
  for (double t = std::ceil(low / step) * step; t <= high + step * 1e-9; t += step) out.push_back(std::abs(t) < step * 1e-9 ? 0 : t);
  return out;
}

/// One SVG chart: axes with ticks and labels, then series drawn in data coordinates.
class Chart {
 public:
  Chart(std::string title, std::string x_label, std::string y_label, double x0, double x1, double y0, double y1)
      : title_(std::move(title)), x_label_(std::move(x_label)), y_label_(std::move(y_label)) {
    if (!(x1 > x0)) x0 -= 0.5, x1 += 0.5;
    if (!(y1 > y0)) y0 -= 0.5, y1 += 0.5;
    x0_ = x0, x1_ = x1, y0_ = y0, y1_ = y1;
  }

  double px(double x) const { return kLeft + (x - x0_) / (x1_ - x0_) * kPlotWidth; }
  double py(double y) const { return kTop + (1 - (y - y0_) / (y1_ - y0_)) * kPlotHeight; }

  void line(const std::vector<std::pair<double, double>>& points, const char* colour, bool dashed = false, bool markers = false) {
    remember(points);
    std::string path;
    for (const auto& [x, y] : points) path += (path.empty() ? "M" : " L") + number(px(x), 5) + "," + number(py(y), 5);
    body_ += "<path d=\"" + path + "\" fill=\"none\" stroke=\"" + colour + "\" stroke-width=\"2\"" +
             (dashed ? " stroke-dasharray=\"6 4\"" : "") + "/>\n";
    if (markers)
      for (const auto& [x, y] : points)
        body_ += "<circle cx=\"" + number(px(x), 5) + "\" cy=\"" + number(py(y), 5) + "\" r=\"3.5\" fill=\"" + colour + "\"/>\n";
  }

  void points(const std::vector<std::pair<double, double>>& points, const char* colour, double radius = 2.2) {
    remember(points);
    for (const auto& [x, y] : points)
      body_ += "<circle cx=\"" + number(px(x), 5) + "\" cy=\"" + number(py(y), 5) + "\" r=\"" + number(radius) + "\" fill=\"" + colour +
               "\" fill-opacity=\"0.55\"/>\n";
  }

  /// A histogram drawn as a step outline with a light fill.
  void histogram(const std::vector<double>& edges, const std::vector<double>& heights, const char* colour) {
    for (std::size_t b = 0; b < heights.size(); ++b)
      for (double y = y0_; y <= heights[b]; y += (y1_ - y0_) / 40) drawn_.emplace_back(px((edges[b] + edges[b + 1]) / 2), py(y));
    std::string path = "M" + number(px(edges.front()), 5) + "," + number(py(y0_), 5);
    for (std::size_t b = 0; b < heights.size(); ++b)
      path += " L" + number(px(edges[b]), 5) + "," + number(py(heights[b]), 5) + " L" + number(px(edges[b + 1]), 5) + "," +
              number(py(heights[b]), 5);
    path += " L" + number(px(edges.back()), 5) + "," + number(py(y0_), 5) + " Z";
    body_ += "<path d=\"" + path + "\" fill=\"" + colour + "\" fill-opacity=\"0.25\" stroke=\"" + colour + "\" stroke-width=\"1.5\"/>\n";
  }

  void bar(double x, double width, double height, const char* colour) {
    body_ += "<rect x=\"" + number(px(x - width / 2), 5) + "\" y=\"" + number(py(height), 5) + "\" width=\"" +
             number(px(x + width / 2) - px(x - width / 2), 5) + "\" height=\"" + number(py(y0_) - py(height), 5) + "\" fill=\"" +
             colour + "\"/>\n";
  }

  void text(double x, double y, const std::string& label, const char* anchor = "middle", int size = 11) {
    body_ += "<text x=\"" + number(px(x), 5) + "\" y=\"" + number(py(y), 5) + "\" font-size=\"" + std::to_string(size) +
             "\" text-anchor=\"" + anchor + "\">" + escape(label) + "</text>\n";
  }

  void vertical(double x, const char* colour) {
    body_ += "<line x1=\"" + number(px(x), 5) + "\" y1=\"" + number(kTop, 5) + "\" x2=\"" + number(px(x), 5) + "\" y2=\"" +
             number(kTop + kPlotHeight, 5) + "\" stroke=\"" + colour + "\" stroke-dasharray=\"3 3\"/>\n";
  }

  void legend(const std::vector<std::pair<std::string, const char*>>& entries) { legend_ = entries; }

  /// Integer tick labels on the x axis (feature indices, ranks).
  void integer_x() { integer_x_ = true; }

  std::string svg() const {
    std::string out = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " + std::to_string(kWidth) + " " +
                      std::to_string(kHeight) + "\" width=\"" + std::to_string(kWidth) + "\" height=\"" + std::to_string(kHeight) +
                      "\" font-family=\"Helvetica, Arial, sans-serif\">\n";
    out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    out += "<text x=\"" + std::to_string(kWidth / 2) + "\" y=\"20\" font-size=\"14\" font-weight=\"bold\" text-anchor=\"middle\">" +
           escape(title_) + "</text>\n";
    for (double t : ticks(y0_, y1_)) {
      out += "<line x1=\"" + number(kLeft, 5) + "\" x2=\"" + number(kLeft + kPlotWidth, 5) + "\" y1=\"" + number(py(t), 5) +
             "\" y2=\"" + number(py(t), 5) + "\" stroke=\"#e4e4e4\"/>\n";
      out += "<text x=\"" + number(kLeft - 6, 5) + "\" y=\"" + number(py(t) + 4, 5) + "\" font-size=\"11\" text-anchor=\"end\">" +
             number(t, 4) + "</text>\n";
    }
    for (double t : ticks(x0_, x1_)) {
      if (integer_x_ && t != std::floor(t)) continue;
      out += "<line x1=\"" + number(px(t), 5) + "\" x2=\"" + number(px(t), 5) + "\" y1=\"" + number(kTop + kPlotHeight, 5) +
             "\" y2=\"" + number(kTop + kPlotHeight + 4, 5) + "\" stroke=\"#444\"/>\n";
      out += "<text x=\"" + number(px(t), 5) + "\" y=\"" + number(kTop + kPlotHeight + 17, 5) +
             "\" font-size=\"11\" text-anchor=\"middle\">" + number(t, 4) + "</text>\n";
    }
    // Data stays inside the plot area (fit lines run past the points); ids unique within a page.
    static int charts = 0;
    const std::string clip_id = "plot" + std::to_string(++charts);
    out += "<clipPath id=\"" + clip_id + "\"><rect x=\"" + number(kLeft - 4, 5) + "\" y=\"" + number(kTop - 4, 5) + "\" width=\"" +
           number(kPlotWidth + 8, 5) + "\" height=\"" + number(kPlotHeight + 8, 5) + "\"/></clipPath>\n";
    out += "<g clip-path=\"url(#" + clip_id + ")\">\n" + body_ + "</g>\n";
    out += "<rect x=\"" + number(kLeft, 5) + "\" y=\"" + number(kTop, 5) + "\" width=\"" + number(kPlotWidth, 5) + "\" height=\"" +
           number(kPlotHeight, 5) + "\" fill=\"none\" stroke=\"#444\"/>\n";
    out += "<text x=\"" + number(kLeft + kPlotWidth / 2, 5) + "\" y=\"" + std::to_string(kHeight - 8) +
           "\" font-size=\"12\" text-anchor=\"middle\">" + escape(x_label_) + "</text>\n";
    out += "<text transform=\"translate(16," + number(kTop + kPlotHeight / 2, 5) + ") rotate(-90)\" font-size=\"12\" text-anchor=\"middle\">" +
           escape(y_label_) + "</text>\n";
    // The legend goes in the corner of the plot that covers the fewest drawn points.
    const double box_width = 90, box_height = 15.0 * static_cast<double>(legend_.size()) + 5;
    double best_x = kLeft + kPlotWidth - box_width - 6, best_y = kTop + 3;
    std::size_t best_count = static_cast<std::size_t>(-1);
    for (const auto& [bx, by] : {std::pair{kLeft + kPlotWidth - box_width - 6, kTop + 3.0}, std::pair{kLeft + 6.0, kTop + 3.0},
                                 std::pair{kLeft + kPlotWidth - box_width - 6, kTop + kPlotHeight - box_height - 3},
                                 std::pair{kLeft + 6.0, kTop + kPlotHeight - box_height - 3}}) {
      std::size_t count = 0;
      for (const auto& [x, y] : drawn_) count += x >= bx - 4 && x <= bx + box_width + 4 && y >= by - 4 && y <= by + box_height + 4;
      if (count < best_count) best_count = count, best_x = bx, best_y = by;
    }
    if (!legend_.empty())
      out += "<rect x=\"" + number(best_x, 5) + "\" y=\"" + number(best_y, 5) + "\" width=\"" + number(box_width, 5) + "\" height=\"" +
             number(box_height, 5) + "\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n";
    double y = best_y + 11;
    for (const auto& [label, colour] : legend_) {
      out += "<rect x=\"" + number(best_x + 6, 5) + "\" y=\"" + number(y - 9, 5) + "\" width=\"12\" height=\"10\" fill=\"" + colour +
             "\"/>\n";
      out += "<text x=\"" + number(best_x + 23, 5) + "\" y=\"" + number(y, 5) + "\" font-size=\"11\">" + escape(label) + "</text>\n";
      y += 15;
    }
    return out + "</svg>\n";
  }

 private:
  static constexpr int kWidth = 480, kHeight = 320;
  static constexpr double kLeft = 58, kTop = 32, kPlotWidth = 400, kPlotHeight = 240;
  std::string title_, x_label_, y_label_;
  double x0_, x1_, y0_, y1_;
  std::string body_;
  std::vector<std::pair<std::string, const char*>> legend_;
  bool integer_x_ = false;
  std::vector<std::pair<double, double>> drawn_;  // pixel positions of data, for the legend

  /// Points of a series (and of the segments between them) in pixels.
  void remember(const std::vector<std::pair<double, double>>& points) {
    for (std::size_t i = 0; i < points.size(); ++i) {
      drawn_.emplace_back(px(points[i].first), py(points[i].second));
      if (i + 1 < points.size())
        for (int step = 1; step < 20; ++step) {
          const double t = step / 20.0;
          drawn_.emplace_back(px(points[i].first * (1 - t) + points[i + 1].first * t), py(points[i].second * (1 - t) + points[i + 1].second * t));
        }
    }
  }
};

/// Histogram of values over [low, high] in `bins` bins, as densities (area 1).
inline std::vector<double> density(const Eigen::VectorXd& values, double low, double high, int bins) {
  std::vector<double> h(bins, 0.0);
  const double width = (high - low) / bins;
  if (!(width > 0)) return h;
  for (Eigen::Index i = 0; i < values.size(); ++i) {
    const int b = std::min(bins - 1, std::max(0, static_cast<int>((values[i] - low) / width)));
    h[b] += 1;
  }
  for (double& v : h) v /= static_cast<double>(values.size()) * width;
  return h;
}

inline std::vector<double> edges(double low, double high, int bins) {
  std::vector<double> e(bins + 1);
  for (int b = 0; b <= bins; ++b) e[b] = low + (high - low) * b / bins;
  return e;
}

/// Two overlaid density histograms (images, texts).
inline std::string two_histograms(const std::string& title, const std::string& x_label, const Eigen::VectorXd& a,
                                  const Eigen::VectorXd& b, int bins = 40) {
  double low = std::min(a.minCoeff(), b.minCoeff()), high = std::max(a.maxCoeff(), b.maxCoeff());
  if (!(high > low)) low -= 0.5, high += 0.5;
  const double pad = (high - low) * 0.02;
  low -= pad, high += pad;
  const std::vector<double> ha = density(a, low, high, bins), hb = density(b, low, high, bins);
  const double top = std::max(*std::max_element(ha.begin(), ha.end()), *std::max_element(hb.begin(), hb.end()));
  Chart chart(title, x_label, "density", low, high, 0, top * 1.08);
  chart.histogram(edges(low, high, bins), ha, kImageColour);
  chart.histogram(edges(low, high, bins), hb, kTextColour);
  chart.legend({{"images", kImageColour}, {"texts", kTextColour}});
  return chart.svg();
}

/// Every `step`-th index so that at most `most` points are drawn.
inline Eigen::Index stride_for(Eigen::Index n, Eigen::Index most) { return std::max<Eigen::Index>(1, (n + most - 1) / most); }

inline std::vector<double> sorted_descending(const Eigen::VectorXd& v) {
  std::vector<double> s(v.data(), v.data() + v.size());
  std::sort(s.begin(), s.end(), std::greater<>());
  return s;
}

}  // namespace report_detail

struct RenderedReport {
  std::string page;                                      // index.html, every figure inline
  std::vector<std::pair<std::string, std::string>> svgs;  // (file name, SVG) of each figure
};

/// The whole report page.
template <typename Scalar>
RenderedReport render_report(const clip::geometry::GeometryReport& r, const clip::geometry::Features<Scalar>& images,
                          const clip::geometry::Features<Scalar>& texts, double scale, const std::string& source) {
  using namespace report_detail;
  std::vector<std::pair<std::string, std::string>> figures;  // (svg, caption)
  std::vector<std::string> names;  // file name of each figure
  const auto name = [&](const char* file) { names.push_back(file); };
  const auto& I = r.images;
  const auto& T = r.texts;

  // 1. The two shells: row norms.
  name("norms.svg");
  figures.emplace_back(two_histograms("Norms: two thin shells", "|x|", I.norms, T.norms),
                       "Row norms. Images: " + number(I.mean_norm, 4) + " ± " + number(I.norm_std, 3) + ", texts: " +
                           number(T.mean_norm, 4) + " ± " + number(T.norm_std, 3) +
                           ". A thin shell has a norm spread far below the spread of the coordinates (sqrt trace C: " +
                           number(I.sqrt_trace_covariance, 3) + " and " + number(T.sqrt_trace_covariance, 3) + ").");

  // 2. Sorted per-feature variance.
  {
    const std::vector<double> vi = sorted_descending(I.feature_variance), vt = sorted_descending(T.feature_variance);
    Chart chart("Per-feature variance, sorted", "rank", "variance (diag C)", 0, static_cast<double>(vi.size() - 1), 0,
                std::max(vi.front(), vt.front()) * 1.05);
    chart.integer_x();
    std::vector<std::pair<double, double>> a, b;
    for (std::size_t i = 0; i < vi.size(); ++i) a.emplace_back(static_cast<double>(i), vi[i]), b.emplace_back(static_cast<double>(i), vt[i]);
    chart.line(a, kImageColour);
    chart.line(b, kTextColour);
    chart.legend({{"images", kImageColour}, {"texts", kTextColour}});
    name("variance.svg");
  figures.emplace_back(chart.svg(), "Variance of each feature, largest first: an ellipsoid, not a sphere, when the curve falls. "
                                      "Largest/smallest: images " + number(vi.front() / vi.back(), 3) + "×, texts " +
                                          number(vt.front() / vt.back(), 3) + "×.");
  }

  // 3. Separating features, and the scatter of the best two.
  if (!r.separating_features.empty()) {
    const auto& sep = r.separating_features;
    const std::size_t shown = std::min<std::size_t>(20, sep.size());
    Chart chart("Features that separate the modalities", "rank (feature index above the bar)", "best single-threshold accuracy", -0.6,
                static_cast<double>(shown) - 0.4, 0.5, 1.0);
    chart.integer_x();
    for (std::size_t i = 0; i < shown; ++i) {
      chart.bar(static_cast<double>(i), 0.7, std::max(0.5, sep[i].accuracy), i < 2 ? kThirdColour : "#8a8a8a");
      chart.text(static_cast<double>(i), std::max(0.5, sep[i].accuracy) + 0.01, std::to_string(sep[i].feature), "middle", 9);
    }
    name("separating-features.svg");
  figures.emplace_back(chart.svg(), "The " + std::to_string(shown) +
                                          " features whose one threshold best tells images from texts (of all thresholds between "
                                          "distinct values, both directions). Best: feature " +
                                          std::to_string(sep[0].feature) + " at " + number(sep[0].accuracy * 100, 4) + "%.");
    if (sep.size() >= 2 && images.cols() >= 2) {
      const Eigen::Index f0 = sep[0].feature, f1 = sep[1].feature;
      double x0 = std::min(I.feature_min[f0], T.feature_min[f0]), x1 = std::max(I.feature_max[f0], T.feature_max[f0]);
      double y0 = std::min(I.feature_min[f1], T.feature_min[f1]), y1 = std::max(I.feature_max[f1], T.feature_max[f1]);
      const double px = (x1 - x0) * 0.04, py = (y1 - y0) * 0.04;
      Chart scatter("The best two separating features", "feature " + std::to_string(f0), "feature " + std::to_string(f1), x0 - px,
                    x1 + px, y0 - py, y1 + py);
      std::vector<std::pair<double, double>> a, b;
      const Eigen::Index si = stride_for(images.rows(), 1500), st = stride_for(texts.rows(), 1500);
      for (Eigen::Index i = 0; i < images.rows(); i += si) a.emplace_back(images(i, f0), images(i, f1));
      for (Eigen::Index i = 0; i < texts.rows(); i += st) b.emplace_back(texts(i, f0), texts(i, f1));
      scatter.points(a, kImageColour);
      scatter.points(b, kTextColour);
      scatter.legend({{"images", kImageColour}, {"texts", kTextColour}});
      name("best-two-features.svg");
  figures.emplace_back(scatter.svg(), "Each item at its values of the two best features (as the paper's figure of features 93 "
                                          "and 134 of ViT-B/32): the shells lie apart along them.");
    }
  }

  // 4. Conformity against its estimate, and conformity histograms.
  {
    const double x0 = std::min(I.conformity_estimate.minCoeff(), T.conformity_estimate.minCoeff());
    const double x1 = std::max(I.conformity_estimate.maxCoeff(), T.conformity_estimate.maxCoeff());
    const double y0 = std::min(I.conformity.minCoeff(), T.conformity.minCoeff());
    const double y1 = std::max(I.conformity.maxCoeff(), T.conformity.maxCoeff());
    const double px = (x1 - x0) * 0.04 + 1e-9, py = (y1 - y0) * 0.04 + 1e-9;
    Chart chart("Conformity against its estimate", "estimate e = cos(x, m)", "conformity c = mean cos(x, x_j)", x0 - px, x1 + px,
                y0 - py, y1 + py);
    std::vector<std::pair<double, double>> a, b;
    for (Eigen::Index i = 0; i < I.count; i += stride_for(I.count, 1500)) a.emplace_back(I.conformity_estimate[i], I.conformity[i]);
    for (Eigen::Index i = 0; i < T.count; i += stride_for(T.count, 1500)) b.emplace_back(T.conformity_estimate[i], T.conformity[i]);
    chart.points(a, kImageColour);
    chart.points(b, kTextColour);
    chart.line({{x0, I.conformity_fit.a * x0 + I.conformity_fit.b}, {x1, I.conformity_fit.a * x1 + I.conformity_fit.b}}, kImageColour, true);
    chart.line({{x0, T.conformity_fit.a * x0 + T.conformity_fit.b}, {x1, T.conformity_fit.a * x1 + T.conformity_fit.b}}, kTextColour, true);
    chart.legend({{"images", kImageColour}, {"texts", kTextColour}});
    name("conformity-vs-estimate.svg");
  figures.emplace_back(chart.svg(), "Exact conformity against its estimate, with the least-squares lines. Pearson r: images " +
                                          number(I.conformity_pearson, 6) + ", texts " + number(T.conformity_pearson, 6) +
                                          " (the paper: 0.9998 on COCO). With m the mean of the normalised rows the relation is "
                                          "exact: c = (n|m| e − 1)/(n − 1).");
    name("conformity.svg");
  figures.emplace_back(two_histograms("Conformity per modality", "conformity", I.conformity, T.conformity),
                         "How typical each item is among its own modality. Mean conformity: images " + number(I.conformity.mean(), 3) +
                             ", texts " + number(T.conformity.mean(), 3) + ".");
  }

  // 5. Off-diagonal dominance.
  {
    const std::vector<double> oi = sorted_descending(I.off_diagonal_dominance), ot = sorted_descending(T.off_diagonal_dominance);
    double top = 0;
    for (double v : oi) if (std::isfinite(v)) top = std::max(top, v);
    for (double v : ot) if (std::isfinite(v)) top = std::max(top, v);
    Chart chart("Off-diagonal dominance of the covariance", "rank", "sum_j≠i |C_ij| / C_ii", 0, static_cast<double>(oi.size() - 1), 0,
                std::max(1.05, top * 1.05));
    chart.integer_x();
    std::vector<std::pair<double, double>> a, b;
    for (std::size_t i = 0; i < oi.size(); ++i) {
      if (std::isfinite(oi[i])) a.emplace_back(static_cast<double>(i), oi[i]);
      if (std::isfinite(ot[i])) b.emplace_back(static_cast<double>(i), ot[i]);
    }
    chart.line(a, kImageColour);
    chart.line(b, kTextColour);
    chart.line({{0.0, 1.0}, {static_cast<double>(oi.size() - 1), 1.0}}, "#777", true);
    chart.legend({{"images", kImageColour}, {"texts", kTextColour}});
    name("off-diagonal-dominance.svg");
  figures.emplace_back(chart.svg(), "Per covariance row, the off-diagonal mass relative to the diagonal, largest first. Above 1 "
                                      "(dashed) a row's correlations outweigh its variance: the ellipsoid is tilted against the axes. "
                                      "Median: images " + number(median(I.off_diagonal_dominance), 3) + ", texts " +
                                          number(median(T.off_diagonal_dominance), 3) + ".");
  }

  // 6. The shift experiment.
  if (r.has_paired && !r.shift_sweep.empty()) {
    std::vector<geometry::PairedTerms> sweep = r.shift_sweep;
    std::sort(sweep.begin(), sweep.end(), [](const auto& a, const auto& b) { return a.alpha < b.alpha; });
    double low = 1e300, high = -1e300;
    for (const auto& t : sweep) low = std::min({low, t.alignment, t.uniformity, t.loss}), high = std::max({high, t.alignment, t.uniformity, t.loss});
    const double pad = (high - low) * 0.06 + 1e-9;
    Chart chart("Loss terms with the image shell shifted", "alpha (images moved to I − alpha·mean I)", "value", sweep.front().alpha,
                sweep.back().alpha, low - pad, high + 4 * pad);  // headroom for the legend
    std::vector<std::pair<double, double>> a, u, l;
    for (const auto& t : sweep) a.emplace_back(t.alpha, t.alignment), u.emplace_back(t.alpha, t.uniformity), l.emplace_back(t.alpha, t.loss);
    chart.line(a, kImageColour, false, true);
    chart.line(u, kTextColour, false, true);
    chart.line(l, "#222", false, true);
    chart.vertical(0, "#999");
    chart.legend({{"alignment", kImageColour}, {"uniformity", kTextColour}, {"loss", "#222"}});
    const auto best = std::min_element(sweep.begin(), sweep.end(), [](const auto& a, const auto& b) { return a.loss < b.loss; });
    double loss_low = 1e300, loss_high = -1e300;
    for (const auto& t : sweep) loss_low = std::min(loss_low, t.loss), loss_high = std::max(loss_high, t.loss);
    const double loss_pad = (loss_high - loss_low) * 0.08 + 1e-9;
    Chart loss_chart("The loss alone", "alpha (images moved to I − alpha·mean I)", "loss", sweep.front().alpha, sweep.back().alpha,
                     loss_low - loss_pad, loss_high + loss_pad);
    loss_chart.line(l, "#222", false, true);
    loss_chart.vertical(0, "#999");
    loss_chart.vertical(best->alpha, kThirdColour);
    name("shift-sweep.svg");
  figures.emplace_back(chart.svg(), "CLIP's loss (scale " + number(scale, 4) + ") split into alignment and uniformity, with the images "
                                      "moved toward (alpha > 0) or away from the origin; alpha 1 centres the image shell. Lowest loss at "
                                      "alpha " + number(best->alpha, 3) + " (" + number(best->loss, 5) + "; at alpha 0: " +
                                          number(r.paired.loss, 5) + ").");
    name("shift-sweep-loss.svg");
    figures.emplace_back(loss_chart.svg(), "The loss of the sweep on its own scale; green: the lowest of the alphas tried, grey: the "
                                           "trained position (alpha 0).");
  }

  // The page.
  std::string rows;
  const auto row = [&](const std::string& what, const std::string& a, const std::string& b) {
    rows += "<tr><th>" + escape(what) + "</th><td>" + a + "</td><td>" + b + "</td></tr>\n";
  };
  row("items × features", std::to_string(I.count) + " × " + std::to_string(I.dim), std::to_string(T.count) + " × " + std::to_string(T.dim));
  row("mean norm ± std", number(I.mean_norm, 4) + " ± " + number(I.norm_std, 3), number(T.mean_norm, 4) + " ± " + number(T.norm_std, 3));
  row("|mean vector|", number(I.mean_vector_norm, 4), number(T.mean_vector_norm, 4));
  row("sqrt(trace C)", number(I.sqrt_trace_covariance, 4), number(T.sqrt_trace_covariance, 4));
  row("median off-diagonal dominance", number(median(I.off_diagonal_dominance), 3), number(median(T.off_diagonal_dominance), 3));
  row("mean conformity", number(I.conformity.mean(), 4), number(T.conformity.mean(), 4));
  row("conformity vs estimate: Pearson r", number(I.conformity_pearson, 6), number(T.conformity_pearson, 6));
  std::string gap = "<p>Centroid distance " + number(r.centroid_distance, 4) + " (on normalised features " +
                    number(r.normalized_centroid_distance, 4) + ").";
  if (!r.separating_features.empty())
    gap += " Best separating features: " + std::to_string(r.separating_features[0].feature) + " (" +
           number(100 * r.separating_features[0].accuracy, 4) + "%)" +
           (r.separating_features.size() > 1 ? ", " + std::to_string(r.separating_features[1].feature) + " (" +
                                                   number(100 * r.separating_features[1].accuracy, 4) + "%)"
                                             : std::string()) +
           ".";
  if (r.has_paired)
    gap += " Paired terms at scale " + number(scale, 4) + ": alignment " + number(r.paired.alignment, 5) + ", uniformity " +
           number(r.paired.uniformity, 5) + ", loss " + number(r.paired.loss, 5) + ".";
  gap += "</p>\n";

  std::string page = R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>clip-geometry report</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1020px; color: #222; line-height: 1.4; }
h1 { font-size: 22px; margin-bottom: 4px; } .source { color: #666; font-size: 13px; margin-top: 0; }
table { border-collapse: collapse; margin: 12px 0; font-size: 14px; }
th, td { padding: 4px 12px; border-bottom: 1px solid #ddd; text-align: right; } th { text-align: left; font-weight: normal; color: #444; }
thead th { font-weight: bold; color: #222; }
.grid { display: grid; grid-template-columns: repeat(2, 490px); gap: 18px 28px; }
figure { margin: 0; } figure svg { border: 1px solid #e2e2e2; } figcaption { font-size: 13px; color: #444; margin-top: 4px; }
.key span { display: inline-block; width: 12px; height: 10px; margin: 0 4px 0 12px; }
</style></head><body>
<h1>Embedding geometry</h1>
)";
  page += "<p class=\"source\">" + escape(source) +
          ". After Levi &amp; Gilboa, “The Double-Ellipsoid Geometry of CLIP” (ICML 2025); population statistics of the raw "
          "features, made by clip-geometry.</p>\n";
  page += "<p class=\"key\">Colours:<span style=\"background:" + std::string(kImageColour) + "\"></span>images<span style=\"background:" +
          kTextColour + "\"></span>texts</p>\n";
  page += "<table><thead><tr><th></th><th>images</th><th>texts</th></tr></thead><tbody>\n" + rows + "</tbody></table>\n" + gap;
  page += "<div class=\"grid\">\n";
  for (const auto& [svg, caption] : figures) page += "<figure>" + svg + "<figcaption>" + escape(caption) + "</figcaption></figure>\n";
  page += "</div>\n</body></html>\n";
  RenderedReport rendered{page, {}};
  for (std::size_t i = 0; i < figures.size(); ++i) rendered.svgs.emplace_back(names[i], figures[i].first);
  return rendered;
}
