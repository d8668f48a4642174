// Fuzz target: a model file from bytes, as far as the library reads one before encoding.
// safetensors container (header length, JSON header, tensor table, spans) -> ModelFile (metadata,
// config JSON, canonical tensors against the config) -> the BPE merges tensor into a Tokenizer ->
// Weights<float> (every tensor converted from F32/F16/BF16 and packed). Any clip::Error is a
// correct refusal; anything else (a crash, a sanitizer report, another exception) is a finding.

#include <clip/formats/model_file.hpp>
#include <clip/model/weights.hpp>
#include <clip/text/tokenizer.hpp>
#include <clip/threading.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool one_thread = [] {
    clip::set_num_threads(1);  // one input at a time; the pool is tested by the concurrency tests
    return true;
  }();
  (void)one_thread;
  try {
    clip::TensorFile tensors = clip::TensorFile::from_bytes(std::vector<std::uint8_t>(data, data + size), "fuzz input");
    // The container alone: every tensor's span read through the converting copy.
    std::vector<float> values;
    for (const clip::TensorInfo& tensor : tensors.tensors()) {
      if (tensor.dtype == clip::DType::U8) {
        (void)tensors.read_text(tensor.name);
        continue;
      }
      values.resize(static_cast<std::size_t>(tensor.numel()));
      tensors.copy_to(tensor, values.data());
    }
    auto model = std::make_shared<const clip::ModelFile>(std::move(tensors));
    const clip::Tokenizer tokenizer = clip::Tokenizer::from_merges(model->merges_text());
    (void)tokenizer.encode("a photo of a cat");
    const clip::Weights<float> weights(model);
    (void)weights.logit_scale_log();
  } catch (const clip::Error&) {
  }
  return 0;
}
