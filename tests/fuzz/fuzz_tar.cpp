// libFuzzer target: tar / WebDataset parsing of arbitrary bytes (plain or gzip) must give
// samples or a clip::Error, never a crash, hang or out-of-bounds read.
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude tests/fuzz/fuzz_tar.cpp -lz -o fuzz_tar
//   ./fuzz_tar tests/fuzz/corpus/tar

#include <clip/formats/tar.hpp>

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  clip::TarLimits limits;
  limits.max_member_bytes = 1 << 24;  // keep the fuzzer's memory small; the logic is the same
  try {
    clip::WebDatasetReader reader(clip::open_tar_memory(data, size, "fuzz.tar", limits));
    clip::WebDatasetSample sample;
    while (reader.next(sample)) {
    }
  } catch (const clip::Error&) {
  }
  return 0;
}
