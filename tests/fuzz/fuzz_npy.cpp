// libFuzzer target: arbitrary bytes as a .npy file (parse_npy_header, the check NpyFile and
// EmbeddingCollection make on every mapped shard) must give a header or a clip::Error, never a
// crash, hang or out-of-bounds read. When the bytes are accepted, every value is read from where
// the header says it is (ASan sees any read past the buffer), and the header npy_header() writes
// for the same type and shape must parse back to the same matrix: reader and writer agree.
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude tests/fuzz/fuzz_npy.cpp -o fuzz_npy
//   ./fuzz_npy -dict=tests/fuzz/npy.dict tests/fuzz/corpus/npy

#include <clip/formats/npy.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

// Sums the values bit-wise (memcpy: no alignment assumption on the buffer), so each one is read.
template <typename T>
std::uint64_t touch_values(const std::uint8_t* data, std::uint64_t count) {
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    T value;
    std::memcpy(&value, data + i * sizeof(T), sizeof(T));
    std::uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof(T));
    sum += bits;
  }
  return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  clip::NpyHeader header;
  try {
    header = clip::parse_npy_header(data, size, "fuzz.npy");
  } catch (const clip::Error&) {
    return 0;
  }
  const std::uint64_t count = header.rows * header.cols;
  const std::uint8_t* values = data + header.data_offset;
  volatile std::uint64_t sink = header.type == clip::NpyType::Float32 ? touch_values<float>(values, count)
                                                                      : touch_values<double>(values, count);
  (void)sink;

  // The writer's header for this matrix, followed by the same data, must read back the same.
  std::string rewritten = clip::npy_header(header.type, header.rows, header.cols);
  rewritten.append(reinterpret_cast<const char*>(values), static_cast<std::size_t>(count * header.item_size()));
  clip::NpyHeader again;
  try {
    again = clip::parse_npy_header(reinterpret_cast<const std::uint8_t*>(rewritten.data()), rewritten.size(), "rewritten.npy");
  } catch (const clip::Error& e) {
    std::fprintf(stderr, "npy_header wrote a header parse_npy_header refuses: %s\n", e.what());
    std::abort();
  }
  if (again.type != header.type || again.rows != header.rows || again.cols != header.cols ||
      again.data_offset != rewritten.size() - count * header.item_size() || again.data_offset % 64 != 0) {
    std::fprintf(stderr, "npy_header round trip changed the matrix\n");
    std::abort();
  }
  return 0;
}
