// Resource limits on hostile input (docs/reliability.md): each limit refuses the first value past
// it with a clip::Error that names it, and accepts the value at it. Also the guards in front of
// stb_image 2.27's known bugs, each with the smallest input that reaches it.

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#include <clip/formats/model_file.hpp>
#include <clip/formats/tensor_writer.hpp>
#include <clip/image/decode.hpp>
#include <clip/image/preprocess.hpp>
#include <clip/text/tokenizer.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace {

std::vector<std::uint8_t> bytes_of(const std::string& text) { return std::vector<std::uint8_t>(text.begin(), text.end()); }

/// safetensors bytes: the 8-byte little-endian header length, the header, then `data`.
std::string safetensors(const std::string& header, const std::string& data = "") {
  std::string file(8, '\0');
  for (int b = 0; b < 8; ++b) file[b] = static_cast<char>(static_cast<std::uint64_t>(header.size()) >> (8 * b));
  return file + header + data;
}

/// Expects `call` to throw a clip::Error whose message contains `part`.
template <typename Call>
void expect_error(const Call& call, const std::string& part) {
  try {
    call();
    ADD_FAILURE() << "no clip::Error, expected one mentioning \"" << part << "\"";
  } catch (const clip::Error& error) {
    EXPECT_NE(std::string(error.what()).find(part), std::string::npos) << error.what();
  }
}

// ---- model files -----------------------------------------------------------------------------

TEST(Limits, TensorFileFromBytesReadsWhatTheWriterWrote) {
  clip::TensorWriter writer;
  const float values[4] = {1.5f, -2.0f, 0.25f, 1e-3f};
  writer.add("x", clip::DType::F16, {2, 2}, values);
  writer.set_metadata("k", "v");
  const std::string file = writer.serialize();
  const clip::TensorFile tensors = clip::TensorFile::from_bytes(bytes_of(file), "in memory");
  EXPECT_EQ(tensors.path(), "in memory");
  EXPECT_EQ(tensors.metadata().at("k"), "v");
  EXPECT_EQ(tensors.read<float>("x"), (std::vector<float>{1.5f, -2.0f, 0.25f, clip::detail::half_to_float(clip::detail::float_to_half(1e-3f))}));
  expect_error([&] { clip::TensorFile::from_bytes(bytes_of(file.substr(0, 20)), "cut"); }, "cut: ");
  expect_error([&] { clip::ModelFile(clip::TensorFile::from_bytes(bytes_of(file), "plain")); }, "plain: not a clip model file");
}

TEST(Limits, HeaderLengthAboveTheLimitIsRefusedBeforeReading) {
  const std::uint64_t limit = clip::TensorFile::max_header_bytes;
  EXPECT_EQ(limit, std::uint64_t{16} << 20);
  std::string over(16, ' ');
  for (int b = 0; b < 8; ++b) over[b] = static_cast<char>((limit + 1) >> (8 * b));
  expect_error([&] { clip::TensorFile::from_bytes(bytes_of(over), "f"); }, "exceeds the limit of 16777216 bytes");
  // At the limit the length is accepted and the file found too short for it.
  std::string at(16, ' ');
  for (int b = 0; b < 8; ++b) at[b] = static_cast<char>(limit >> (8 * b));
  expect_error([&] { clip::TensorFile::from_bytes(bytes_of(at), "f"); }, "runs past the end of the file");
}

std::string header_with_tensors(std::size_t count) {
  std::string header = "{";
  for (std::size_t i = 0; i < count; ++i)
    header += (i ? ",\"t" : "\"t") + std::to_string(i) + "\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}";
  return header + "}";
}

TEST(Limits, TensorCountAboveTheLimitIsRefused) {
  const std::size_t limit = clip::TensorFile::max_tensor_count;
  EXPECT_EQ(limit, 65536u);
  EXPECT_EQ(clip::TensorFile::from_bytes(bytes_of(safetensors(header_with_tensors(limit))), "f").tensors().size(), limit);
  expect_error([&] { clip::TensorFile::from_bytes(bytes_of(safetensors(header_with_tensors(limit + 1))), "f"); },
               "more than 65536 tensors");
}

// ---- images ----------------------------------------------------------------------------------

std::string png_of(int width, int height) {
  std::vector<unsigned char> pixels(static_cast<std::size_t>(width) * height * 3, 100);
  std::string out;
  stbi_write_png_to_func([](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<std::size_t>(size));
  }, &out, width, height, 3, pixels.data(), width * 3);
  return out;
}

TEST(Limits, DecodePixelLimitIsAnOption) {
  EXPECT_EQ(clip::DecodeOptions{}.max_pixels, 89'478'485u);  // Pillow's warning threshold
  const std::string png = png_of(10, 10);
  clip::DecodeOptions options;
  options.max_pixels = 99;
  expect_error([&] { clip::decode_image_memory(png.data(), png.size(), "small.png", options); },
               "small.png: 10x10 = 100 pixels exceeds the limit of 99 (DecodeOptions::max_pixels)");
  options.max_pixels = 100;
  EXPECT_EQ(clip::decode_image_memory(png.data(), png.size(), "small.png", options).width, 10);
}

TEST(Limits, DecodePixelLimitRefusesABombBeforeDecoding) {
  // A 10000 x 10000 PNG header (100 M pixels) with almost no data: refused from the header alone.
  std::string png = png_of(1, 1);
  const std::string size = std::string("\0\0\x27\x10\0\0\x27\x10", 8);
  png.replace(16, 8, size);
  expect_error([&] { clip::decode_image_memory(png.data(), png.size(), "bomb.png"); },
               "bomb.png: 10000x10000 = 100000000 pixels exceeds the limit of 89478485");
}

