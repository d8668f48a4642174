// Image decoding and CLIP preprocessing: Pillow-exact resampling, torchvision's crop, the
// reference's pixel_values, and refusal of bad input.

#define CLIP_STB_IMAGE_IMPLEMENTATION
#include <clip/image/preprocess.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

using clip::detail::Plane;

// ----------------------------------------------------------------------------------------------
// Hand-made images with outputs computed by Pillow 9.4 (Image.resize(size, BICUBIC)), written
// down once. Source pixel k of pixel (x, y): (37x + 91y + 53k + ((x*y) mod 7) * 29) mod M.

std::vector<int> pattern(int width, int height, int channels, int modulus) {
  std::vector<int> values;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int k = 0; k < channels; ++k) values.push_back((x * 37 + y * 91 + k * 53 + (x * y) % 7 * 29) % modulus);
  return values;
}

Plane<std::uint8_t> pattern_plane(int width, int height, int channels) {
  Plane<std::uint8_t> plane{width, height, channels, {}};
  for (int v : pattern(width, height, channels, 256)) plane.samples.push_back(static_cast<std::uint8_t>(v));
  return plane;
}

template <typename Sample>
std::vector<int> as_ints(const std::vector<Sample>& samples) {
  return std::vector<int>(samples.begin(), samples.end());
}

struct PillowCase {
  int width, height, channels, out_width, out_height;
  std::vector<int> expected;
};

TEST(PillowBicubic, MatchesPillowOnHandMadeImages) {
  const std::vector<PillowCase> cases = {
      {13, 7, 3, 5, 3,  // downscale both axes
       {95, 119, 113, 128, 142, 157, 148, 130, 90, 106, 110, 130, 140, 177, 105, 89, 127, 143, 132, 116, 123, 130,
        132, 118, 101, 124, 144, 149, 116, 122, 146, 124, 142, 80, 79, 140, 134, 95, 101, 104, 115, 152, 73, 73, 130}},
      {4, 4, 3, 9, 6,  // upscale, overshoot clipped at 0 and 255
       {0,   44,  96,  0,   51,  106, 13,  65,  129, 31,  85,  154, 46,  109, 171, 62,  132, 185, 87,  151, 203,
        110, 166, 218, 121, 172, 225, 33,  85,  167, 44,  99,  148, 73,  135, 103, 105, 153, 71,  136, 111, 87,
        151, 69,  118, 120, 87,  149, 74,  123, 178, 55,  137, 191, 106, 159, 197, 113, 169, 162, 127, 196, 73,
        150, 194, 10,  196, 116, 36,  222, 38,  82,  158, 36,  106, 70,  63,  121, 34,  74,  129, 196, 249, 42,
        164, 217, 53,  83,  138, 74,  31,  83,  109, 72,  121, 169, 132, 158, 209, 165, 102, 163, 185, 21,  87,
        195, 0,   58,  102, 155, 58,  98,  151, 86,  87,  139, 150, 75,  129, 200, 54,  124, 202, 50,  121, 178,
        112, 122, 122, 190, 125, 58,  223, 130, 31,  0,   45,  117, 24,  77,  145, 104, 157, 216, 148, 201, 253,
        73,  125, 194, 2,   55,  114, 63,  123, 69,  162, 229, 42,  202, 255, 28}},
      {1, 9, 3, 4, 2,  // one pixel wide
       {88, 146, 122, 88, 146, 122, 88, 146, 122, 88, 146, 122, 128, 138, 137, 128, 138, 137, 128, 138, 137, 128, 138,
        137}},
      {40, 3, 3, 7, 3,  // extreme aspect ratio; vertical pass skipped
       {96,  131, 159, 112, 128, 122, 115, 130, 110, 120, 135, 113, 122, 139, 115, 124, 141, 120, 113, 138, 133,
        135, 124, 106, 146, 125, 103, 148, 127, 107, 151, 130, 109, 151, 133, 113, 154, 134, 114, 152, 132, 123,
        128, 138, 122, 125, 143, 123, 128, 143, 124, 131, 107, 127, 134, 112, 130, 137, 115, 132, 135, 127, 143}},
  };
  for (const PillowCase& c : cases) {
    const Plane<std::uint8_t> out = clip::detail::resize_bicubic(pattern_plane(c.width, c.height, c.channels),
                                                                 c.out_width, c.out_height);
    EXPECT_EQ(out.width, c.out_width);
    EXPECT_EQ(out.height, c.out_height);
    EXPECT_EQ(as_ints(out.samples), c.expected) << c.width << "x" << c.height << " -> " << c.out_width << "x"
                                                << c.out_height;
  }
}

