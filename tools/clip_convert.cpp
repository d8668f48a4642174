// clip-convert: turns a downloaded CLIP checkpoint of any kind into one clip model file, makes
// random models for benchmarks, and inspects checkpoints and model files. The library detects
// the input's kind and does the work; this file parses the command line and prints.

#include "common/options.hpp"
#include "default_vocab.hpp"

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

/// Prints what SOURCE holds: its kind, the config it implies, each tensor and whether the model
/// uses it (as a table, or JSON); returns 1 when it would not convert.
int inspect(const std::string& source, const clip::ConvertOptions& options, bool json) {
  const clip::ConversionReport report = clip::inspect_checkpoint(source, options);
  if (!report.error.empty()) std::cerr << "clip-convert: cannot convert: " << report.error << "\n";
  if (json) {
    std::cout << report.to_json().dump(2) << "\n";
    return report.error.empty() ? clip::cli::kExitOk : clip::cli::kExitSomeInputsFailed;
  }
  std::cout << "source:     " << report.source << "\n"
            << "input:      " << report.input << "\n"
            << "layout:     " << report.layout << "\n";
  for (const std::string& file : report.files) std::cout << "file:       " << file << "\n";
  if (!report.tokenizer.empty()) std::cout << "vocabulary: " << report.tokenizer << "\n";
  for (const std::string& note : report.notes) std::cout << "note:       " << note << "\n";
  if (report.config) std::cout << "config: " << clip::to_json(*report.config).dump(2) << "\n";
  if (report.layout == "clip canonical names") {
    const clip::Tokenizer tokenizer = clip::Tokenizer::from_merges(clip::ModelFile(source).merges_text());
    std::cout << "tokenizer: " << tokenizer.vocab_size() << " tokens (" << tokenizer.vocab_size() - 514
              << " merges), sot " << tokenizer.sot_id() << ", eot " << tokenizer.eot_id() << "\n";
  }
  std::cout << "tensors:\n";
  for (const clip::ConversionReport::Tensor& tensor : report.tensors)
    std::printf("  %-56s %-7s %-22s %s\n", tensor.name.c_str(), tensor.dtype.c_str(),
                clip::shape_string(tensor.shape).c_str(), tensor.used ? "" : "unused");
  std::printf("%zu tensors, %zu unused by the model\n", report.tensors.size(), report.unused().size());
  if (!report.error.empty()) {
    std::cout << "not a usable clip model file or checkpoint: " << report.error << "\n";
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
      "  clip-convert --inspect SOURCE [--json]             what SOURCE holds, which tensors are unused (exit 1: "
      "would not convert)\n\n"
      "SOURCE is a Hugging Face CLIPModel folder (model.safetensors or pytorch_model.bin, sharded or not), an "
      "open_clip hub folder (open_clip_config.json), an OpenAI/open_clip state dict (.safetensors, or .pt/.bin as "
      "torch.save writes it, legacy format included), one of OpenAI's TorchScript files (ViT-B-32.pt, ...), a "
      "clip.cpp GGUF file, or a clip model file (converted again, e.g. --dtype f16 or q8). Checkpoints without a "
      "vocabulary use CLIP's built-in bpe_simple_vocab_16e6; --vocab replaces it. State dicts and TorchScript files "
      "do not record attention heads: they are inferred as width / 64, as OpenAI's build_model does; pass "
      "--vision-heads / --text-heads for models built otherwise.");
  CLI::App& app = command.app();
  std::string source, output, random_name, inspect_path, dtype = "f32", activation, image_mean, image_std;
  unsigned seed = 0;
  clip::ConvertOptions options;
  options.default_tokenizer = clip_tools::default_tokenizer;
  CLI::Option* source_option = app.add_option("source", source, "checkpoint to convert")->type_name("SOURCE");
  CLI::Option* output_option = app.add_option("-o,--output", output, "model file to write")->type_name("OUT");
  CLI::Option* random_option = app.add_option("--random", random_name, "write a model with random weights")
                                   ->check(CLI::IsMember({"ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-L-14-336"}))
                                   ->type_name("NAME");
  CLI::Option* inspect_option =
      app.add_option("--inspect", inspect_path, "print what SOURCE holds and which tensors it does not use")->type_name("SOURCE");
  clip::cli::OutputOptions output_format;  // --json: what --inspect prints
  command.add_output(output_format);
  app.add_option("--dtype", dtype,
                 "tensor type of the written file; q8: each block's weight matrices as int8 with a scale per output "
                 "channel, the rest f32")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "q8"}));
  app.add_option("--vocab", options.vocab_path, "BPE vocabulary for checkpoints that carry none (default: CLIP's, built in)")->type_name("FILE");
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

  if (source.empty() && random_name.empty() && inspect_path.empty())
    throw clip::Error("nothing to do: give a SOURCE to convert, --random NAME or --inspect FILE");
  options.dtype = dtype == "f16" ? clip::DType::F16 : dtype == "bf16" ? clip::DType::BF16 : clip::DType::F32;
  options.q8 = dtype == "q8";
  if (!activation.empty()) options.activation = clip::parse_activation(activation);
  if (!image_mean.empty()) options.image_mean = parse_triple("--image-mean", image_mean);
  if (!image_std.empty()) options.image_std = parse_triple("--image-std", image_std);
  if (!inspect_path.empty()) return inspect(inspect_path, options, output_format.json);

  if (output.empty()) throw clip::Error("--output (-o) is required: the model file to write");
  if (!random_name.empty()) {
    const std::string merges = options.vocab_path.empty() ? clip_tools::default_tokenizer().merges_text()
                                                          : clip::detail::load_tokenizer(options.vocab_path).merges_text();
    clip::random_model(clip::named_config(random_name), merges, options.dtype, seed, options.q8).write(output);
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
