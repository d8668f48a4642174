#pragma once
// JPEG decoding through libjpeg-turbo, the decoder Pillow itself is built on, so the pixels are
// Pillow's to the last bit (stb_image's own decoder is up to a level off). Pillow's JpegDecode
// keeps libjpeg's decompression defaults, and so does this: the accurate integer IDCT
// (JDCT_ISLOW), fancy (triangular) chroma upsampling, block smoothing for progressive files,
// output colour space RGB for YCbCr/RGB files and gray for gray files.
//
// Available when the build found libjpeg (CMake's find_package(JPEG), which defines
// CLIP_HAVE_LIBJPEG on clip::clip and links it); decode.hpp then dispatches JPEG here.
// CMYK/YCCK files are left to stb (Pillow would resize them in CMYK; see docs/images.md).

#include <clip/error.hpp>

#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <cstdio>  // jpeglib.h needs FILE and size_t declared first
#include <string>
#include <vector>

#include <jpeglib.h>
#include <jerror.h>  // JWRN_JPEG_EOF

namespace clip {
namespace detail {

/// libjpeg reports fatal errors through error_exit, which must not return. Throwing a C++
/// exception through libjpeg's C frames is not allowed, so jump back to the setjmp in
/// decode_jpeg_memory and throw from there, with libjpeg's message kept here.
struct JpegErrorManager {
  jpeg_error_mgr base;  // first member: libjpeg sees a jpeg_error_mgr*
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated;
};

extern "C" inline void clip_jpeg_error_exit(j_common_ptr info) {
  auto* manager = reinterpret_cast<JpegErrorManager*>(info->err);
  (*info->err->format_message)(info, manager->message);
  std::longjmp(manager->jump, 1);
}

/// Warnings (level -1) are not printed. A premature end of data is a warning to libjpeg, which
/// then decodes the rest as gray; Pillow refuses such a file as truncated, so remember it.
extern "C" inline void clip_jpeg_emit_message(j_common_ptr info, int level) {
  auto* manager = reinterpret_cast<JpegErrorManager*>(info->err);
  if (level < 0 && info->err->msg_code == JWRN_JPEG_EOF) manager->truncated = true;
}

/// Whether libjpeg-turbo decodes this file here (the caller falls back to stb otherwise).
inline bool jpeg_decodes_to_pillow_mode(J_COLOR_SPACE space) {
  return space == JCS_GRAYSCALE || space == JCS_YCbCr || space == JCS_RGB;
}

/// The state decode_jpeg_memory keeps across libjpeg's longjmp: nothing with a destructor
/// lives in the frames the jump leaves (only libjpeg's C frames).
struct JpegDecodeState {
  jpeg_decompress_struct info;
  JpegErrorManager error;
  bool created = false;
  ~JpegDecodeState() {
    if (created) jpeg_destroy_decompress(&info);
  }
};

/// What decode_jpeg_turbo gives: interleaved gray or RGB rows, top to bottom.
struct JpegPixels {
  bool decoded = false;  // false: a colour space left to stb (CMYK, YCCK)
  bool gray = false;
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;
};

/// Decodes `bytes`, or returns decoded == false for colour spaces left to stb. Throws
/// clip::Error naming `name` for corrupt or truncated files and for more than `max_pixels`.
inline JpegPixels decode_jpeg_turbo(const std::uint8_t* bytes, std::size_t size, const std::string& name,
                                    std::uint64_t max_pixels) {
  JpegPixels image;
  JpegDecodeState state;
  state.info.err = jpeg_std_error(&state.error.base);
  state.error.base.error_exit = clip_jpeg_error_exit;
  state.error.base.emit_message = clip_jpeg_emit_message;
  state.error.message[0] = '\0';
  state.error.truncated = false;
  // Only objects that already exist are touched after a jump, and none of them is held in a
  // register across it (all are members of `state` or `image`, reached through references).
  if (setjmp(state.error.jump)) throw Error(name + ": corrupt JPEG (" + std::string(state.error.message) + ")");

  jpeg_create_decompress(&state.info);
  state.created = true;
  jpeg_mem_src(&state.info, bytes, static_cast<unsigned long>(size));
  jpeg_read_header(&state.info, TRUE);
  if (!jpeg_decodes_to_pillow_mode(state.info.jpeg_color_space)) return image;

  const std::uint64_t width = state.info.image_width, height = state.info.image_height;
  if (width == 0 || height == 0)
    throw Error(name + ": image has zero size (" + std::to_string(width) + "x" + std::to_string(height) + ")");
  // The decompression-bomb limit before libjpeg allocates anything of the image's size
  // (progressive files buffer every coefficient of the image).
  if (width * height > max_pixels)
    throw Error(name + ": " + std::to_string(width) + "x" + std::to_string(height) + " = " +
                std::to_string(width * height) + " pixels exceeds the limit of " +
                std::to_string(max_pixels) + " (DecodeOptions::max_pixels)");

  const bool gray = state.info.jpeg_color_space == JCS_GRAYSCALE;
  state.info.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
  // libjpeg's defaults, as Pillow leaves them; spelled out because they decide the pixels.
  state.info.dct_method = JDCT_ISLOW;
  state.info.do_fancy_upsampling = TRUE;
  state.info.do_block_smoothing = TRUE;
  jpeg_start_decompress(&state.info);
  const int channels = gray ? 1 : 3;
  if (state.info.output_components != channels || state.info.output_width != width ||
      state.info.output_height != height)
    throw Error(name + ": libjpeg output differs from the header's size or channels");

  image.width = static_cast<int>(width);
  image.height = static_cast<int>(height);
  image.gray = gray;
  image.pixels.resize(width * height * channels);
  const std::size_t row_bytes = static_cast<std::size_t>(width) * channels;
  while (state.info.output_scanline < state.info.output_height) {
    JSAMPROW row = image.pixels.data() + static_cast<std::size_t>(state.info.output_scanline) * row_bytes;
    if (jpeg_read_scanlines(&state.info, &row, 1) != 1 || state.error.truncated) break;
  }
  if (state.error.truncated || state.info.output_scanline < state.info.output_height)
    throw Error(name + ": truncated JPEG (data ends before the last scanline)");
  jpeg_finish_decompress(&state.info);
  if (state.error.truncated) throw Error(name + ": truncated JPEG (data ends before the end-of-image marker)");
  image.decoded = true;
  return image;
}

}  // namespace detail
}  // namespace clip