// Pillow resizes "RGBA" through premultiplied "RGBa" and back.
TEST(PillowBicubic, MatchesPillowForRgbaThroughPremultipliedAlpha) {
  Plane<std::uint8_t> plane = pattern_plane(11, 6, 4);
  clip::detail::premultiply_alpha(plane);
  plane = clip::detail::resize_bicubic(plane, 4, 9);
  clip::detail::unpremultiply_alpha(plane);
  const std::vector<int> expected = {
      32,  89,  147, 188, 142, 182, 171, 70,  96,  73,  94,  143, 52,  113, 173, 159, 74,  102, 141, 171, 114,
      124, 127, 80,  129, 96,  114, 142, 86,  102, 144, 154, 126, 119, 130, 141, 106, 75,  88,  84,  147, 129,
      132, 140, 125, 84,  110, 136, 89,  112, 107, 111, 183, 87,  75,  61,  89,  143, 111, 142, 118, 66,  108,
      99,  50,  103, 119, 111, 133, 109, 102, 105, 76,  111, 117, 117, 82,  102, 111, 105, 35,  87,  131, 114,
      105, 109, 117, 147, 87,  62,  127, 90,  65,  116, 112, 116, 61,  45,  103, 96,  113, 84,  124, 121, 99,
      93,  87,  82,  102, 48,  93,  95,  107, 114, 107, 71,  96,  80,  140, 142, 178, 101, 71,  93,  103, 100,
      146, 89,  160, 240, 136, 54,  85,  86,  147, 168, 226, 97,  66,  107, 93,  170, 195, 90};
  EXPECT_EQ(as_ints(plane.samples), expected);

  Plane<std::uint8_t> gray_alpha = pattern_plane(10, 10, 2);
  clip::detail::premultiply_alpha(gray_alpha);
  gray_alpha = clip::detail::resize_bicubic(gray_alpha, 3, 3);
  clip::detail::unpremultiply_alpha(gray_alpha);
  EXPECT_EQ(as_ints(gray_alpha.samples),
            (std::vector<int>{107, 121, 141, 142, 116, 120, 126, 125, 106, 93, 129, 126, 140, 123, 95, 96, 130, 133}));
}

// Pillow's mode "I" (16-bit gray PNG) resizes in doubles and rounds half away from zero.
TEST(PillowBicubic, MatchesPillowForThirtyTwoBitIntegers) {
  Plane<std::int32_t> plane{9, 5, 1, {}};
  for (int v : pattern(9, 5, 1, 65536)) plane.samples.push_back(v * 13 % 65536);
  const Plane<std::int32_t> out = clip::detail::resize_bicubic(plane, 4, 3);
  EXPECT_EQ(as_ints(out.samples),
            (std::vector<int>{832, 2214, 3715, 4152, 3291, 5225, 6167, 6531, 5435, 7029, 8059, 8577}));
}

// Pillow forces NEAREST on palette images.
TEST(PillowNearest, MatchesPillowForPaletteIndices) {
  const Plane<std::uint8_t> out = clip::detail::resize_nearest(pattern_plane(9, 5, 1), 4, 7);
  EXPECT_EQ(as_ints(out.samples), (std::vector<int>{37, 111, 185, 3, 157, 33, 165, 94, 157, 33, 165, 94, 21, 211,
                                                    198, 185, 141, 186, 231, 20, 141, 186, 231, 20, 5, 108, 211, 111}));
}

// ----------------------------------------------------------------------------------------------
// A straightforward double-precision version of the same two-pass kernel: for every output
// sample, the a = -0.5 cubic over the input samples within support * scale of its centre,
// normalised to sum 1; rows rounded (half up) and clipped to 8 bits between the passes as
// Pillow does. It differs from the library only in using exact weights instead of 22-bit
// fixed point, which moves a sum by at most taps * 255 * 2^-23 (< 1e-3 of a level), so a
// pixel can differ by one level only where a sum lies that close to a rounding boundary.

