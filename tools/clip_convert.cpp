// clip-convert: turns a downloaded CLIP checkpoint into one clip model file, makes random models
// for benchmarks, and inspects model files.

#include "cli.hpp"
#include "default_vocab.hpp"

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
  clip-convert --inspect SRC [--json]

SRC is any of: a Hugging Face CLIPModel folder (model.safetensors or pytorch_model.bin, sharded
or not), an open_clip hub folder (open_clip_config.json), an OpenAI/open_clip state dict
(.safetensors, or .pt/.bin as torch.save writes it, legacy format included), OpenAI's TorchScript
files (ViT-B-32.pt, ...), a clip.cpp GGUF file, or a clip model file (converted again, e.g. to
--dtype f16). Checkpoints without a vocabulary use CLIP's built-in bpe_simple_vocab_16e6; --vocab
FILE (.txt.gz, a merges text, or a vocab.json with merges.txt beside it) replaces it. State dicts
and TorchScript files do not record attention heads: they are inferred as width / 64, as
OpenAI's build_model does; pass --vision-heads / --text-heads for models built otherwise.
--inspect lists what SRC holds, which tensors the model does not use, and the config it implies.
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

void print_model_file(const std::string& path) {
  const clip::ModelFile model(path);
  const clip::Tokenizer tokenizer = clip::Tokenizer::from_merges(model.merges_text());
  std::cout << "tokenizer: " << tokenizer.vocab_size() << " tokens (" << tokenizer.vocab_size() - 514
            << " merges), sot " << tokenizer.sot_id() << ", eot " << tokenizer.eot_id() << "\n";
}

int inspect(const std::string& source, const clip::ConvertOptions& options, bool json) {
  const clip::ConversionReport report = clip::inspect_checkpoint(source, options);
  if (!report.error.empty()) std::cerr << "clip-convert: cannot convert: " << report.error << "\n";
  if (json) {
    std::cout << report.to_json().dump(2) << "\n";
    return report.error.empty() ? 0 : 1;
  }
  std::cout << "source:    " << report.source << "\n"
            << "input:     " << report.input << "\n"
            << "layout:    " << report.layout << "\n";
  for (const std::string& file : report.files) std::cout << "file:      " << file << "\n";
  if (!report.tokenizer.empty()) std::cout << "vocabulary: " << report.tokenizer << "\n";
  for (const std::string& note : report.notes) std::cout << "note:      " << note << "\n";
  if (report.config) std::cout << "config: " << clip::to_json(*report.config).dump(2) << "\n";
  if (report.layout == "clip canonical names") print_model_file(source);
  std::cout << "tensors:\n";
  for (const clip::ConversionReport::Tensor& tensor : report.tensors)
    std::printf("  %-56s %-7s %-22s %s\n", tensor.name.c_str(), tensor.dtype.c_str(),
                clip::shape_string(tensor.shape).c_str(), tensor.used ? "" : "unused");
  const auto unused = report.unused();
  std::printf("%zu tensors, %zu unused by the model\n", report.tensors.size(), unused.size());
  return report.error.empty() ? 0 : 1;
}

int run(int argc, char** argv) {
  std::string source, output, random_name, inspect_path;
  bool json = false;
  unsigned seed = 0;
  clip::ConvertOptions options;
  options.default_tokenizer = clip_tools::default_tokenizer;
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
    else if (arg == "--json") json = true;
    else if (!arg.empty() && arg[0] == '-') throw clip::Error("unknown option " + arg + "\n" + usage);
    else if (source.empty()) source = arg;
    else throw clip::Error("more than one source given: " + source + ", " + arg);
  }
  if (!inspect_path.empty()) return inspect(inspect_path, options, json);
  if (output.empty() || (source.empty() == random_name.empty())) {
    std::cerr << usage;
    return 2;
  }
  if (!random_name.empty()) {
    const std::string merges = options.vocab_path.empty() ? clip_tools::default_tokenizer().merges_text()
                                                          : clip::detail::load_tokenizer(options.vocab_path).merges_text();
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