clip::Image gray_image(int width, int height) {
  clip::Image image;
  image.width = width;
  image.height = height;
  image.mode = clip::PixelMode::Gray;
  image.pixels.assign(static_cast<std::size_t>(width) * height, 77);
  return image;
}

TEST(Limits, ResizedPixelLimitIsAnOption) {
  // 2 x 40 to short side 8: 8 x 160 = 1280 pixels before the crop.
  clip::PreprocessOptions options;
  options.image_size = 8;
  std::vector<float> out(3 * 8 * 8);
  options.max_resized_pixels = 1279;
  expect_error([&] { clip::preprocess_image(gray_image(2, 40), options, out.data()); },
               "makes 1280 pixels before the crop, over the limit of 1279 (PreprocessOptions::max_resized_pixels)");
  options.max_resized_pixels = 1280;
  clip::preprocess_image(gray_image(2, 40), options, out.data());
  EXPECT_EQ(clip::resize_and_crop(gray_image(2, 40), 8, {false, 1280}).width, 8);
  expect_error([&] { clip::resize_and_crop(gray_image(2, 40), 8, {false, 1279}); }, "max_resized_pixels");
}

TEST(Limits, ThinStripIsRefusedInsteadOfResizedToGigabytes) {
  // 1 x 50,000 to 224 would be 224 x 11,200,000 pixels (7.5 GB of RGB) before the crop.
  EXPECT_EQ(clip::PreprocessOptions{}.max_resized_pixels, clip::DecodeOptions{}.max_pixels);
  clip::PreprocessOptions options;
  std::vector<float> out(3 * 224 * 224);
  expect_error([&] { clip::preprocess_image(gray_image(1, 50000), options, out.data()); },
               "resizing a 1x50000 image to short side 224 makes 2508800000 pixels");
  // The long side of 1 x 20,000,000 at 224 (4.48e9) does not fit an int: refused, not overflowed.
  expect_error([&] { clip::resize_and_crop(gray_image(1, 20'000'000), 224); }, "max_resized_pixels");
}

// stb_image 2.27 bugs the decoder guards against (see decode.hpp), smallest inputs.
TEST(Limits, JpegHuffmanTableWithMoreThan256CodesIsRefused) {
  std::string jpeg = "\xff\xd8\xff\xc4";
  jpeg += std::string("\0\x13\0", 3);     // DHT segment of 19 bytes: DC table 0
  jpeg += std::string(16, '\xff');         // 16 x 255 code lengths: 4080 codes
  jpeg += "\xff\xd9";
  expect_error([&] { clip::decode_image_memory(jpeg.data(), jpeg.size(), "dht.jpg"); },
               "dht.jpg: corrupt JPEG (a Huffman table has more than 256 codes)");
  // stb skips 0xFF fill bytes before SOI, so the guard must too (found by the fuzzer).
  const std::string filled = "\xff\xff\xff" + jpeg.substr(1);
  expect_error([&] { clip::decode_image_memory(filled.data(), filled.size(), "fill.jpg"); },
               "fill.jpg: corrupt JPEG (a Huffman table has more than 256 codes)");
}

TEST(Limits, PngChunkLongerThanTheFileIsRefusedBeforeAllocating) {
  std::string png = png_of(2, 2);
  const std::size_t idat = png.find("IDAT") - 4;
  png.replace(idat, 4, std::string("\x7f\xff\xff\x00", 4));  // 2 GB
  expect_error([&] { clip::decode_image_memory(png.data(), png.size(), "chunk.png"); },
               "chunk.png: truncated PNG (the chunk at byte 33 claims 2147483392 bytes");
}

TEST(Limits, PnmHeaderNumbersThatOverflowIntAreRefused) {
  const std::string pnm = "P5\n77777777777 1\n255\n\x01";
  expect_error([&] { clip::decode_image_memory(pnm.data(), pnm.size(), "big.pgm"); }, "big.pgm: PNM header has a number above");
  const std::string ok = "P5\n214748364 0\n255\n";  // the largest number accepted (then refused by size)
  try {
    clip::decode_image_memory(ok.data(), ok.size(), "ok.pgm");
    ADD_FAILURE() << "a 214748364 x 0 image was decoded";
  } catch (const clip::Error& error) {
    EXPECT_EQ(std::string(error.what()).find("PNM header"), std::string::npos) << error.what();
  }
}

// ---- text ------------------------------------------------------------------------------------

TEST(Limits, TextLongerThanTheLimitIsRefused) {
  const clip::Tokenizer tokenizer = clip::Tokenizer::from_merges("#version: 0.2\nh e\n");
  EXPECT_EQ(clip::Tokenizer::max_text_bytes, std::size_t{1} << 20);
  const std::string over(clip::Tokenizer::max_text_bytes + 1, 'a');
  expect_error([&] { tokenizer.encode(over); }, "has 1048577 bytes, more than the limit of 1048576 (Tokenizer::max_text_bytes)");
  expect_error([&] { tokenizer.tokenize({"fine", over}, 77, true); }, "Tokenizer::max_text_bytes");
  EXPECT_EQ(tokenizer.encode("he").size(), 2u);  // h, e</w>: under the limit text is encoded
}

}  // namespace