std::vector<std::vector<std::pair<int, double>>> reference_weights(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double stretch = std::max(1.0, scale);
  std::vector<std::vector<std::pair<int, double>>> all(out_size);
  for (int o = 0; o < out_size; ++o) {
    const double centre = (o + 0.5) * scale;
    double total = 0;
    for (int i = 0; i < in_size; ++i) {
      const double distance = std::abs(i + 0.5 - centre) / stretch;
      double w = 0;
      if (distance < 1)
        w = 1.5 * distance * distance * distance - 2.5 * distance * distance + 1;
      else if (distance < 2)
        w = -0.5 * distance * distance * distance + 2.5 * distance * distance - 4 * distance + 2;
      if (w != 0) all[o].push_back({i, w});
      total += w;
    }
    for (auto& entry : all[o]) entry.second /= total;
  }
  return all;
}

int round_clip(double v) { return static_cast<int>(std::clamp(std::floor(v + 0.5), 0.0, 255.0)); }

std::vector<int> reference_resize(const Plane<std::uint8_t>& in, int out_width, int out_height) {
  const int c = in.channels;
  std::vector<int> rows(static_cast<std::size_t>(out_width) * in.height * c);
  if (out_width == in.width) {
    rows.assign(in.samples.begin(), in.samples.end());
  } else {
    const auto wx = reference_weights(in.width, out_width);
    for (int y = 0; y < in.height; ++y)
      for (int x = 0; x < out_width; ++x)
        for (int k = 0; k < c; ++k) {
          double s = 0;
          for (auto [i, w] : wx[x]) s += w * in.samples[(static_cast<std::size_t>(y) * in.width + i) * c + k];
          rows[(static_cast<std::size_t>(y) * out_width + x) * c + k] = round_clip(s);
        }
  }
  if (out_height == in.height) return rows;
  const auto wy = reference_weights(in.height, out_height);
  std::vector<int> out(static_cast<std::size_t>(out_width) * out_height * c);
  for (int y = 0; y < out_height; ++y)
    for (int x = 0; x < out_width; ++x)
      for (int k = 0; k < c; ++k) {
        double s = 0;
        for (auto [i, w] : wy[y]) s += w * rows[(static_cast<std::size_t>(i) * out_width + x) * c + k];
        out[(static_cast<std::size_t>(y) * out_width + x) * c + k] = round_clip(s);
      }
  return out;
}

TEST(PillowBicubic, AgreesWithDoublePrecisionKernel) {
  std::srand(7);
  struct Size {
    int w, h, ow, oh;
  };
  const std::vector<Size> sizes = {{1, 1, 5, 3},   {1, 40, 1, 7},    {40, 1, 3, 1},   {300, 2, 64, 1},
                                   {2, 300, 1, 64}, {17, 33, 64, 124}, {333, 251, 84, 64}, {640, 480, 85, 64},
                                   {97, 13, 200, 27}, {50, 50, 49, 51}};
  for (const Size& s : sizes) {
    Plane<std::uint8_t> in{s.w, s.h, 3, {}};
    for (int i = 0; i < s.w * s.h * 3; ++i) in.samples.push_back(static_cast<std::uint8_t>(std::rand() & 255));
    const std::vector<int> got = as_ints(clip::detail::resize_bicubic(in, s.ow, s.oh).samples);
    const std::vector<int> want = reference_resize(in, s.ow, s.oh);
    ASSERT_EQ(got.size(), want.size());
    int worst = 0;
    std::size_t differing = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      worst = std::max(worst, std::abs(got[i] - want[i]));
      differing += got[i] != want[i];
    }
    // One level where fixed point flips a rounding (see above); such sums are rare, so also
    // require at least 99% of samples to be identical.
    EXPECT_LE(worst, 1) << s.w << "x" << s.h << " -> " << s.ow << "x" << s.oh;
    EXPECT_LE(differing * 100, got.size()) << s.w << "x" << s.h << " -> " << s.ow << "x" << s.oh;
  }
}

