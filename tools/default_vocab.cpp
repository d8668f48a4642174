// CLIP's BPE vocabulary (tools/vocab/bpe_simple_vocab_16e6.txt.gz) carried inside clip-convert,
// so OpenAI, open_clip and GGUF checkpoints convert without --vocab from the build tree and
// after installation alike. The assembler's .incbin copies the file's bytes at build time;
// CLIP_DEFAULT_VOCAB_PATH is set by tools/CMakeLists.txt.

#include "default_vocab.hpp"

__asm__(".section .rodata\n"
        ".balign 16\n"
        "clip_default_vocab_begin:\n"
        ".incbin \"" CLIP_DEFAULT_VOCAB_PATH "\"\n"
        "clip_default_vocab_end:\n"
        ".previous\n");

extern "C" const char clip_default_vocab_begin[];
extern "C" const char clip_default_vocab_end[];

std::string_view clip_tools::default_vocab_gz() {
  return std::string_view(clip_default_vocab_begin, static_cast<std::size_t>(clip_default_vocab_end - clip_default_vocab_begin));
}
