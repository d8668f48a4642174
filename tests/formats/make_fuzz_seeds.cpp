// Writes the seed corpora of tests/fuzz/fuzz_{pickle,zip,gguf}.cpp with the test builders:
//   g++ -std=c++17 -Iinclude -Itests tests/formats/make_fuzz_seeds.cpp -o make_fuzz_seeds
//   ./make_fuzz_seeds tests/fuzz/corpus
// Small files shaped like what torch.save, torch.jit.save and clip.cpp's converter write.

#include "builders.hpp"

#include <filesystem>
#include <fstream>

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const fs::path root = argc > 1 ? argv[1] : "corpus";
  auto write = [&](const std::string& folder, const std::string& name, const std::string& bytes) {
    fs::create_directories(root / folder);
    std::ofstream(root / folder / name, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };
  using clip_test::Pickle;
  const std::string state_dict = clip_test::state_dict_pickle({{"visual.proj", "0", {2, 3}, {1, 2}, 6}, {"logit_scale", "1", {}, {}, 1}});
  write("pickle", "state_dict.pkl", state_dict);
  write("pickle", "half.pkl", clip_test::state_dict_pickle({{"w", "0", {4}, {}, 4}}, "HalfStorage"));
  Pickle module;
  module.proto(2).global("__torch__.model", "CLIP").empty_tuple().op('\x81').op('}').mark();
  module.str("visual").global("__torch__.model", "Visual").empty_tuple().op('\x81').op('}').mark();
  module.str("proj").tensor("FloatStorage", "0", 4, 0, {2, 2}, {2, 1}).str("training").op('\x89').op('u').op('b');
  module.op('u').op('b').stop();
  write("pickle", "module.pkl", module.bytes);
  Pickle wrapped;
  wrapped.proto(2).op('}').mark().str("epoch").integer(3).str("state_dict").op('}').mark();
  wrapped.str("module.w").tensor("FloatStorage", "0", 4, 0, {2, 2}, {2, 1}).op('u').op('u').stop();
  write("pickle", "wrapped.pkl", wrapped.bytes);
  write("pickle", "protocol0.pkl", "(dp0\nS'a'\np1\n(lp2\nI1\naF2.5\naL3L\nas.");

  const std::string six = clip_test::float_bytes({0, 1, 2, 3, 4, 5});
  write("zip", "state_dict.pt", clip_test::make_torch_zip(state_dict, {{"0", six}, {"1", clip_test::float_bytes({4.6f})}}));
  write("zip", "zip64.pt", clip_test::make_torch_zip(state_dict, {{"0", six}, {"1", clip_test::float_bytes({4.6f})}}, true));
  write("zip", "module.pt", clip_test::make_torch_zip(module.bytes, {{"0", clip_test::float_bytes({1, 2, 3, 4})}}));
  write("zip", "legacy.pt", clip_test::make_legacy(state_dict, {{"0", six}, {"1", clip_test::float_bytes({4.6f})}}));

  std::string u32(4, '\0');
  u32[0] = 2;
  std::string tokens("\x08\x00\x00\x00", 4);
  clip_test::put_le(tokens, 2, 8);
  tokens += clip_test::gguf_string("a") + clip_test::gguf_string("b</w>");
  std::string q8("\x00\x38", 2), q4("\x00\x40", 2);
  for (int j = 0; j < 32; ++j) q8.push_back(static_cast<char>(j - 16));
  for (int j = 0; j < 16; ++j) q4.push_back(static_cast<char>(j | ((15 - j) << 4)));
  write("gguf", "clip.gguf",
        clip_test::make_gguf({{"general.architecture", {8, clip_test::gguf_string("clip")}},
                              {"clip.vision.attention.head_count", {4, u32}},
                              {"tokenizer.ggml.tokens", {9, tokens}}},
                             {{"v.class_embd", {4}, 0, clip_test::float_bytes({1, 2, 3, 4})},
                              {"v.patch_embd.weight", {2, 2}, 1, std::string("\x00\x3c\x00\xc0\x00\x3c\x00\x00", 8)},
                              {"t.q8", {32}, 8, q8},
                              {"t.q4", {32}, 2, q4}}));
  return 0;
}
