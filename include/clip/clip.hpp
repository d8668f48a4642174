#pragma once
// clip: CLIP image and text embeddings on the CPU with Eigen. The one header a host app includes.
//
// Image loading uses stb_image. In exactly one .cpp of your program write
//     #define CLIP_STB_IMAGE_IMPLEMENTATION
//     #include <clip/clip.hpp>
// unless the program already compiles stb_image's implementation itself.

// Common types, errors, configuration and threads.
#include <clip/config.hpp>
#include <clip/error.hpp>
#include <clip/threading.hpp>
#include <clip/types.hpp>
#include <clip/version.hpp>

// The stages of the data flow, in order (see docs/ and the folder of each).
#include <clip/formats/model_file.hpp>
#include <clip/formats/tensor_file.hpp>
#include <clip/formats/tensor_writer.hpp>
#include <clip/text/fix_text.hpp>
#include <clip/text/tokenizer.hpp>
#include <clip/image/decode.hpp>
#include <clip/image/preprocess.hpp>
#include <clip/model/model.hpp>
#include <clip/analysis/similarity.hpp>
#include <clip/analysis/zero_shot.hpp>
