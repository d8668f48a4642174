// A host application built against the installed package. classify() is README.md's API example,
// so the example cannot stop compiling unnoticed; main() also round-trips a tensor file.
#define CLIP_STB_IMAGE_IMPLEMENTATION
#include <clip/clip.hpp>

#include <cstdio>
#include <vector>

// --- README example ---------------------------------------------------------------------------
void classify(const char* model_path, const char* image_path) {
  clip::Model<float> model(model_path);
  clip::RowMatrix<float> pixels =
      clip::preprocess_images({clip::decode_image_file(image_path)}, clip::preprocess_options(model.config()));
  clip::RowMatrix<float> image = model.encode_images(pixels);  // [1, embed_dim]
  clip::RowMatrix<float> texts = model.encode_texts(model.tokenizer().tokenize({"a photo of a cat", "a photo of a dog"}));
  clip::RowMatrix<float> probs = clip::softmax_rows(clip::logits(image, texts, model.logit_scale()).per_image);
  std::printf("cat %.3f  dog %.3f\n", probs(0, 0), probs(0, 1));
}
// -----------------------------------------------------------------------------------------------

int main(int argc, char** argv) {
  if (argc == 3) {
    classify(argv[1], argv[2]);
    return 0;
  }
  if (argc != 2) return 2;
  const std::vector<float> values = {1.0f, 2.0f};
  clip::TensorWriter writer;
  writer.add("x", clip::DType::F32, {2}, values.data());
  writer.write(argv[1]);
  const clip::TensorFile file(argv[1]);
  const bool ok = file.read<float>("x") == values;
  std::printf("consumer: %s\n", ok ? "ok" : "mismatch");
  return ok ? 0 : 1;
}