TEST(PillowBicubic, KeepsConstantImagesConstant) {
  for (int value : {0, 1, 128, 254, 255}) {
    Plane<std::uint8_t> in{37, 23, 1, std::vector<std::uint8_t>(37 * 23, static_cast<std::uint8_t>(value))};
    for (auto [w, h] : {std::pair{5, 3}, std::pair{100, 80}, std::pair{1, 1}, std::pair{37, 9}}) {
      const auto out = clip::detail::resize_bicubic(in, w, h);
      EXPECT_TRUE(std::all_of(out.samples.begin(), out.samples.end(), [&](int v) { return v == value; }))
          << value << " -> " << w << "x" << h;
    }
  }
}

// ----------------------------------------------------------------------------------------------
// torchvision's Resize / CenterCrop arithmetic.

TEST(Preprocess, ShortSideResizeTruncatesLikeTorchvision) {
  auto size = [](int w, int h, int s) {
    auto r = clip::detail::short_side_resize(w, h, s);
    return std::pair{r.width, r.height};
  };
  EXPECT_EQ(size(333, 251, 64), (std::pair{84, 64}));  // 84.88 truncated
  EXPECT_EQ(size(1000, 50, 64), (std::pair{1280, 64}));
  EXPECT_EQ(size(17, 33, 64), (std::pair{64, 124}));  // 124.23
  EXPECT_EQ(size(50, 50, 224), (std::pair{224, 224}));
  EXPECT_EQ(size(1, 100000, 224), (std::pair{224, 22400000}));
}

TEST(Preprocess, CenterCropRoundsHalfToEven) {
  EXPECT_EQ(clip::detail::center_crop_offset(69, 64), 2);  // round(2.5) == 2 in Python
  EXPECT_EQ(clip::detail::center_crop_offset(71, 64), 4);  // round(3.5) == 4
  EXPECT_EQ(clip::detail::center_crop_offset(70, 64), 3);
  EXPECT_EQ(clip::detail::center_crop_offset(64, 64), 0);
}

