#pragma once
// Which instruction set clip's hot loops use, chosen at run time from the CPU.
//
// A program built the way users and packagers build it (no -m flags) still runs the weight
// products on AVX2+FMA or AVX-512 when the CPU has them: those kernels are written with
// intrinsics in functions carrying the matching target attributes (model/detail/panel_kernels_x86.hpp, quantized_kernels_x86.hpp)
// and picked when a model is loaded. The environment variable CLIP_ISA (generic, avx2, avx512)
// forces a path, for tests and benchmarks; forcing one the CPU lacks is an error, not a crash.
// Everything else (Eigen's own expressions) runs on what the compiler was told to target.

#include <clip/error.hpp>

#include <cstdlib>
#include <string>

// The x86 kernels need GCC or Clang (target attributes, __builtin_cpu_supports); define
// CLIP_NO_X86_KERNELS to build without them.
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(CLIP_NO_X86_KERNELS)
#define CLIP_HAVE_X86_KERNELS 1
#endif

namespace clip {

enum class Isa {
  generic,  // Eigen's packets for the compiler's target (SSE2 on x86-64 without -m flags)
  avx2,     // AVX2 + FMA, 256-bit
  avx512,   // AVX-512F, 512-bit
};

inline const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx2:
      return "avx2";
    case Isa::avx512:
      return "avx512";
    case Isa::generic:
      break;
  }
  return "generic";
}

/// Kernels for `isa` are compiled in and this CPU (and its OS) can run them.
inline bool isa_supported(Isa isa) {
  if (isa == Isa::generic) return true;
#if defined(CLIP_HAVE_X86_KERNELS)
  __builtin_cpu_init();  // may run before the runtime's own initialisation (static constructors)
  if (isa == Isa::avx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (isa == Isa::avx512) return __builtin_cpu_supports("avx512f");
#endif
  return false;
}

/// Whether the int8 products of a q8 model on the avx512 path can use AVX-512 VNNI's vpdpbusd
/// (Ice Lake, Zen 4 and later); without it they run the AVX2 int8 kernels.
inline bool avx512_vnni_supported() {
#if defined(CLIP_HAVE_X86_KERNELS)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

/// The fastest path this CPU supports.
inline Isa best_isa() {
  if (isa_supported(Isa::avx512)) return Isa::avx512;
  if (isa_supported(Isa::avx2)) return Isa::avx2;
  return Isa::generic;
}

/// The path models loaded now use: CLIP_ISA when set (checked), else best_isa(). Read at each
/// load, so a test can load one model per path; a loaded model keeps the path it was packed for.
inline Isa active_isa() {
  const char* forced = std::getenv("CLIP_ISA");
  if (forced == nullptr || *forced == '\0') return best_isa();
  const std::string name(forced);
  for (Isa isa : {Isa::generic, Isa::avx2, Isa::avx512}) {
    if (name != isa_name(isa)) continue;
    if (!isa_supported(isa))
      throw Error("CLIP_ISA=" + name + ": this CPU (or this build) cannot run the " + name + " kernels; best here is " +
                  isa_name(best_isa()));
    return isa;
  }
  throw Error("CLIP_ISA=" + name + ": unknown instruction set (generic, avx2 or avx512)");
}

}  // namespace clip
