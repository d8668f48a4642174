// Writes the fuzzers' seed corpus: tiny model files made with the library's own TensorWriter,
// small images in every format the decoder reads (stb_image_write for PNG/BMP/TGA/JPEG/HDR, a
// hand-rolled PNG writer for the palette, 1-bit and 16-bit kinds stb cannot write, PNM and GIF by
// hand), texts that reach each step of the tokenizer, and .npy files (every header version,
// accepted and refused dtypes, ranks and orders, truncations). Usage: fuzz_make_corpus CORPUS_DIR
// (writes CORPUS_DIR/<target>/<name>). The files are committed; rerun only to change the seeds.

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#include <clip/config.hpp>
#include <clip/formats/model_file.hpp>
#include <clip/formats/npy.hpp>
#include <clip/formats/tensor_writer.hpp>

#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

std::filesystem::path root;

void write(const std::string& target, const std::string& name, const std::string& bytes) {
  const std::filesystem::path dir = root / target;
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + (dir / name).string());
}

// ---- model files -------------------------------------------------------------------------------

const char* const kMerges = "#version: 0.2\nh e\nl l\nhe ll\no</w> o\nc a\nca t</w>\n";

clip::ModelConfig tiny_config(int layers) {
  clip::ModelConfig config;
  config.vision = {4, 2, 4, layers, 2, 8};  // image_size, patch_size, width, layers, heads, mlp_width
  config.text.vocab_size = 512 + 6 + 2;     // byte symbols, merges, SOT/EOT
  config.text.context_length = 6;
  config.text.width = 4;
  config.text.heads = 1;
  config.text.layers = layers;
  config.text.mlp_width = 8;
  config.embed_dim = 3;
  return config;
}

std::string tiny_model(int layers, clip::DType dtype) {
  const clip::ModelConfig config = tiny_config(layers);
  clip::TensorWriter writer;
  writer.set_metadata("format", clip::model_format_name);
  writer.set_metadata("format_version", clip::model_format_version);
  writer.set_metadata("config", clip::to_json(config).dump());
  int seed = 1;
  for (const clip::TensorSpec& spec : clip::canonical_tensors(config)) {
    std::int64_t count = 1;
    for (std::int64_t dim : spec.shape) count *= dim;
    std::vector<float> values(static_cast<std::size_t>(count));
    for (float& v : values) v = static_cast<float>((seed = seed * 1103515245 + 12345) >> 16 & 255) / 128.0f - 1.0f;
    writer.add(spec.name, dtype, spec.shape, values.data());
  }
  writer.add_text(clip::merges_tensor_name, kMerges);
  return writer.serialize();
}

void model_seeds() {
  write("model_file", "tiny-f32-1layer.safetensors", tiny_model(1, clip::DType::F32));
  write("model_file", "tiny-f16-0layers.safetensors", tiny_model(0, clip::DType::F16));
  write("model_file", "tiny-bf16-0layers.safetensors", tiny_model(0, clip::DType::BF16));
  // Plain safetensors (not clip model files): the container alone.
  clip::TensorWriter plain;
  const float values[6] = {1, -2, 3.5f, 0, 1e-3f, 65504};
  plain.add("a", clip::DType::F32, {2, 3}, values);
  plain.add("b", clip::DType::F16, {6}, values);
  plain.add("c", clip::DType::BF16, {3, 1, 2}, values);
  plain.add("scalar", clip::DType::F32, {}, values);
  plain.add_text("text", "hello");
  plain.set_metadata("note", "plain");
  write("model_file", "plain.safetensors", plain.serialize());
  write("model_file", "empty-header.safetensors", std::string("\x02\0\0\0\0\0\0\0{}", 10));
  std::string metadata_only = "{\"__metadata__\":{\"format\":\"clip\",\"format_version\":\"1\",\"config\":\"{}\"}}";
  std::string header(8, '\0');
  for (int b = 0; b < 8; ++b) header[b] = static_cast<char>(metadata_only.size() >> (8 * b));
  write("model_file", "metadata-only.safetensors", header + metadata_only);
}

