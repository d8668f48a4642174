#pragma once
// The two ways to build clip, as fmt and stb offer them:
//
// - Header-only (the default): each translation unit compiles the parts of clip it uses.
// - Separate compilation: define CLIP_SEPARATE_COMPILATION in every translation unit (linking
//   the CMake target clip::clip_compiled does it for you). The code is then compiled once, in
//   the one translation unit that also defines CLIP_IMPLEMENTATION (clip_compiled's own
//   source), and the other translation units see declarations: the public headers then include
//   neither nlohmann/json (only <nlohmann/json_fwd.hpp>), stb_image, libjpeg, zlib, the Unicode
//   tables of fix_text nor the encoders' transformer code (model/detail/transformer.hpp with
//   Eigen's SpecialFunctions), and a file that calls the API compiles in seconds.
//
// CLIP_INSTANTIATE(declaration) stands after a template's definition: an explicit
// instantiation declaration (extern template) in the users' translation units, the explicit
// instantiation definition in the implementation unit, nothing in header-only builds. The heavy
// templates compiled this way (the model, weights and encoders, geometry and embed_shard, each
// for float and double) are defined inside `#if CLIP_HEADER_DEFINITIONS` (class members outside
// the class body), so the users' units never parse them; preprocessing and similarity are
// light and stay visible, instantiated only in the implementation unit.
#if defined(CLIP_SEPARATE_COMPILATION) && defined(CLIP_IMPLEMENTATION)
#define CLIP_INSTANTIATE(...) template __VA_ARGS__;
#elif defined(CLIP_SEPARATE_COMPILATION)
#define CLIP_INSTANTIATE(...) extern template __VA_ARGS__;
#else
#define CLIP_INSTANTIATE(...)
#endif

// Non-template functions compiled once with separate compilation are defined inside
// `#if CLIP_HEADER_DEFINITIONS` and marked CLIP_INLINE: inline in header-only builds, ordinary
// external definitions in the implementation unit, and only declared everywhere else.
#if !defined(CLIP_SEPARATE_COMPILATION)
#define CLIP_HEADER_DEFINITIONS 1
#define CLIP_INLINE inline
#elif defined(CLIP_IMPLEMENTATION)
#define CLIP_HEADER_DEFINITIONS 1
#define CLIP_INLINE
#else
#define CLIP_HEADER_DEFINITIONS 0
#define CLIP_INLINE
#endif
