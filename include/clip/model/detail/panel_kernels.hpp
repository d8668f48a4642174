#pragma once
// The innermost loop of the weight products, one per instruction set, and the
// table that picks one at load (see clip/isa.hpp).
//
// A kernel call computes out[t, 0 .. width) (+)= sum_k x[k * rows + t] * w[k *
// width ..] for `rows` tokens and one panel of `width` outputs: two SIMD
// registers of outputs per token, so 2 * rows accumulators, two weight
// registers and a broadcast must fit the register file. Every kernel of a table
// shares its panel width and its largest row count, which fix the layouts
// PackedWeight and pack_tokens write; so a model packed for one path is only
// ever multiplied by that path's kernels.

#include <algorithm>
#include <array>
#include <clip/detail/eigen.hpp>
#include <clip/isa.hpp>
#include <utility>

namespace clip::detail {

template <typename Scalar>
using Packet = typename Eigen::internal::packet_traits<Scalar>::type;

template <typename Scalar>
constexpr Eigen::Index packet_size() {
  return Eigen::internal::packet_traits<Scalar>::size;
}

/// Cache lines of the next panel a kernel call asks for in L2 while it computes: `lines`
/// lines from `begin` (up to `end`) at the start of every group of `every` depth steps. The
/// calls over one panel share the fetching of the next, so the requests stay few at a time (a
/// core tracks only ~16 misses). The kernels run the groups as a loop of their own ahead of
/// the plain steps: a test and a countdown in every step cost AVX2 ~15 % of its FMA rate.
struct Prefetch {
  const char* begin = nullptr;
  const char* end = nullptr;
  int lines = 1;
  Eigen::Index every = 1;

  /// Groups of `every` of `depth` steps that start with a fetch: until the range is done.
  Eigen::Index groups(Eigen::Index depth) const {
    if (begin >= end) return 0;
    return std::min(depth / every, (end - begin + lines * 64 - 1) / (lines * 64));
  }

  /// The fetch that starts a group.
  void issue() {
    for (int l = 0; l < lines; ++l) __builtin_prefetch(begin + l * 64, 0, 2);
    begin += lines * 64;
  }

  /// The same schedule from within every step (the int8 kernels); `countdown` is the kernel's own.
  void step(Eigen::Index& countdown) {
    if (begin < end && countdown-- == 0) {
      issue();
      countdown = every - 1;
    }
  }
};

/// The most tokens any kernel takes per call (AVX-512's 32 registers: 24
/// accumulators).
constexpr int kLargestKernelRows = 12;

template <typename Scalar>
using PanelKernelFunction = void (*)(const Scalar* x, const Scalar* w, Eigen::Index depth, Scalar* out,
                                     Eigen::Index out_stride, bool accumulate, Prefetch fetch);

/// One instruction set's kernels: rows[r] takes r tokens (1 <= r <= max_rows). quick_gelu,
/// when set, applies QuickGELU to `count` contiguous values in place (the MLP's activation sits
/// between its two products and costs ~6 % of an image on SSE2); null means Eigen's.
template <typename Scalar>
struct ProductKernels {
  Isa isa = Isa::generic;
  Eigen::Index width = 0;  // outputs per panel
  int max_rows = 0;        // tokens per call at most
  std::array<PanelKernelFunction<Scalar>, kLargestKernelRows + 1> rows{};
  void (*quick_gelu)(Scalar* values, Eigen::Index count) = nullptr;
};

/// The generic kernel: Eigen's packets for the compiler's target.
template <typename Scalar>
struct GenericKernel {
  static constexpr Eigen::Index width = 2 * packet_size<Scalar>();

  /// One depth step: x[0, Rows) times the panel's row w, onto the accumulators.
  template <int Rows>
  EIGEN_ALWAYS_INLINE static void step(const Scalar* x, const Scalar* w, Packet<Scalar>* low, Packet<Scalar>* high) {
    using Eigen::internal::pload;
    using Eigen::internal::pmadd;
    using Eigen::internal::pset1;
    constexpr Eigen::Index P = packet_size<Scalar>();
    const Packet<Scalar> w_low = pload<Packet<Scalar>>(w);
    const Packet<Scalar> w_high = pload<Packet<Scalar>>(w + P);
#pragma GCC unroll 12
    for (int t = 0; t < Rows; ++t) {
      const Packet<Scalar> xt = pset1<Packet<Scalar>>(x[t]);
      low[t] = pmadd(xt, w_low, low[t]);
      high[t] = pmadd(xt, w_high, high[t]);
    }
  }

  template <int Rows>
  static void run(const Scalar* x, const Scalar* w, Eigen::Index depth, Scalar* out, Eigen::Index out_stride,
                  bool accumulate, Prefetch fetch) {
    using Eigen::internal::ploadu;
    using Eigen::internal::pset1;
    using Eigen::internal::pstoreu;
    constexpr Eigen::Index P = packet_size<Scalar>();
    Packet<Scalar> low[Rows], high[Rows];  // NOLINT: outputs [0, P) and [P, 2P) of each token
#pragma GCC unroll 12
    for (int t = 0; t < Rows; ++t) low[t] = high[t] = pset1<Packet<Scalar>>(Scalar(0));
    Eigen::Index k = 0;
    const Eigen::Index groups = fetch.groups(depth);
    for (Eigen::Index g = 0; g < groups; ++g) {
      fetch.issue();
      for (Eigen::Index j = 0; j < fetch.every; ++j, ++k) step<Rows>(x + k * Rows, w + k * width, low, high);
    }
    for (; k < depth; ++k) step<Rows>(x + k * Rows, w + k * width, low, high);
#pragma GCC unroll 12
    for (int t = 0; t < Rows; ++t) {
      Scalar* row = out + t * out_stride;
      if (accumulate) {
        low[t] = Eigen::internal::padd(low[t], ploadu<Packet<Scalar>>(row));
        high[t] = Eigen::internal::padd(high[t], ploadu<Packet<Scalar>>(row + P));
      }
      pstoreu(row, low[t]);
      pstoreu(row + P, high[t]);
    }
  }
};

/// {nullptr, Kernel::run<1>, ..., Kernel::run<N>}: one kernel's row counts, by count.
template <typename Scalar, typename Kernel, int... Counts>
constexpr std::array<PanelKernelFunction<Scalar>, kLargestKernelRows + 1> kernel_rows(
    std::integer_sequence<int, Counts...>) {
  return {{nullptr, &Kernel::template run<Counts + 1>...}};
}

/// The generic table: two packets per panel; as many rows as the target's registers allow
/// (32 with AVX-512, 16 with AVX and SSE).
template <typename Scalar>
const ProductKernels<Scalar>& generic_kernels() {
  constexpr int rows = EIGEN_ARCH_DEFAULT_NUMBER_OF_REGISTERS >= 32 ? 12 : 6;
  static const ProductKernels<Scalar> kernels{
      Isa::generic, 2 * packet_size<Scalar>(), rows,
      kernel_rows<Scalar, GenericKernel<Scalar>>(std::make_integer_sequence<int, rows>())};
  return kernels;
}

}  // namespace clip::detail
