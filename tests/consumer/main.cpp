// A second file of a host application: writes and reads back a tensor file with the installed
// headers, linked against clip::clip_compiled.
#include <clip/clip.hpp>

#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::vector<float> values = {1.0f, 2.0f};
  clip::TensorWriter writer;
  writer.add("x", clip::DType::F32, {2}, values.data());
  writer.write(argv[1]);
  const clip::TensorFile file(argv[1]);
  const bool ok = file.read<float>("x") == values;
  std::printf("consumer: %s\n", ok ? "ok" : "mismatch");
  return ok ? 0 : 1;
}
