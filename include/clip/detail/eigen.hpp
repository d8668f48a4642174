#pragma once
// Eigen, as every clip header includes it. Eigen's heap alignment depends on the instruction set
// a file is compiled for (16 bytes for SSE, 32 for AVX, 64 for AVX-512), and with it how a
// matrix's memory is allocated and freed; files compiled with different flags (clip_compiled
// with -march=native, a host file without; or, later, kernels chosen at run time) would free
// each other's matrices wrongly. One alignment for every file keeps matrices safe to pass
// between them: the largest, 64 bytes (a cache line, what AVX-512 loads want).
//
// Define EIGEN_MAX_ALIGN_BYTES=64 for the whole program if it includes Eigen before clip (the
// CMake targets clip::clip and clip::clip_compiled do).

#ifndef EIGEN_MAX_ALIGN_BYTES
#define EIGEN_MAX_ALIGN_BYTES 64
#endif

#include <Eigen/Core>

static_assert(EIGEN_MAX_ALIGN_BYTES == 64,
              "clip needs EIGEN_MAX_ALIGN_BYTES=64 in every file that includes Eigen (define it for the whole "
              "program, or include clip before Eigen)");
