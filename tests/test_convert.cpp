// The converter: both checkpoint layouts of the reference model give the same model file; F16 and
// BF16 conversions round each weight exactly once; inputs are never overwritten.

#include "test_support.hpp"

#include <clip/convert/convert.hpp>

#include <gtest/gtest.h>

namespace {

clip::ConvertOptions openai_options(const std::string& reference) {
  clip::ConvertOptions options;
  options.vocab_path = reference + "/tokenizer/bpe_simple_vocab_16e6.txt.gz";
  options.text_heads = 2;  // tiny-a's text tower has 2 heads of 32; build_model's width/64 rule says 1
  return options;
}

TEST(Convert, BothReferenceLayoutsGiveTheSameModel) {
  CLIP_REFERENCE_OR_SKIP(tiny, "tiny-a/openai.safetensors");
  const std::string reference = clip_test::reference_dir();
  const auto dir = clip_test::scratch_dir("convert-layouts");
  const std::string from_openai = (dir / "openai.safetensors").string();
  const std::string from_hf = (dir / "hf.safetensors").string();
  clip::convert_checkpoint(tiny, openai_options(reference)).write(from_openai);
  clip::convert_checkpoint(reference + "/tiny-a/hf").write(from_hf);

  const clip::ModelFile a(from_openai), b(from_hf);
  EXPECT_EQ(clip::to_json(a.config()), clip::to_json(b.config()));
  EXPECT_EQ(a.config().vision.heads, 2);
  EXPECT_EQ(a.config().text.heads, 2);
  EXPECT_EQ(a.config().vision.image_size, 64);
  EXPECT_TRUE(a.merges_text() == b.merges_text()) << "the stored BPE merges differ";
  const auto specs = clip::canonical_tensors(a.config());
  for (const clip::TensorSpec& spec : specs) {
    const clip::TensorInfo& x = a.tensors().info(spec.name);
    const clip::TensorInfo& y = b.tensors().info(spec.name);
    ASSERT_EQ(x.nbytes, y.nbytes) << spec.name;
    EXPECT_EQ(std::memcmp(a.tensors().bytes(x), b.tensors().bytes(y), x.nbytes), 0)
        << spec.name << " differs between the layouts (F32 must be bit-identical)";
  }
  std::cout << "[ converted ] " << specs.size() << " tensors bit-identical between the OpenAI and HF layouts\n";
}

TEST(Convert, HalfPrecisionConversionsRoundEachWeightOnce) {
  CLIP_REFERENCE_OR_SKIP(tiny, "tiny-a/openai.safetensors");
  const auto dir = clip_test::scratch_dir("convert-dtypes");
  clip::ConvertOptions options = openai_options(clip_test::reference_dir());
  clip::convert_checkpoint(tiny, options).write((dir / "f32.safetensors").string());
  options.dtype = clip::DType::F16;
  clip::convert_checkpoint(tiny, options).write((dir / "f16.safetensors").string());
  options.dtype = clip::DType::BF16;
  clip::convert_checkpoint(tiny, options).write((dir / "bf16.safetensors").string());

  const clip::ModelFile f32((dir / "f32.safetensors").string());
  const clip::ModelFile f16((dir / "f16.safetensors").string());
  const clip::ModelFile bf16((dir / "bf16.safetensors").string());
  for (const clip::TensorSpec& spec : clip::canonical_tensors(f32.config())) {
    const auto exact = f32.tensors().read<float>(spec.name);
    const auto half = f16.tensors().read<float>(spec.name);
    const auto brain = bf16.tensors().read<float>(spec.name);
    EXPECT_EQ(f16.tensors().info(spec.name).dtype, clip::DType::F16);
    for (std::size_t i = 0; i < exact.size(); ++i) {
      ASSERT_EQ(half[i], clip::detail::half_to_float(clip::detail::float_to_half(exact[i]))) << spec.name << "[" << i << "]";
      ASSERT_EQ(brain[i], clip::detail::bfloat16_to_float(clip::detail::float_to_bfloat16(exact[i]))) << spec.name;
    }
  }
}

TEST(Convert, ExplainsWhatIsMissingAndRefusesToOverwriteInputs) {
  CLIP_REFERENCE_OR_SKIP(tiny, "tiny-a/openai.safetensors");
  try {
    clip::convert_checkpoint(tiny);  // no --vocab
    FAIL() << "a state dict without a vocabulary must be refused";
  } catch (const clip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--vocab"), std::string::npos) << e.what();
  }
  EXPECT_THROW(clip::convert_checkpoint("/nonexistent/model"), clip::Error);
  const clip::ConvertOptions options = openai_options(clip_test::reference_dir());
  EXPECT_THROW(clip::check_output_path(tiny, tiny, options), clip::Error);
  const std::string hf = clip_test::reference_dir() + "/tiny-a/hf";
  EXPECT_THROW(clip::check_output_path(hf + "/model.safetensors", hf, {}), clip::Error);
  EXPECT_NO_THROW(clip::check_output_path((clip_test::scratch_dir("out") / "new.safetensors").string(), hf, {}));

  // A checkpoint that is not CLIP at all.
  clip::TensorWriter other;
  const float one = 1;
  other.add("weight", clip::DType::F32, {1}, &one);
  const auto path = clip_test::scratch_dir("not-clip") / "other.safetensors";
  other.write(path.string());
  try {
    clip::convert_checkpoint(path.string(), options);
    FAIL();
  } catch (const clip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("not an OpenAI/open_clip ViT state dict"), std::string::npos) << e.what();
  }
}

TEST(Convert, RandomModelsHaveThePublishedShapes) {
  clip::ModelConfig config = clip::named_config("ViT-B-32");
  EXPECT_EQ(config.vision.heads, 12);
  EXPECT_EQ(config.text.heads, 8);
  EXPECT_THROW(clip::named_config("RN50"), clip::Error);
  config.vision = {32, 16, 64, 1, 1, 256};  // shrink so the test stays fast
  config.text = {600, 8, 64, 1, 1, 256};
  config.embed_dim = 32;
  const auto path = clip_test::scratch_dir("random") / "random.safetensors";
  clip::random_model(config, "", clip::DType::F16).write(path.string());
  const clip::ModelFile model(path.string());
  EXPECT_EQ(clip::to_json(model.config()), clip::to_json(config));
}

}  // namespace