TEST(Preprocess, CenterCropPadsSmallImagesWithZeros) {
  Plane<std::uint8_t> in{2, 1, 1, {7, 9}};
  const auto out = clip::detail::center_crop(in, 5);  // torchvision: left 1, right 2, top 2, bottom 2
  EXPECT_EQ(as_ints(out.samples), (std::vector<int>{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 9, 0, 0,
                                                    0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
}

TEST(Preprocess, NormalisesInFloatLikeTorch) {
  const std::uint8_t rgb[] = {0, 128, 255};
  const clip::Image image = clip::image_from_rgb8(rgb, 1, 1, 3);
  clip::PreprocessOptions options;
  options.image_size = 1;
  float out[3];
  clip::preprocess_image(image, options, out);
  EXPECT_EQ(out[0], (0.0f / 255.0f - options.mean[0]) / options.std[0]);
  EXPECT_EQ(out[1], (128.0f / 255.0f - options.mean[1]) / options.std[1]);
  EXPECT_EQ(out[2], (255.0f / 255.0f - options.mean[2]) / options.std[2]);
  EXPECT_NEAR(out[0], -1.79226255, 1e-6);  // golden.json's value for a 0 in channel 0
}

TEST(Preprocess, ImageFromRgb8HonoursStride) {
  const std::uint8_t buffer[] = {1, 2, 3, 4, 5, 6, 99, 99, 7, 8, 9, 10, 11, 12, 99, 99};
  const clip::Image image = clip::image_from_rgb8(buffer, 2, 2, 8);
  EXPECT_EQ(as_ints(image.pixels), (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
  EXPECT_THROW(clip::image_from_rgb8(buffer, 3, 2, 8), clip::Error);
  EXPECT_THROW(clip::image_from_rgb8(buffer, 0, 2, 8), clip::Error);
  EXPECT_THROW(clip::image_from_rgb8(nullptr, 2, 2, 8), clip::Error);
}

TEST(Preprocess, RejectsInconsistentImagesAndOptions) {
  clip::Image image;
  image.width = 4;
  image.height = 4;
  image.pixels.resize(10);
  std::vector<float> out(3 * 8 * 8);
  clip::PreprocessOptions options;
  options.image_size = 8;
  EXPECT_THROW(clip::preprocess_image(image, options, out.data()), clip::Error);
  image.pixels.resize(48);
  EXPECT_NO_THROW(clip::preprocess_image(image, options, out.data()));
  options.image_size = 0;
  EXPECT_THROW(clip::preprocess_image(image, options, out.data()), clip::Error);
  options.image_size = 8;
  options.std[1] = 0.0f;
  EXPECT_THROW(clip::preprocess_image(image, options, out.data()), clip::Error);
  clip::Image empty;
  EXPECT_THROW(clip::preprocess_images({empty}, clip::PreprocessOptions{}), clip::Error);
}

// ----------------------------------------------------------------------------------------------
// Bad files.

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const clip::Error& e) {
    return e.what();
  }
  return "(no clip::Error)";
}

// An 8-bit gray PNG's IHDR followed by a one-byte IDAT chunk: enough for stbi_info, no pixels.
// (Not an empty IDAT: stb 2.27 then memcpy's 0 bytes to a null buffer, harmless but flagged
// by UBSan.)
std::vector<std::uint8_t> png_header_only(std::uint32_t width, std::uint32_t height) {
  std::vector<std::uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
  for (std::uint32_t v : {width, height})
    for (int shift = 24; shift >= 0; shift -= 8) png.push_back(static_cast<std::uint8_t>(v >> shift));
  for (std::uint8_t b : {8, 0, 0, 0, 0, 0, 0, 0, 0}) png.push_back(b);  // gray 8-bit, CRC (unchecked)
  for (char b : {'\0', '\0', '\0', '\1', 'I', 'D', 'A', 'T', 'x', '\0', '\0', '\0', '\0'}) png.push_back(static_cast<std::uint8_t>(b));
  return png;
}

TEST(Decode, MissingFileIsNamed) {
  const std::string message = error_of([] { clip::decode_image_file("/nonexistent/cat.png"); });
  EXPECT_NE(message.find("/nonexistent/cat.png"), std::string::npos) << message;
}

TEST(Decode, NonImageDataIsRefusedWithStbReason) {
  const std::string text = "this is not an image at all, just some text";
  const std::string message = error_of([&] { clip::decode_image_memory(text.data(), text.size(), "notes.txt"); });
  EXPECT_NE(message.find("notes.txt"), std::string::npos) << message;
  EXPECT_NE(message.find("("), std::string::npos) << message;  // stb's failure reason follows
  EXPECT_THROW(clip::decode_image_memory(nullptr, 0, "null"), clip::Error);
  EXPECT_THROW(clip::decode_image_memory(text.data(), 0, "empty"), clip::Error);
}

TEST(Decode, OversizedImageIsRefusedBeforeDecoding) {
  const auto png = png_header_only(10000, 10000);  // 100 M pixels, no pixel data at all
  const std::string message = error_of([&] { clip::decode_image_memory(png.data(), png.size(), "bomb.png"); });
  EXPECT_NE(message.find("bomb.png"), std::string::npos) << message;
  EXPECT_NE(message.find("exceeds the limit"), std::string::npos) << message;

  clip::DecodeOptions small;
  small.max_pixels = 100;
  const auto png11 = png_header_only(11, 10);
  EXPECT_NE(error_of([&] { clip::decode_image_memory(png11.data(), png11.size(), "a.png", small); })
                .find("exceeds the limit"),
            std::string::npos);
}

TEST(Decode, ZeroSizedImageIsRefused) {
  for (auto [w, h] : {std::pair{0u, 10u}, std::pair{10u, 0u}}) {
    const auto png = png_header_only(w, h);
    EXPECT_NE(error_of([&] { clip::decode_image_memory(png.data(), png.size(), "zero.png"); }).find("zero.png"),
              std::string::npos);
  }
}

TEST(Decode, HeaderWithoutPixelDataIsRefused) {
  const auto png = png_header_only(16, 16);
  EXPECT_NE(error_of([&] { clip::decode_image_memory(png.data(), png.size(), "nodata.png"); }).find("nodata.png"),
            std::string::npos);
}

TEST(Decode, SixteenBitPgmIsBigEndianGray16AndTruncationIsRefused) {
  // 2x1 P5, maxval 65535: samples 0x0102 and 0xFF00 (Pillow: mode "I", values 258 and 65280).
  const std::string pgm = std::string("P5\n# comment\n2 1\n65535\n") + std::string("\x01\x02\xff\x00", 4);
  const clip::Image image = clip::decode_image_memory(pgm.data(), pgm.size(), "a.pgm");
  EXPECT_EQ(image.mode, clip::PixelMode::Gray16);
  EXPECT_EQ(image.pixels16, (std::vector<std::uint16_t>{258, 65280}));
  const std::string message = error_of([&] { clip::decode_image_memory(pgm.data(), pgm.size() - 1, "cut.pgm"); });
  EXPECT_NE(message.find("cut.pgm"), std::string::npos) << message;
  const std::string ppm = std::string("P6 2 2 255\n") + std::string(11, '\x10');  // needs 12 bytes
  EXPECT_THROW(clip::decode_image_memory(ppm.data(), ppm.size(), "cut.ppm"), clip::Error);
}

// ----------------------------------------------------------------------------------------------
// Reference data: pixel_values made by OpenAI's _transform(64) on the files next to golden.json.

std::string reference_dir() {
  const char* dir = std::getenv("CLIP_REFERENCE_DIR");
  return dir ? std::string(dir) + "/tiny-a" : std::string();
}

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(file), {});
}

#define REQUIRE_REFERENCE()                                                                             \
  const std::string dir = reference_dir();                                                              \
  if (dir.empty()) GTEST_SKIP() << "CLIP_REFERENCE_DIR is not set; reference tests skipped";           \
  if (!std::ifstream(dir + "/golden.json"))                                                             \
    GTEST_SKIP() << dir << "/golden.json not found; reference tests skipped";

#ifdef CLIP_HAVE_LIBJPEG
constexpr bool clip_decodes_jpeg_with_libjpeg = true;
#else
constexpr bool clip_decodes_jpeg_with_libjpeg = false;
#endif

bool is_jpeg(const std::string& file) {
  return file.size() > 4 && (file.substr(file.size() - 4) == ".jpg" || file.substr(file.size() - 5) == ".jpeg");
}

TEST(Reference, PixelValuesMatchGolden) {
  REQUIRE_REFERENCE();
  const nlohmann::json golden = nlohmann::json::parse(std::ifstream(dir + "/golden.json"));
  const int size = golden.at("image_resolution").get<int>();
  clip::PreprocessOptions options;
  options.image_size = size;
  ASSERT_GT(golden.at("images").size(), 0u);
  for (const auto& entry : golden.at("images")) {
    const std::string file = entry.at("file").get<std::string>();
    const std::vector<float> want = entry.at("pixel_values").get<std::vector<float>>();
    ASSERT_EQ(want.size(), static_cast<std::size_t>(3 * size * size)) << file;
    const clip::Image image = clip::decode_image_file(dir + "/" + file);
    std::vector<float> got(want.size());
    clip::preprocess_image(image, options, got.data());

    // Differences in 8-bit levels: invert Normalize and ToTensor (channel-major layout).
    double worst_value = 0, worst_level = 0, level_sum = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
      const int c = static_cast<int>(i / (static_cast<std::size_t>(size) * size));
      worst_value = std::max(worst_value, static_cast<double>(std::abs(got[i] - want[i])));
      const double level = std::abs(static_cast<double>(got[i]) - want[i]) * options.std[c] * 255.0;
      worst_level = std::max(worst_level, level);
      level_sum += level;
    }
    const double mean_level = level_sum / want.size();
    std::printf("  %-32s mode %-4s max |diff| %.3g (%.2f levels), mean %.4f levels\n", file.c_str(),
                clip::mode_name(image.mode), worst_value, worst_level, mean_level);
    if (is_jpeg(file) && !clip_decodes_jpeg_with_libjpeg) {
      // stb_image and libjpeg (Pillow) decode with different fixed-point IDCT and YCbCr->RGB
      // rounding, so single pixels may differ by a level before the resize averages them.
      // Measured on the golden JPEGs: max 1 level, mean 0.010 / 0.039 levels. Bounds: 2 levels
      // max (one level of decoder rounding on either side of a resize rounding boundary) and a
      // mean of 0.1 level; a wrong upsampling or colour matrix gives far more.
      EXPECT_LE(worst_level, 2.0 + 1e-3) << file;
      EXPECT_LE(mean_level, 0.1) << file;
    } else {
      // Lossless inputs, and JPEG through libjpeg-turbo (Pillow's decoder with Pillow's
      // settings): identical 8-bit pixels, so only float rounding of the golden JSON.
      EXPECT_LE(worst_value, 1e-6) << file;
    }
  }
}

