// libFuzzer target: the pickle data reader on arbitrary bytes. Persistent ids resolve to a fake
// storage so the tensor-record paths run too. Any clip::Error is a correct refusal.

#include <clip/formats/pickle.hpp>

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto load = [](const clip::PickleValue& id) {
    auto storage = std::make_shared<clip::PickleValue>();
    storage->kind = clip::PickleValue::Kind::Storage;
    storage->storage = std::make_unique<clip::PickleStorage>();
    if (id.is(clip::PickleValue::Kind::Tuple) && id.items.size() > 1 && id.items[1]->is(clip::PickleValue::Kind::Global))
      clip::torch_storage_dtype(id.items[1]->text, storage->storage->dtype);
    return storage;
  };
  try {
    clip::PickleReader reader(data, size, "fuzz.pkl", load);
    const clip::PickleRef value = reader.read();
    (void)value->get("state_dict");
  } catch (const clip::Error&) {
  }
  return 0;
}
