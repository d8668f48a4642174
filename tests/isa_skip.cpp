// Linked into every test program: a run forced onto an instruction set this CPU lacks
// (CLIP_ISA=avx512 on an AVX2 machine, as tests/CMakeLists.txt's isa.* tests do on every
// machine) is skipped with ctest's skip code before any test starts, instead of failing each
// model load. An unknown name is left to fail loudly in the tests.

#include <clip/isa.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

const bool forced_isa_checked = [] {
  const char* forced = std::getenv("CLIP_ISA");
  if (forced == nullptr) return true;
  for (clip::Isa isa : {clip::Isa::generic, clip::Isa::avx2, clip::Isa::avx512})
    if (std::strcmp(forced, clip::isa_name(isa)) == 0 && !clip::isa_supported(isa)) {
      std::fprintf(stderr, "CLIP_ISA=%s: this CPU cannot run those kernels; skipped\n", forced);
      std::exit(77);
    }
  return true;
}();

}  // namespace