TEST(Reference, ModesFollowPillow) {
  REQUIRE_REFERENCE();
  const std::vector<std::pair<std::string, clip::PixelMode>> expected = {
      {"gray16_80x60.png", clip::PixelMode::Gray16},  {"gray_120x90.png", clip::PixelMode::Gray},
      {"palette_90x90.png", clip::PixelMode::Palette}, {"rgba_100x140.png", clip::PixelMode::RGBA},
      {"noise_48x48.bmp", clip::PixelMode::RGB},       {"shapes_640x480.jpg", clip::PixelMode::RGB},
  };
  for (const auto& [file, mode] : expected) {
    const std::string path = dir + "/" + file;
    if (!std::ifstream(path)) GTEST_SKIP() << path << " not found";
    EXPECT_EQ(clip::decode_image_file(path).mode, mode) << file;
  }
}

// Images the project ships (the examples' PNGs, the fuzz corpus' small files of each format), so
// the tests below that are not reference comparisons run on every clone.
std::string shipped_image(const std::string& relative) { return std::string(CLIP_SOURCE_DIR) + "/" + relative; }

TEST(Decode, MemoryAndFileDecodingAgree) {
  for (const char* relative : {"tests/fuzz/corpus/image/palette-trns.png", "tests/fuzz/corpus/image/gray.jpg",
                               "tests/fuzz/corpus/image/gray16.png", "examples/images/red_circle.png"}) {
    const std::string path = shipped_image(relative);
    const std::vector<char> bytes = read_bytes(path);
    ASSERT_FALSE(bytes.empty()) << path << " is missing";
    const clip::Image from_memory = clip::decode_image_memory(bytes.data(), bytes.size(), path);
    const clip::Image from_file = clip::decode_image_file(path);
    EXPECT_EQ(from_memory.pixels, from_file.pixels) << path;
    EXPECT_EQ(from_memory.pixels16, from_file.pixels16) << path;
    EXPECT_EQ(from_memory.mode, from_file.mode) << path;
  }
}

