// clip-convert: turns a downloaded CLIP checkpoint into one clip model file, makes random models
// for benchmarks, and inspects model files.

#include "common/options.hpp"

#include <clip/convert/convert.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>

namespace {

/// "0.48,0.45,0.40" -> three floats, or clip::Error naming the flag.
std::array<float, 3> parse_triple(const std::string& flag, const std::string& text) {
  std::array<float, 3> values{};
  std::istringstream stream(text);
  char comma1 = 0, comma2 = 0;
  if (!(stream >> values[0] >> comma1 >> values[1] >> comma2 >> values[2]) || comma1 != ',' || comma2 != ',' ||
      !stream.eof())
    throw clip::Error(flag + " needs three comma-separated numbers, not '" + text + "'");
  return values;
}

/// Prints what a tensor file holds; returns 1 when it is not a usable clip model file.
int inspect(const std::string& path) {
  const clip::TensorFile file(path);
  std::optional<clip::ModelFile> model;
  std::string problem;
  try {
    model.emplace(path);
  } catch (const clip::Error& e) {
    problem = e.what();
  }
  if (model) {
    std::cout << "config: " << clip::to_json(model->config()).dump(2) << "\n";
    const clip::Tokenizer tokenizer = clip::Tokenizer::from_merges(model->merges_text());
    std::cout << "tokenizer: " << tokenizer.vocab_size() << " tokens (" << tokenizer.vocab_size() - 514
              << " merges), sot " << tokenizer.sot_id() << ", eot " << tokenizer.eot_id() << "\n";
  }
  std::cout << "tensors:\n";
  std::size_t total = 0;
  for (const clip::TensorInfo& tensor : file.tensors()) {
    std::printf("  %-48s %-5s %-22s %12zu\n", tensor.name.c_str(), clip::dtype_name(tensor.dtype),
                clip::shape_string(tensor.shape).c_str(), tensor.nbytes);
    total += tensor.nbytes;
  }
  std::printf("%zu tensors, %zu bytes\n", file.tensors().size(), total);
  if (!model) {
    std::cout << "not a usable clip model file: " << problem << "\n";
    return clip::cli::kExitSomeInputsFailed;
  }
  return clip::cli::kExitOk;
}

int run(int argc, char** argv) {
  clip::cli::Command command(
      "clip-convert",
      "Turns a downloaded CLIP checkpoint into one clip model file, writes random models for benchmarks, and "
      "inspects model files.\n\n"
      "  clip-convert SOURCE -o OUT.safetensors [options]   convert a checkpoint\n"
      "  clip-convert --random NAME -o OUT.safetensors      a random model: ViT-B-32, ViT-B-16, ViT-L-14, ViT-L-14-336\n"
      "  clip-convert --inspect FILE                        what a file holds (exit 1: not a usable model)\n\n"
      "SOURCE is a Hugging Face CLIPModel folder, or an OpenAI/open_clip state dict saved as .safetensors (needs "
      "--vocab: bpe_simple_vocab_16e6.txt.gz, a merges text, or a vocab.json with merges.txt beside it). State dicts "
      "do not record attention heads: they are inferred as width / 64, as OpenAI's build_model does; pass "
      "--vision-heads / --text-heads for models built otherwise.");
  CLI::App& app = command.app();
  std::string source, output, random_name, inspect_path, dtype = "f32", activation, image_mean, image_std;
  unsigned seed = 0;
  clip::ConvertOptions options;
  CLI::Option* source_option = app.add_option("source", source, "checkpoint to convert")->type_name("SOURCE");
  CLI::Option* output_option = app.add_option("-o,--output", output, "model file to write")->type_name("OUT");
  CLI::Option* random_option = app.add_option("--random", random_name, "write a model with random weights")
                                   ->check(CLI::IsMember({"ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-L-14-336"}))
                                   ->type_name("NAME");
  CLI::Option* inspect_option = app.add_option("--inspect", inspect_path, "print what FILE holds")->type_name("FILE");
  app.add_option("--dtype", dtype, "tensor type of the written file")->check(CLI::IsMember({"f32", "f16", "bf16"}));
  app.add_option("--vocab", options.vocab_path, "BPE vocabulary for checkpoints that carry none")->type_name("FILE");
  app.add_option("--act", activation, "activation: quick_gelu (OpenAI) or gelu (LAION models trained with exact GELU)")
      ->check(CLI::IsMember({"quick_gelu", "gelu"}));
  app.add_option("--vision-heads", options.vision_heads, "attention heads of the image tower (default width / 64)")
      ->check(CLI::PositiveNumber.description(""))
      ->type_name("N");
  app.add_option("--text-heads", options.text_heads, "attention heads of the text tower (default width / 64)")
      ->check(CLI::PositiveNumber.description(""))
      ->type_name("N");
  app.add_option("--image-mean", image_mean, "preprocessing mean, overriding the checkpoint's")->type_name("R,G,B");
  app.add_option("--image-std", image_std, "preprocessing std, overriding the checkpoint's")->type_name("R,G,B");
  app.add_option("--seed", seed, "random seed for --random")->type_name("N");
  source_option->excludes(random_option)->excludes(inspect_option);
  random_option->excludes(inspect_option);
  inspect_option->excludes(output_option);
  if (const int status = command.parse(argc, argv); status >= 0) return status;

  if (!inspect_path.empty()) return inspect(inspect_path);
  if (source.empty() && random_name.empty())
    throw clip::Error("nothing to do: give a SOURCE to convert, --random NAME or --inspect FILE");
  if (output.empty()) throw clip::Error("--output (-o) is required: the model file to write");
  options.dtype = dtype == "f16" ? clip::DType::F16 : dtype == "bf16" ? clip::DType::BF16 : clip::DType::F32;
  if (!activation.empty()) options.activation = clip::parse_activation(activation);
  if (!image_mean.empty()) options.image_mean = parse_triple("--image-mean", image_mean);
  if (!image_std.empty()) options.image_std = parse_triple("--image-std", image_std);

  if (!random_name.empty()) {
    const std::string merges = options.vocab_path.empty() ? "" : clip::detail::load_tokenizer(options.vocab_path).merges_text();
    if (merges.empty()) std::cerr << "note: no --vocab, the random model's tokenizer has byte tokens only\n";
    clip::random_model(clip::named_config(random_name), merges, options.dtype, seed).write(output);
  } else {
    clip::check_output_path(output, source, options);
    clip::convert_checkpoint(source, options).write(output);
  }
  const clip::ModelFile written(output);  // re-read: what we wrote must pass the reader's checks
  std::cerr << "wrote " << output << "\n";
  return clip::cli::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  return clip::cli::run_main("clip-convert", [&] { return run(argc, argv); });
}
