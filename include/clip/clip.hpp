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
#include <clip/isa.hpp>
#include <clip/threading.hpp>
#include <clip/types.hpp>
#include <clip/version.hpp>

// The stages of the data flow, in order (see docs/ and the folder of each).
#include <clip/formats/model_file.hpp>
#include <clip/formats/tensor_file.hpp>
#include <clip/formats/tensor_writer.hpp>
#include <clip/formats/npy.hpp>
#include <clip/formats/tar.hpp>
#include <clip/text/fix_text.hpp>
#include <clip/text/tokenizer.hpp>
#include <clip/image/decode.hpp>
#include <clip/image/preprocess.hpp>
#include <clip/model/model.hpp>
#include <clip/analysis/similarity.hpp>
#include <clip/pipeline/embedding_pipeline.hpp>
#include <clip/pipeline/inputs.hpp>
#include <clip/pipeline/sharded_output.hpp>
#include <clip/analysis/zero_shot.hpp>
#include <clip/analysis/geometry.hpp>
#include <clip/analysis/search.hpp>
#include <clip/analysis/collection.hpp>
// clip/analysis/approximate_search.hpp (hnswlib) is left out: hnswlib's header defines global
// variables, so a program includes it in one of its files only.