TEST(Preprocess, BatchRowsEqualSingleImages) {
  std::vector<clip::Image> images;
  for (const char* relative : {"tests/fuzz/corpus/image/stb-3ch.png", "examples/images/yellow_star.png"})
    images.push_back(clip::decode_image_file(shipped_image(relative)));
  clip::PreprocessOptions options;
  options.image_size = 32;
  const clip::RowMatrix<double> batch = clip::preprocess_images<double>(images, options);
  ASSERT_EQ(batch.rows(), 2);
  ASSERT_EQ(batch.cols(), 3 * 32 * 32);
  for (int i = 0; i < 2; ++i) {
    std::vector<float> single(3 * 32 * 32);
    clip::preprocess_image(images[i], options, single.data());
    for (int j = 0; j < batch.cols(); ++j) ASSERT_EQ(batch(i, j), static_cast<double>(single[j])) << i << "," << j;
  }
}

TEST(Decode, TruncatedFilesAreRefused) {
  for (const char* relative : {"examples/images/red_circle.png", "tests/fuzz/corpus/image/gray.jpg",
                               "tests/fuzz/corpus/image/rgb.jpg", "tests/fuzz/corpus/image/rgb.bmp",
                               "tests/fuzz/corpus/image/palette-trns.png"}) {
    const std::string path = shipped_image(relative);
    const std::vector<char> bytes = read_bytes(path);
    ASSERT_GT(bytes.size(), 40u) << path << " is missing or too small";
    const std::string file = std::filesystem::path(path).filename().string();
    for (std::size_t keep : {bytes.size() / 2, std::size_t{40}, std::size_t{3}}) {
      const std::string message = error_of([&] { clip::decode_image_memory(bytes.data(), keep, file); });
      EXPECT_NE(message.find(file), std::string::npos) << file << " cut to " << keep << ": " << message;
    }
  }
}

