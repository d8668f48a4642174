// libFuzzer target: a GGUF file on arbitrary bytes, then every tensor viewed and read (F32/F16
// in place, quantized blocks dequantized) the way the converter reads them.

#include <clip/formats/gguf.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const clip::GgufFile gguf(data, size, "fuzz.gguf");
    for (const clip::GgufTensor& tensor : gguf.tensors()) {
      const clip::StoredTensor view = gguf.view(tensor);
      std::vector<float> values(static_cast<std::size_t>(view.numel()));
      clip::read_stored_tensor(view, values.data(), tensor.name);
    }
  } catch (const clip::Error&) {
  }
  return 0;
}