// ---- images -------------------------------------------------------------------------------------

void append_to(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<std::size_t>(size));
}

std::vector<unsigned char> pattern(int width, int height, int channels) {
  std::vector<unsigned char> samples;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < channels; ++c) samples.push_back(static_cast<unsigned char>((x * 37 + y * 91 + c * 53) & 255));
  return samples;
}

void big_endian(std::string& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(value >> shift));
}

std::string png_chunk(const std::string& type, const std::string& data) {
  std::string chunk;
  big_endian(chunk, static_cast<std::uint32_t>(data.size()));
  const std::string body = type + data;
  chunk += body;
  big_endian(chunk, static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()), body.size())));
  return chunk;
}

// A PNG of any colour type and bit depth: rows of `row_bytes` raw bytes, filter 0.
std::string png(int width, int height, int bit_depth, int colour_type, int row_bytes, const std::string& extra_chunks) {
  std::string ihdr;
  big_endian(ihdr, static_cast<std::uint32_t>(width));
  big_endian(ihdr, static_cast<std::uint32_t>(height));
  ihdr += {static_cast<char>(bit_depth), static_cast<char>(colour_type), 0, 0, 0};
  std::string raw;
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);
    for (int i = 0; i < row_bytes; ++i) raw.push_back(static_cast<char>((y * 31 + i * 17) & 255));
  }
  uLongf length = compressBound(raw.size());
  std::string compressed(length, '\0');
  compress(reinterpret_cast<Bytef*>(&compressed[0]), &length, reinterpret_cast<const Bytef*>(raw.data()), raw.size());
  compressed.resize(length);
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) + extra_chunks + png_chunk("IDAT", compressed) +
         png_chunk("IEND", "");
}

