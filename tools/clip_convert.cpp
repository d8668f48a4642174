// clip-convert: turns a downloaded CLIP checkpoint into one clip model file, makes random models
// for benchmarks, and inspects model files.

#include "cli.hpp"

#include <clip/convert/convert.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>

namespace {

const char* const usage = R"(usage:
  clip-convert SRC -o OUT.safetensors [--dtype f32|f16|bf16] [--vocab FILE] [--act quick_gelu|gelu]
               [--vision-heads N] [--text-heads N] [--image-mean R,G,B] [--image-std R,G,B]
  clip-convert --random NAME -o OUT.safetensors [--vocab FILE] [--dtype ...] [--seed N]
  clip-convert --inspect FILE

SRC is a Hugging Face CLIPModel folder, or an OpenAI/open_clip state dict saved as .safetensors
(needs --vocab: bpe_simple_vocab_16e6.txt.gz, a merges text, or a vocab.json with merges.txt
beside it). State dicts do not record attention heads: they are inferred as width / 64, as
OpenAI's build_model does; pass --vision-heads / --text-heads for models built otherwise.
--random NAME writes a model with random weights: ViT-B-32, ViT-B-16, ViT-L-14, ViT-L-14-336.
)";

clip::DType parse_dtype(const std::string& text) {
  if (text == "f32") return clip::DType::F32;
  if (text == "f16") return clip::DType::F16;
  if (text == "bf16") return clip::DType::BF16;
  throw clip::Error("--dtype must be f32, f16 or bf16, not '" + text + "'");
}

int parse_positive(const std::string& flag, const std::string& text) {
  return static_cast<int>(clip::cli::parse_integer(flag, text, 1));
}

std::array<float, 3> parse_triple(const std::string& flag, const std::string& text) {
  std::array<float, 3> values{};
  std::istringstream stream(text);
  char comma = ',';
  if (!(stream >> values[0] >> comma >> values[1] >> comma >> values[2]) || !stream.eof())
    throw clip::Error(flag + " needs three comma-separated numbers, not '" + text + "'");
  return values;
}

void inspect(const std::string& path) {
  const clip::TensorFile file(path);
  std::optional<clip::ModelFile> model;
  try {
    model.emplace(path);
  } catch (const clip::Error& e) {
    std::cout << "not a clip model file: " << e.what() << "\n";
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
}

int run(int argc, char** argv) {
  std::string source, output, random_name, inspect_path;
  unsigned seed = 0;
  clip::ConvertOptions options;
  clip::cli::Arguments args(argc, argv);
  while (args.next()) {
    const std::string arg = args.current();
    auto value = [&] { return args.value(); };
    if (arg == "-h" || arg == "--help") {
      std::cout << usage;
      return 0;
    } else if (arg == "-o" || arg == "--output") output = value();
    else if (arg == "--dtype") options.dtype = parse_dtype(value());
    else if (arg == "--vocab") options.vocab_path = value();
    else if (arg == "--act") options.activation = clip::parse_activation(value());
    else if (arg == "--vision-heads") options.vision_heads = parse_positive(arg, value());
    else if (arg == "--text-heads") options.text_heads = parse_positive(arg, value());
    else if (arg == "--image-mean") options.image_mean = parse_triple(arg, value());
    else if (arg == "--image-std") options.image_std = parse_triple(arg, value());
    else if (arg == "--random") random_name = value();
    else if (arg == "--seed") seed = static_cast<unsigned>(parse_positive(arg, value()));
    else if (arg == "--inspect") inspect_path = value();
    else if (!arg.empty() && arg[0] == '-') throw clip::Error("unknown option " + arg + "\n" + usage);
    else if (source.empty()) source = arg;
    else throw clip::Error("more than one source given: " + source + ", " + arg);
  }
  if (!inspect_path.empty()) {
    inspect(inspect_path);
    return 0;
  }
  if (output.empty() || (source.empty() == random_name.empty())) {
    std::cerr << usage;
    return 2;
  }
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
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return clip::cli::run_main("clip-convert", [&] { return run(argc, argv); }, 1);
}
