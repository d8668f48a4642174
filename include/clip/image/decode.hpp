#pragma once
// Image decoding with stb_image, and JPEG with libjpeg-turbo when the build found it (jpeg.hpp:
// Pillow's own decoder, so JPEG pixels are Pillow's exactly), keeping what CLIP's reference
// preprocessing needs to know about the source: Pillow resizes an image in its own mode before convert("RGB"), and resizes
// palette and bilevel images with NEAREST, RGBA/LA with premultiplied alpha and 16-bit gray
// in 32-bit integers. So besides the pixels we record the mode Pillow 9.4 would open the file
// in (see docs/images.md for the rules and the known deviations).
//
// stb_image's implementation is compiled only where asked: in exactly one translation unit
// write `#define CLIP_STB_IMAGE_IMPLEMENTATION` before including a clip header. An application
// that already compiles stb_image itself defines nothing.

// With separate compilation (see clip/detail/compilation.hpp) the compiled library holds it.
#if defined(CLIP_SEPARATE_COMPILATION) && !defined(CLIP_IMPLEMENTATION)
#undef CLIP_STB_IMAGE_IMPLEMENTATION
#endif
#include <clip/detail/compilation.hpp>
#include <clip/error.hpp>

#include <cctype>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace clip {

/// The mode Pillow opens an image in (its name in parentheses); it decides how it is resized.
enum class PixelMode {
  Bilevel,    // "1": black/white, stored as 0/255 gray; resized with NEAREST
  Gray,       // "L"
  GrayAlpha,  // "LA": resized with premultiplied alpha
  Palette,    // "P": stored expanded to RGB (NEAREST commutes with the palette lookup)
  RGB,        // "RGB"
  RGBA,       // "RGBA": resized with premultiplied alpha
  Gray16,     // "I": 16-bit gray resized in 32-bit integers, clipped to 0..255 by convert("RGB")
};

/// Interleaved 8-bit channels stored per pixel for a mode (Gray16 uses Image::pixels16).
inline int channel_count(PixelMode mode) {
  switch (mode) {
    case PixelMode::Bilevel:
    case PixelMode::Gray:
    case PixelMode::Gray16: return 1;
    case PixelMode::GrayAlpha: return 2;
    case PixelMode::Palette:
    case PixelMode::RGB: return 3;
    case PixelMode::RGBA: return 4;
  }
  return 0;
}

inline const char* mode_name(PixelMode mode) {
  switch (mode) {
    case PixelMode::Bilevel: return "1";
    case PixelMode::Gray: return "L";
    case PixelMode::GrayAlpha: return "LA";
    case PixelMode::Palette: return "P";
    case PixelMode::RGB: return "RGB";
    case PixelMode::RGBA: return "RGBA";
    case PixelMode::Gray16: return "I";
  }
  return "?";
}

/// A decoded image: rows top to bottom, pixels left to right, channels interleaved.
struct Image {
  int width = 0;
  int height = 0;
  PixelMode mode = PixelMode::RGB;
  std::vector<std::uint8_t> pixels;     // width*height*channel_count(mode); empty for Gray16
  std::vector<std::uint16_t> pixels16;  // width*height; Gray16 only
};

struct DecodeOptions {
  /// Refuse larger images before decoding them; Pillow's decompression-bomb limit
  /// (Image.MAX_IMAGE_PIXELS).
  std::uint64_t max_pixels = 89'478'485;
  /// Refuse image files larger than this before reading them (decode_image_file).
  std::size_t max_file_bytes = std::size_t{1} << 30;
};

/// Decodes an encoded image held in memory; `name` is used in error messages.
Image decode_image_memory(const void* data, std::size_t size, const std::string& name,
                          const DecodeOptions& options = {});

/// Reads and decodes an image file (PNG, JPEG, BMP, GIF first frame, TGA, PNM, PSD, HDR, PIC).
Image decode_image_file(const std::string& path, const DecodeOptions& options = {});

/// Wraps an application's own 8-bit RGB buffer (rows `stride_bytes` apart) as an RGB image.
Image image_from_rgb8(const std::uint8_t* rgb, int width, int height, std::size_t stride_bytes);

}  // namespace clip