void image_seeds() {
  for (int channels = 1; channels <= 4; ++channels) {
    std::string out;
    const auto samples = pattern(5, 3, channels);
    stbi_write_png_to_func(append_to, &out, 5, 3, channels, samples.data(), 5 * channels);
    write("image", "stb-" + std::to_string(channels) + "ch.png", out);
  }
  {
    std::string out;
    const auto samples = pattern(1, 1, 3);
    stbi_write_png_to_func(append_to, &out, 1, 1, 3, samples.data(), 3);
    write("image", "1x1.png", out);
  }
  std::string palette = png_chunk("PLTE", std::string("\0\0\0\xff\0\0\0\xff\0\0\0\xff", 12));
  write("image", "palette-trns.png", png(4, 3, 2, 3, 1, palette + png_chunk("tRNS", std::string("\x80\xff", 2))));
  write("image", "bilevel.png", png(9, 2, 1, 0, 2, ""));
  write("image", "gray16.png", png(3, 2, 16, 0, 6, ""));
  write("image", "rgb16.png", png(2, 2, 16, 2, 12, ""));
  write("image", "gray-alpha.png", png(2, 3, 8, 4, 4, ""));
  {
    const auto samples = pattern(6, 4, 3);
    std::string bmp, tga, tga_rle, jpg;
    stbi_write_bmp_to_func(append_to, &bmp, 6, 4, 3, samples.data());
    write("image", "rgb.bmp", bmp);
    stbi_write_tga_with_rle = 0;
    stbi_write_tga_to_func(append_to, &tga, 6, 4, 3, samples.data());
    write("image", "rgb.tga", tga);
    stbi_write_tga_with_rle = 1;
    stbi_write_tga_to_func(append_to, &tga_rle, 6, 4, 3, samples.data());
    write("image", "rgb-rle.tga", tga_rle);
    stbi_write_jpg_to_func(append_to, &jpg, 6, 4, 3, samples.data(), 50);
    write("image", "rgb.jpg", jpg);
    std::string gray_jpg;
    const auto gray = pattern(9, 9, 1);
    stbi_write_jpg_to_func(append_to, &gray_jpg, 9, 9, 1, gray.data(), 90);
    write("image", "gray.jpg", gray_jpg);
    std::string rgba_bmp;
    const auto rgba = pattern(3, 2, 4);
    stbi_write_bmp_to_func(append_to, &rgba_bmp, 3, 2, 4, rgba.data());
    write("image", "rgba.bmp", rgba_bmp);
    std::string hdr;
    std::vector<float> light;
    for (unsigned char s : pattern(2, 2, 3)) light.push_back(s / 64.0f);
    stbi_write_hdr_to_func(append_to, &hdr, 2, 2, 3, light.data());
    write("image", "rgb.hdr", hdr);
  }
  {
    std::string pgm = "P5\n# comment\n3 2\n255\n";
    for (unsigned char s : pattern(3, 2, 1)) pgm.push_back(static_cast<char>(s));
    write("image", "gray.pgm", pgm);
    std::string pgm16 = "P5 2 2 65535\n";
    for (unsigned char s : pattern(2, 2, 2)) pgm16.push_back(static_cast<char>(s));
    write("image", "gray16.pgm", pgm16);
    std::string ppm = "P6\n2 3\n255\n";
    for (unsigned char s : pattern(2, 3, 3)) ppm.push_back(static_cast<char>(s));
    write("image", "rgb.ppm", ppm);
  }
  // GIF89a, 2x2, 2-colour global palette, one LZW-coded frame (min code size 2).
  write("image", "palette.gif",
        std::string("GIF89a\x02\0\x02\0\x80\0\0\0\0\0\xff\xff\xff"
                    "\x21\xf9\x04\0\0\0\0\0"
                    "\x2c\0\0\0\0\x02\0\x02\0\0"
                    "\x02\x03\x84\x1d\x05\0\x3b",
                    46));
  // Raw-image branch of the target: width, height, mode bytes, then samples.
  for (int mode = 0; mode < 7; ++mode) {
    std::string raw = {static_cast<char>(4 + mode), static_cast<char>(2 + mode), static_cast<char>(mode)};
    for (unsigned char s : pattern(8, 8, 4)) raw.push_back(static_cast<char>(s));
    write("image", "raw-mode" + std::to_string(mode), raw);
  }
}

// ---- texts --------------------------------------------------------------------------------------

void text_seeds() {
  const std::pair<const char*, std::string> texts[] = {
      {"photo", std::string("\0a photo of a cat", 17)},
      {"strict-truncate", std::string("\x0b" "a diagram of two dogs playing with a red ball in the park", 58)},
      {"html", std::string("\0&amp; &lt;3 &#x41;&#65;&#0; &notit; &AElig &#x110000; &#150;", 60)},
      {"unicode", std::string("\0\xc3\x9cn\xc3\xafc\xc3\xb6" "d\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80 \xe2\x80\x8b\xc2\xa0x", 36)},
      {"invalid-utf8", std::string("\0ok \xff\xfe \xc0\x80 \xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82", 24)},
      {"invalid-utf8-strict", std::string("\x01" "ok \xff", 5)},
      {"contractions", std::string("\0it's they're I'LL we've don't 'S", 34)},
      {"specials", std::string("\0<|startoftext|>hello<|endoftext|> <|ENDOFTEXT|>", 48)},
      {"numbers", std::string("\0" "12345 3.14 1,000,000 #1!!! ...", 31)},
      {"whitespace", std::string("\0  tabs\tand\nnewlines\r\n\x0b\x0c\xe3\x80\x80  end  ", 39)},
      {"several", std::string("\x02one\0two\0\0three four five six seven eight nine ten", 51)},
      {"long-word", std::string("\x12") + std::string(300, 'a') + "b"},
      {"merges", std::string("\x04#version: 0.2\nh e\nl l\nhe ll\no</w> o\n", 37)},
  };
  for (const auto& [name, bytes] : texts) write("tokenizer", name, bytes);
}


