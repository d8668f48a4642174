#pragma once
// clip: CLIP image and text embeddings on the CPU with Eigen. The one header a host app includes.
//
// Image loading uses stb_image. In exactly one .cpp of your program write
//     #define CLIP_STB_IMAGE_IMPLEMENTATION
//     #include <clip/clip.hpp>
// unless the program already compiles stb_image's implementation itself.

#include <clip/config.hpp>
#include <clip/error.hpp>
#include <clip/image.hpp>
#include <clip/model.hpp>
#include <clip/model_file.hpp>
#include <clip/preprocess.hpp>
#include <clip/similarity.hpp>
#include <clip/tensor_file.hpp>
#include <clip/tensor_writer.hpp>
#include <clip/threading.hpp>
#include <clip/tokenizer.hpp>
#include <clip/types.hpp>
#include <clip/zero_shot.hpp>
