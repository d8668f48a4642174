// libFuzzer target: a torch checkpoint (ZIP archive or legacy stream) on arbitrary bytes, then
// every tensor of its state dict or module tree checked and read the way the converter reads.

#include <clip/formats/torch_checkpoint.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace {

void read_tensors(const clip::TorchCheckpoint& checkpoint, const clip::PickleValue& value, int depth) {
  if (depth > 64) return;
  for (const auto& [key, item] : value.entries) {
    if (item->is(clip::PickleValue::Kind::Tensor)) {
      const clip::StoredTensor view = checkpoint.view(*item->tensor, "t");
      if (!clip::is_float_dtype(view.dtype)) continue;
      std::vector<float> values(static_cast<std::size_t>(view.numel()));
      clip::read_stored_tensor(view, values.data(), "t");
    } else if (item->is(clip::PickleValue::Kind::Dict) || item->is(clip::PickleValue::Kind::Object)) {
      read_tensors(checkpoint, *item, depth + 1);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const clip::TorchCheckpoint checkpoint(data, size, "fuzz.pt");
    read_tensors(checkpoint, checkpoint.root(), 0);
  } catch (const clip::Error&) {
  }
  return 0;
}