// ---- .npy files --------------------------------------------------------------------------------

// A .npy file of format version `major` (1: 2-byte header length, 2 and 3: 4 bytes) around `dict`,
// padded as numpy pads (to a multiple of 64 with spaces and a newline), then `data_bytes` bytes.
std::string npy_file(int major, const std::string& dict, std::size_t data_bytes) {
  const std::size_t prefix = major == 1 ? 10 : 12;
  std::string header = dict;
  header.append(63 - (prefix + header.size()) % 64, ' ');
  header += '\n';
  std::string file = std::string("\x93NUMPY", 6);
  file.push_back(static_cast<char>(major));
  file.push_back('\0');
  for (std::size_t i = 0; i < prefix - 8; ++i) file.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xFF));
  file += header;
  for (std::size_t i = 0; i < data_bytes; ++i) file.push_back(static_cast<char>(i * 37 + 11));
  return file;
}

void npy_seeds() {
  const float floats[6] = {1, -2, 3.5f, 0, 1e-3f, 65504};
  const double doubles[6] = {1, -2, 3.5, 0, 1e-300, 1e300};
  write("npy", "f4-2x3.npy", clip::npy_bytes(floats, 2, 3));  // what clip-embed writes
  write("npy", "f8-3x2.npy", clip::npy_bytes(doubles, 3, 2));
  write("npy", "f4-0x512.npy", clip::npy_bytes(floats, 0, 512));
  // Version 2 and 3 headers (4-byte length), numpy's other spellings: no trailing comma, no
  // spaces, Python 2's long suffix, double quotes, keys in another order.
  write("npy", "v2-f8-long.npy", npy_file(2, "{'descr':'<f8','fortran_order':False,'shape':(3L, 2L)}", 48));
  write("npy", "v3-double-quotes.npy", npy_file(3, "{\"shape\": (1, 4), \"fortran_order\": False, \"descr\": \"f4\"}", 16));
  // Refused: Fortran order, other dtypes, other ranks, truncated and padded data.
  const std::string shape = "'shape': (2, 3), }";
  write("npy", "fortran-order.npy", npy_file(1, "{'descr': '<f4', 'fortran_order': True, " + shape, 24));
  write("npy", "big-endian.npy", npy_file(1, "{'descr': '>f8', 'fortran_order': False, " + shape, 48));
  write("npy", "int32.npy", npy_file(1, "{'descr': '<i4', 'fortran_order': False, " + shape, 24));
  write("npy", "float16.npy", npy_file(1, "{'descr': '<f2', 'fortran_order': False, " + shape, 12));
  write("npy", "uint8.npy", npy_file(1, "{'descr': '|u1', 'fortran_order': False, " + shape, 6));
  write("npy", "structured.npy", npy_file(1, "{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, " + shape, 48));
  write("npy", "rank1.npy", npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 24));
  write("npy", "rank3.npy", npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }", 24));
  write("npy", "scalar.npy", npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4));
  const std::string good = clip::npy_bytes(floats, 2, 3);
  write("npy", "truncated-data.npy", good.substr(0, good.size() - 3));
  write("npy", "truncated-header.npy", good.substr(0, 40));
  write("npy", "padded.npy", good + std::string(4, '\0'));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  root = argv[1];
  model_seeds();
  image_seeds();
  text_seeds();
  npy_seeds();
  // Each model seed must be what it claims: a readable clip model file.
  for (const char* name : {"tiny-f32-1layer.safetensors", "tiny-f16-0layers.safetensors", "tiny-bf16-0layers.safetensors"})
    clip::ModelFile((root / "model_file" / name).string());
  std::printf("corpus written to %s\n", root.c_str());
  return 0;
}