// JPEGs built to hurt: a frame header claiming 60000x60000 (refused by the pixel limit before
// libjpeg allocates its buffers), a scan with garbage in it, and a file cut inside the scan.
TEST(Reference, HostileJpegsAreRefused) {
  REQUIRE_REFERENCE();
  const std::string path = dir + "/shapes_640x480.jpg";
  if (!std::ifstream(path)) GTEST_SKIP() << path << " not found";
  const std::vector<char> original = read_bytes(path);
  std::size_t sof = 0;
  for (std::size_t i = 2; i + 9 < original.size(); ++i)
    if (static_cast<unsigned char>(original[i]) == 0xFF &&
        (static_cast<unsigned char>(original[i + 1]) == 0xC0 || static_cast<unsigned char>(original[i + 1]) == 0xC2)) {
      sof = i;
      break;
    }
  ASSERT_GT(sof, 0u) << "no SOF marker in " << path;
  std::vector<char> huge = original;
  huge[sof + 5] = huge[sof + 7] = static_cast<char>(0xEA);  // height, width = 0xEA60 = 60000
  huge[sof + 6] = huge[sof + 8] = static_cast<char>(0x60);
  std::string message = error_of([&] { clip::decode_image_memory(huge.data(), huge.size(), "huge.jpg"); });
  EXPECT_NE(message.find("huge.jpg"), std::string::npos) << message;
  EXPECT_NE(message.find("exceeds the limit"), std::string::npos) << message;

  // A scan cut short that still ends in FF D9: libjpeg warns ("premature end of data segment")
  // and fills the rest; Pillow ignores libjpeg's warnings and opens it, so the library does too.
  std::vector<char> cut(original.begin(), original.begin() + original.size() / 2);
  cut.push_back(static_cast<char>(0xFF));
  cut.push_back(static_cast<char>(0xD9));
  const clip::Image image = clip::decode_image_memory(cut.data(), cut.size(), "cut.jpg");
  EXPECT_EQ(image.width, 640);
  EXPECT_EQ(image.height, 480);

  std::vector<char> header_only(original.begin(), original.begin() + static_cast<std::ptrdiff_t>(sof + 4));
  header_only.push_back(static_cast<char>(0xFF));
  header_only.push_back(static_cast<char>(0xD9));
  message = error_of([&] { clip::decode_image_memory(header_only.data(), header_only.size(), "header.jpg"); });
  EXPECT_NE(message.find("header.jpg"), std::string::npos) << message;
}

// Flipping bytes anywhere must give an image or a clip::Error, never a crash (run under ASan).
TEST(Decode, CorruptedFilesNeverCrash) {
  std::srand(11);
  for (const char* relative : {"examples/images/red_circle.png", "tests/fuzz/corpus/image/gray.jpg",
                               "tests/fuzz/corpus/image/rgba.bmp", "tests/fuzz/corpus/image/stb-4ch.png",
                               "tests/fuzz/corpus/image/palette-trns.png"}) {
    const std::string path = shipped_image(relative);
    const std::vector<char> original = read_bytes(path);
    ASSERT_FALSE(original.empty()) << path << " is missing";
    const std::string file = std::filesystem::path(path).filename().string();
    for (int trial = 0; trial < 40; ++trial) {
      std::vector<char> bytes = original;
      for (int k = 0; k < 4; ++k) bytes[std::rand() % bytes.size()] = static_cast<char>(std::rand());
      try {
        const clip::Image image = clip::decode_image_memory(bytes.data(), bytes.size(), file);
        std::vector<float> out(3 * 16 * 16);
        clip::PreprocessOptions options;
        options.image_size = 16;
        clip::preprocess_image(image, options, out.data());
      } catch (const clip::Error&) {
      }
    }
  }
}

}  // namespace