// The decoders (stb_image, libjpeg-turbo, the format checks) are compiled once in clip_compiled
// under separate compilation (CLIP_HEADER_DEFINITIONS, see clip/detail/compilation.hpp).
#if CLIP_HEADER_DEFINITIONS

#if defined(CLIP_STB_IMAGE_IMPLEMENTATION) && !defined(CLIP_DETAIL_STB_IMAGE_IMPLEMENTED)
#define CLIP_DETAIL_STB_IMAGE_IMPLEMENTED
#define STB_IMAGE_IMPLEMENTATION
#endif
#include <stb_image.h>

#include <clip/detail/read_file.hpp>
#ifdef CLIP_HAVE_LIBJPEG
#include <clip/image/jpeg.hpp>
#endif

namespace clip {

namespace detail {

inline std::uint32_t read_u32_be(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
inline std::uint32_t read_u32_le(const std::uint8_t* p) {
  return (std::uint32_t{p[3]} << 24) | (std::uint32_t{p[2]} << 16) | (std::uint32_t{p[1]} << 8) | p[0];
}
inline std::uint16_t read_u16_le(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}

inline bool starts_with(const std::uint8_t* data, std::size_t size, const char* magic) {
  const std::size_t n = std::strlen(magic);
  return size >= n && std::memcmp(data, magic, n) == 0;
}

/// Where a JPEG's SOI marker ends, or 0 if the data is not a JPEG to stb: stb (like libjpeg)
/// skips any number of 0xFF fill bytes before the marker's D8, so FF FF D8 is a JPEG too.
inline std::size_t jpeg_soi_end(const std::uint8_t* data, std::size_t size) {
  if (size < 2 || data[0] != 0xFF) return 0;
  std::size_t pos = 1;
  while (pos < size && data[pos] == 0xFF) ++pos;
  return pos < size && data[pos] == 0xD8 ? pos + 1 : 0;
}

/// What stb should be asked for: the Pillow mode and whether to load 16-bit samples.
struct DecodePlan {
  PixelMode mode = PixelMode::RGB;
  bool sixteen_bit = false;
  bool is_tga = false;
};

inline PixelMode mode_from_channels(int channels) {
  switch (channels) {
    case 1: return PixelMode::Gray;
    case 2: return PixelMode::GrayAlpha;
    case 4: return PixelMode::RGBA;
    default: return PixelMode::RGB;
  }
}

// PNG: IHDR is the first chunk; its colour type and bit depth map to Pillow's modes
// (PngImagePlugin _MODES). stb would expand palettes and tRNS, so read them ourselves.
inline DecodePlan png_plan(const std::uint8_t* data, std::size_t size, int stb_channels) {
  if (size < 33 || std::memcmp(data + 12, "IHDR", 4) != 0) return {mode_from_channels(stb_channels), false};
  const int bit_depth = data[24];
  switch (data[25]) {
    case 0:
      if (bit_depth == 1) return {PixelMode::Bilevel, false};
      if (bit_depth == 16) return {PixelMode::Gray16, true};
      return {PixelMode::Gray, false};
    case 2: return {PixelMode::RGB, false};  // 16-bit: Pillow keeps the high byte, as stb does
    case 3: return {PixelMode::Palette, false};
    case 4: return {PixelMode::GrayAlpha, false};
    case 6: return {PixelMode::RGBA, false};
    default: return {mode_from_channels(stb_channels), false};
  }
}

// BMP: Pillow opens 1/4/8-bit files as "P", unless the palette is the identity gray ramp
// (then "L", or "1" for two colours black and white); 32-bit files are "RGBA" only when
// BITFIELDS masks include alpha (BmpImagePlugin).
inline DecodePlan bmp_plan(const std::uint8_t* data, std::size_t size) {
  if (size < 18) return {PixelMode::RGB, false};
  const std::uint32_t header_size = read_u32_le(data + 14);
  int bits = 0;
  std::uint64_t colors = 0;
  std::uint32_t compression = 0;
  int palette_entry_bytes = 4;
  if (header_size == 12) {
    if (size < 26) return {PixelMode::RGB, false};
    bits = read_u16_le(data + 24);
    palette_entry_bytes = 3;
  } else {
    if (size < 50) return {PixelMode::RGB, false};
    bits = read_u16_le(data + 28);
    compression = read_u32_le(data + 30);
    colors = read_u32_le(data + 46);
  }
  if (bits == 32) {
    const bool alpha_mask = compression == 3 && header_size >= 56 && size >= 70 && read_u32_le(data + 66) != 0;
    return {alpha_mask ? PixelMode::RGBA : PixelMode::RGB, false};
  }
  if (bits > 8) return {PixelMode::RGB, false};
  if (colors == 0) colors = std::uint64_t{1} << bits;
  const std::uint64_t palette_offset = 14 + std::uint64_t{header_size};
  if (colors > 256 || palette_offset + colors * palette_entry_bytes > size) return {PixelMode::Palette, false};
  const std::uint8_t* palette = data + palette_offset;
  for (std::uint64_t i = 0; i < colors; ++i) {
    const std::uint8_t gray = colors == 2 ? static_cast<std::uint8_t>(i * 255) : static_cast<std::uint8_t>(i);
    const std::uint8_t* entry = palette + i * palette_entry_bytes;
    if (entry[0] != gray || entry[1] != gray || entry[2] != gray) return {PixelMode::Palette, false};
  }
  return {colors == 2 ? PixelMode::Bilevel : PixelMode::Gray, false};
}

// GIF: Pillow opens the first frame as "P" unless its palette (local, else global) is the
// identity gray ramp or absent (GifImagePlugin _is_palette_needed): then "L".
inline DecodePlan gif_plan(const std::uint8_t* data, std::size_t size) {
  auto palette_needed = [&](std::size_t offset, std::size_t entries) {
    if (offset + entries * 3 > size) return true;
    for (std::size_t i = 0; i < entries; ++i) {
      const std::uint8_t* e = data + offset + i * 3;
      if (e[0] != i || e[1] != i || e[2] != i) return true;
    }
    return false;
  };
  if (size < 13) return {PixelMode::Palette, false};
  std::size_t pos = 13;
  bool global_needed = false;
  if (data[10] & 0x80) {
    const std::size_t entries = std::size_t{1} << ((data[10] & 7) + 1);
    global_needed = palette_needed(pos, entries);
    pos += entries * 3;
  }
  while (pos < size) {
    const std::uint8_t tag = data[pos];
    if (tag == 0x21) {  // extension: label, then sub-blocks until a zero length
      pos += 2;
      while (pos < size && data[pos] != 0) pos += std::size_t{data[pos]} + 1;
      pos += 1;
    } else if (tag == 0x2C) {  // image descriptor
      if (pos + 10 > size) break;
      const std::uint8_t flags = data[pos + 9];
      if (flags & 0x80) {
        const std::size_t entries = std::size_t{1} << ((flags & 7) + 1);
        return {palette_needed(pos + 10, entries) ? PixelMode::Palette : PixelMode::Gray, false};
      }
      return {global_needed ? PixelMode::Palette : PixelMode::Gray, false};
    } else {
      break;
    }
  }
  return {global_needed ? PixelMode::Palette : PixelMode::Gray, false};
}

// TGA (TgaImagePlugin): gray types 3/11 are "L" ("LA" at 16 bits, "1" at 1 bit), colour-mapped
// types 1/9 "P", true-colour types 2/10 "RGB" ("RGBA" at 32 bits).
inline DecodePlan tga_plan(const std::uint8_t* data, std::size_t size, int stb_channels) {
  if (size < 18) return {mode_from_channels(stb_channels), false};
  const int type = data[2];
  const int depth = data[16];
  if (type == 3 || type == 11) {
    if (depth == 1) return {PixelMode::Bilevel, false};
    return {depth == 16 ? PixelMode::GrayAlpha : PixelMode::Gray, false};
  }
  if (type == 1 || type == 9) return {PixelMode::Palette, false};
  if (type == 2 || type == 10) return {depth == 32 ? PixelMode::RGBA : PixelMode::RGB, false};
  return {mode_from_channels(stb_channels), false};
}

inline DecodePlan plan_decode(const std::uint8_t* data, std::size_t size, int stb_channels, bool stb_16bit) {
  if (starts_with(data, size, "\x89PNG\r\n\x1a\n")) return png_plan(data, size, stb_channels);
  if (jpeg_soi_end(data, size)) return {stb_channels == 1 ? PixelMode::Gray : PixelMode::RGB, false};
  if (starts_with(data, size, "BM")) return bmp_plan(data, size);
  if (starts_with(data, size, "GIF8")) return gif_plan(data, size);
  // PNM: Pillow opens 16-bit P5 files as "I"; P6 and 8-bit files keep their 8-bit modes.
  if (starts_with(data, size, "P5")) return {stb_16bit ? PixelMode::Gray16 : PixelMode::Gray, stb_16bit};
  if (starts_with(data, size, "P6")) return {PixelMode::RGB, false};
  // Formats with a signature that are not TGA (PSD, Softimage PIC, Radiance HDR).
  if (starts_with(data, size, "8BPS") || starts_with(data, size, "\x53\x80\xf6\x34") ||
      starts_with(data, size, "#?"))
    return {mode_from_channels(stb_channels), false};
  DecodePlan plan = tga_plan(data, size, stb_channels);
  plan.is_tga = true;
  return plan;
}

// stb fills missing pixel data of an uncompressed BMP or TGA with zeros; Pillow refuses such a
// file as truncated. Returns false when the file is shorter than its header says.
inline bool uncompressed_pixel_data_complete(const std::uint8_t* data, std::size_t size) {
  if (starts_with(data, size, "BM") && size >= 30) {
    const std::uint32_t header_size = read_u32_le(data + 14);
    std::uint64_t width = 0, height = 0;
    int bits = 0;
    std::uint32_t compression = 0;
    if (header_size == 12) {
      width = read_u16_le(data + 18);
      height = read_u16_le(data + 20);
      bits = read_u16_le(data + 24);
    } else if (size >= 34) {
      width = read_u32_le(data + 18);
      const auto signed_height = static_cast<std::int32_t>(read_u32_le(data + 22));
      height = signed_height < 0 ? 0 - static_cast<std::int64_t>(signed_height) : signed_height;
      bits = read_u16_le(data + 28);
      compression = read_u32_le(data + 30);
    }
    if (compression != 0 && compression != 3) return true;  // RLE: length unknown up front
    const std::uint64_t row_bytes = (static_cast<std::uint64_t>(bits) * width + 31) / 32 * 4;
    return read_u32_le(data + 10) + row_bytes * height <= size;
  }
  return true;
}

inline bool tga_pixel_data_complete(const std::uint8_t* data, std::size_t size) {
  if (size < 18) return false;
  const int type = data[2];
  if (type != 1 && type != 2 && type != 3) return true;  // RLE types 9/10/11: length unknown
  const std::uint64_t map_bytes = data[1] ? std::uint64_t{read_u16_le(data + 5)} * ((data[7] + 7) / 8) : 0;
  const std::uint64_t pixels = std::uint64_t{read_u16_le(data + 12)} * read_u16_le(data + 14);
  return 18 + std::uint64_t{data[0]} + map_bytes + pixels * ((data[16] + 7) / 8) <= size;
}

// Binary PNM (P5/P6) header: width, height, maxval and where the samples start. stb 2.27
// neither checks that the samples are all there nor reads 16-bit samples big-endian as the
// format says, so the library checks the length and reads 16-bit P5 samples itself.
struct PnmHeader {
  bool valid = false;
  int channels = 0;
  std::uint64_t width = 0, height = 0, maxval = 0;
  std::size_t data_offset = 0;
};

inline PnmHeader parse_pnm_header(const std::uint8_t* data, std::size_t size) {
  PnmHeader header;
  if (size < 2 || data[0] != 'P' || (data[1] != '5' && data[1] != '6')) return header;
  header.channels = data[1] == '5' ? 1 : 3;
  std::size_t pos = 2;
  std::uint64_t values[3] = {0, 0, 0};
  for (std::uint64_t& value : values) {
    while (pos < size && (std::isspace(data[pos]) || data[pos] == '#')) {
      if (data[pos] == '#')
        while (pos < size && data[pos] != '\n' && data[pos] != '\r') ++pos;
      else
        ++pos;
    }
    if (pos >= size || !std::isdigit(data[pos])) return header;
    while (pos < size && std::isdigit(data[pos]) && value < (std::uint64_t{1} << 40)) value = value * 10 + (data[pos++] - '0');
  }
  if (pos >= size || !std::isspace(data[pos])) return header;
  header.width = values[0];
  header.height = values[1];
  header.maxval = values[2];
  header.data_offset = pos + 1;
  header.valid = true;
  return header;
}

inline bool pnm_pixel_data_complete(const PnmHeader& header, std::size_t size) {
  const std::uint64_t sample_bytes = header.maxval > 255 ? 2 : 1;
  return header.data_offset + header.width * header.height * header.channels * sample_bytes <= size;
}

// A complete JPEG ends with the EOI marker FF D9; allow trailing bytes after it (some cameras
// append data), so search backwards through the last 64 KiB.
inline bool has_jpeg_end_marker(const std::uint8_t* data, std::size_t size) {
  const std::size_t window = size < 65536 ? size : 65536;
  for (std::size_t i = size - 1; i > size - window; --i)
    if (data[i] == 0xD9 && data[i - 1] == 0xFF) return true;
  return false;
}

// stb_image 2.27 (Debian 12's) builds a Huffman table from a DHT segment without checking
// that its 16 code-length counts sum to at most 256, so a hostile JPEG writes past the table
// (fixed upstream in 2.28). Walk the markers, across the scans of a progressive file, and
// refuse such a table first. Returns false only for a bad table; truncation is found elsewhere.
inline bool jpeg_huffman_tables_valid(const std::uint8_t* data, std::size_t size) {
  std::size_t pos = jpeg_soi_end(data, size);
  while (pos + 1 < size) {
    if (data[pos] != 0xFF) {  // entropy-coded data of a scan: find the next real marker
      ++pos;
      continue;
    }
    const std::uint8_t marker = data[pos + 1];
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    pos += 2;
    if (marker == 0x00 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) continue;  // no length
    if (marker == 0xD9) return true;  // EOI
    if (pos + 2 > size) return true;
    const std::size_t length = (std::size_t{data[pos]} << 8) | data[pos + 1];
    if (length < 2) return true;  // stb refuses it
    if (marker == 0xC4) {
      // As stb reads it: tables until the segment's length is used up, bytes past the end of
      // the data read as zero.
      auto byte_at = [&](std::size_t i) -> std::size_t { return i < size ? data[i] : 0; };
      std::size_t table = pos + 2;
      for (std::ptrdiff_t remaining = static_cast<std::ptrdiff_t>(length) - 2; remaining > 0;) {
        std::size_t symbols = 0;
        for (std::size_t i = 1; i <= 16; ++i) symbols += byte_at(table + i);
        if (symbols > 256) return false;
        table += 17 + symbols;
        remaining -= static_cast<std::ptrdiff_t>(17 + symbols);
      }
    }
    pos += length;
  }
  return true;
}

// stb_image 2.27 grows its IDAT buffer to a chunk's declared length before reading the chunk,
// so a 100-byte PNG claiming a 2 GB chunk makes it allocate 2 GB. Every chunk up to IEND must
// fit in the file. Returns the offset of the first chunk that does not, or 0 when all fit.
inline std::size_t png_chunk_past_end(const std::uint8_t* data, std::size_t size) {
  std::size_t pos = 8;  // after the signature
  while (pos + 8 <= size) {
    const std::uint64_t length = read_u32_be(data + pos);
    if (length + 12 > size - pos) return pos;
    if (std::memcmp(data + pos + 4, "IEND", 4) == 0) return 0;
    pos += 12 + static_cast<std::size_t>(length);
  }
  return 0;  // a cut-off chunk header: stb reports the file as truncated
}

// stb_image 2.27 reads a PNM header's width, height and maxval into an int without an
// overflow check (undefined behaviour; fixed upstream in 2.28). Scan the three numbers as stb
// does and refuse any above INT_MAX / 10, which no image under the pixel limit needs.
inline bool pnm_header_numbers_fit(const std::uint8_t* data, std::size_t size) {
  if (size < 2 || data[0] != 'P' || (data[1] != '5' && data[1] != '6')) return true;
  auto is_space = [](std::uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
  std::size_t pos = 2;
  for (int number = 0; number < 3; ++number) {
    for (;;) {  // whitespace, then a '#' comment to the end of its line, repeatedly
      while (pos < size && is_space(data[pos])) ++pos;
      if (pos >= size || data[pos] != '#') break;
      while (pos < size && data[pos] != '\n' && data[pos] != '\r') ++pos;
    }
    std::uint64_t value = 0;
    for (; pos < size && data[pos] >= '0' && data[pos] <= '9'; ++pos) {
      value = value * 10 + (data[pos] - '0');
      if (value > INT_MAX / 10) return false;
    }
  }
  return true;
}

inline std::string stb_reason() {
  const char* reason = stbi_failure_reason();
  return reason ? reason : "unknown reason";
}

}  // namespace detail

CLIP_INLINE Image decode_image_memory(const void* data, std::size_t size, const std::string& name,
                                      const DecodeOptions& options) {
  if (data == nullptr || size == 0) throw Error(name + ": empty image data");
  if (size > static_cast<std::size_t>(INT_MAX))
    throw Error(name + ": " + std::to_string(size) + " bytes is more than the decoder accepts (2 GiB)");
  const auto* bytes = static_cast<const std::uint8_t*>(data);
  const int length = static_cast<int>(size);

  // stb decodes a JPEG cut short as if the rest were gray; Pillow refuses it as truncated.
  // (jpeg_soi_end skips 0xFF fill bytes before the start marker, as stb does.)
  const bool jpeg = detail::jpeg_soi_end(bytes, size) != 0;
  if (jpeg && !detail::has_jpeg_end_marker(bytes, size))
    throw Error(name + ": truncated JPEG (no end-of-image marker)");
  // stb builds Huffman tables while reading the header, so this guard comes first; libjpeg
  // would refuse such a table too, and checking here gives one message with either decoder.
  if (jpeg && !detail::jpeg_huffman_tables_valid(bytes, size))
    throw Error(name + ": corrupt JPEG (a Huffman table has more than 256 codes)");
#ifdef CLIP_HAVE_LIBJPEG
  if (jpeg) {
    detail::JpegPixels decoded = detail::decode_jpeg_turbo(bytes, size, name, options.max_pixels);
    if (decoded.decoded) {
      Image image;
      image.width = decoded.width;
      image.height = decoded.height;
      image.mode = decoded.gray ? PixelMode::Gray : PixelMode::RGB;
      image.pixels = std::move(decoded.pixels);
      return image;
    }
  }
#endif

  // stbi_info refuses a PNG over 2^30 bytes of pixels as "unknown image type"; name the real
  // reason (the decompression-bomb limit) from the IHDR chunk before it looks.
  if (detail::starts_with(bytes, size, "\x89PNG\r\n\x1a\n") && size >= 24 && std::memcmp(bytes + 12, "IHDR", 4) == 0) {
    const std::uint64_t png_width = detail::read_u32_be(bytes + 16), png_height = detail::read_u32_be(bytes + 20);
    if (png_width * png_height > options.max_pixels)
      throw Error(name + ": " + std::to_string(png_width) + "x" + std::to_string(png_height) + " = " +
                  std::to_string(png_width * png_height) + " pixels exceeds the limit of " +
                  std::to_string(options.max_pixels) + " (DecodeOptions::max_pixels)");
  }

  // Guards in front of stb_image 2.27's known bugs (docs/reliability.md), before stb sees the file.

  if (detail::starts_with(bytes, size, "\x89PNG\r\n\x1a\n")) {
    if (const std::size_t chunk = detail::png_chunk_past_end(bytes, size))
      throw Error(name + ": truncated PNG (the chunk at byte " + std::to_string(chunk) + " claims " +
                  std::to_string(detail::read_u32_be(bytes + chunk)) + " bytes, past the end of the file)");
  }

  if (!detail::pnm_header_numbers_fit(bytes, size))
    throw Error(name + ": PNM header has a number above " + std::to_string(INT_MAX / 10));

  int width = 0, height = 0, channels = 0;
  if (!stbi_info_from_memory(bytes, length, &width, &height, &channels))
    throw Error(name + ": not a readable image (" + detail::stb_reason() + ")");
  if (width <= 0 || height <= 0)
    throw Error(name + ": image has zero size (" + std::to_string(width) + "x" + std::to_string(height) + ")");
  const std::uint64_t pixel_count = static_cast<std::uint64_t>(width) * static_cast<std::uint64_t>(height);
  if (pixel_count > options.max_pixels)
    throw Error(name + ": " + std::to_string(width) + "x" + std::to_string(height) + " = " +
                std::to_string(pixel_count) + " pixels exceeds the limit of " +
                std::to_string(options.max_pixels) + " (DecodeOptions::max_pixels)");

  if (!detail::uncompressed_pixel_data_complete(bytes, size))
    throw Error(name + ": truncated BMP (pixel data shorter than the header says)");

  const detail::PnmHeader pnm = detail::parse_pnm_header(bytes, size);
  if (pnm.valid && !detail::pnm_pixel_data_complete(pnm, size))
    throw Error(name + ": truncated PNM (pixel data shorter than the header says)");

  const bool stb_16bit = stbi_is_16_bit_from_memory(bytes, length) != 0;
  const detail::DecodePlan plan = detail::plan_decode(bytes, size, channels, stb_16bit);
  if (plan.is_tga && !detail::tga_pixel_data_complete(bytes, size))
    throw Error(name + ": truncated TGA (pixel data shorter than the header says)");

  Image image;
  image.mode = plan.mode;
  int decoded_width = 0, decoded_height = 0, file_channels = 0;
  if (plan.sixteen_bit && pnm.valid && pnm.channels == 1 && pnm.width == static_cast<std::uint64_t>(width) &&
      pnm.height == static_cast<std::uint64_t>(height)) {
    // 16-bit PGM: big-endian samples (Pillow's "I;16B"), read here; see parse_pnm_header.
    image.pixels16.resize(pixel_count);
    const std::uint8_t* samples = bytes + pnm.data_offset;
    for (std::uint64_t i = 0; i < pixel_count; ++i)
      image.pixels16[i] = static_cast<std::uint16_t>((samples[2 * i] << 8) | samples[2 * i + 1]);
  } else if (plan.sixteen_bit) {
    std::unique_ptr<stbi_us, void (*)(void*)> samples(
        stbi_load_16_from_memory(bytes, length, &decoded_width, &decoded_height, &file_channels, 1), stbi_image_free);
    if (!samples) throw Error(name + ": cannot decode image (" + detail::stb_reason() + ")");
    if (decoded_width != width || decoded_height != height)
      throw Error(name + ": decoded size differs from the header's");
    image.pixels16.assign(samples.get(), samples.get() + pixel_count);
  } else {
    const int wanted = channel_count(plan.mode);
    std::unique_ptr<stbi_uc, void (*)(void*)> samples(
        stbi_load_from_memory(bytes, length, &decoded_width, &decoded_height, &file_channels, wanted),
        stbi_image_free);
    if (!samples) throw Error(name + ": cannot decode image (" + detail::stb_reason() + ")");
    if (decoded_width != width || decoded_height != height)
      throw Error(name + ": decoded size differs from the header's");
    image.pixels.assign(samples.get(), samples.get() + pixel_count * static_cast<std::uint64_t>(wanted));
  }
  image.width = width;
  image.height = height;
  return image;
}

CLIP_INLINE Image decode_image_file(const std::string& path, const DecodeOptions& options) {
  const std::string contents = detail::read_file(path, options.max_file_bytes, "image file");
  if (contents.empty()) throw Error(path + ": image file is empty");
  return decode_image_memory(contents.data(), contents.size(), path, options);
}

CLIP_INLINE Image image_from_rgb8(const std::uint8_t* rgb, int width, int height, std::size_t stride_bytes) {
  if (rgb == nullptr) throw Error("image_from_rgb8: pixel pointer is null");
  if (width <= 0 || height <= 0)
    throw Error("image_from_rgb8: image has zero or negative size (" + std::to_string(width) + "x" +
                std::to_string(height) + ")");
  const std::size_t row_bytes = static_cast<std::size_t>(width) * 3;
  if (stride_bytes < row_bytes)
    throw Error("image_from_rgb8: stride of " + std::to_string(stride_bytes) + " bytes is less than a row of " +
                std::to_string(row_bytes) + " bytes");
  Image image;
  image.width = width;
  image.height = height;
  image.mode = PixelMode::RGB;
  image.pixels.resize(row_bytes * static_cast<std::size_t>(height));
  for (int y = 0; y < height; ++y)
    std::memcpy(&image.pixels[y * row_bytes], rgb + static_cast<std::size_t>(y) * stride_bytes, row_bytes);
  return image;
}

}  // namespace clip

#endif  // CLIP_HEADER_DEFINITIONS
