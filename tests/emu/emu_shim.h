// emu_shim.h: what a kernel template of kernel_src/ needs to compile unchanged as host C++ for the
// emulated device. The templates use only __global__/__device__ functions, threadIdx/blockIdx/
// blockDim/gridDim, static and `extern` __shared__ arrays, __syncthreads() and a few math functions
// and intrinsics; each is defined here:
//   - __shared__ is thread_local: every fiber of a block runs on one host thread, so one thread's
//     copy is the block's shared memory (block-scope thread_local is static; `extern __shared__`
//     becomes `extern thread_local`, defined by the generated file at the largest size a launch
//     may ask for);
//   - __device__ functions are always inlined, so every __syncthreads() call site, in whichever
//     helper it sits, has its own address: the barrier's identity, as its PC is on a GPU;
//   - the indices are a plain static of the library, set by the scheduler for the fiber it resumes
//     (the emulator runs one launch at a time, so one copy serves; no thread-local lookups in loops).
// No floating-point contraction (the build passes -ffp-contract=off): a*b+c stays two roundings,
// as the CPU reference computes it.
#ifndef HR_EMU_SHIM_H
#define HR_EMU_SHIM_H

#include <math.h>
#include <string.h>

#include <type_traits>
#include <utility>

#include "emu_api.h"

#define __global__
#define __device__ inline __attribute__((always_inline))
#define __forceinline__
#define __launch_bounds__(...)
#define __shared__ thread_local

static hr_emu_indices hr_emu_idx;
#define threadIdx (hr_emu_idx.thread)
#define blockIdx (hr_emu_idx.block)
#define blockDim (hr_emu_idx.block_dim)
#define gridDim (hr_emu_idx.grid_dim)

__attribute__((unused)) static void (*hr_emu_barrier)(const char *file, int line);
#define __syncthreads() hr_emu_barrier(__FILE__, __LINE__)

static inline unsigned int __float_as_uint(float f) {
    unsigned int u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static inline float __uint_as_float(unsigned int u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
// The round-to-nearest intrinsics that CUDA never fuses into an FMA: plain operations here.
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __dadd_rn(double a, double b) { return a + b; }

// ---- the table of instantiations a generated file exports ----

template <typename A> struct hr_emu_writes : std::false_type {};
template <typename P> struct hr_emu_writes<P *> : std::integral_constant<bool, !std::is_const<P>::value> {};

template <typename A> constexpr char hr_emu_kind() {
    return std::is_pointer<A>::value ? 'p' : std::is_floating_point<A>::value ? 'f' : std::is_integral<A>::value ? 'i' : 'b';
}

template <typename... A> struct hr_emu_signature {
    static constexpr char kind[] = {hr_emu_kind<A>()...};
    static constexpr unsigned short size[] = {(unsigned short)sizeof(A)...};
    static constexpr unsigned char writes[] = {(unsigned char)hr_emu_writes<A>::value...};
    template <size_t... I> static void call(void (*f)(A...), void *const *p, std::index_sequence<I...>) {
        f(*static_cast<typename std::remove_cv<A>::type *>(p[I])...);
    }
    static void invoke(void *f, void *const *p) {
        call(reinterpret_cast<void (*)(A...)>(f), p, std::index_sequence_for<A...>{});
    }
};

template <typename... A> static hr_emu_kernel hr_emu_entry(const char *name_expression, void (*f)(A...)) {
    static_assert(sizeof...(A) > 0 && sizeof...(A) <= HR_EMU_MAX_PARAMS, "kernel parameter count");
    typedef hr_emu_signature<A...> sig;
    return hr_emu_kernel{name_expression, reinterpret_cast<void *>(f), sig::invoke, (int)sizeof...(A), sig::size,
                         sig::writes, sig::kind};
}

#define HR_EMU_KERNEL(name_expression, ...) hr_emu_entry(name_expression, &__VA_ARGS__)

__attribute__((unused)) static hr_emu_indices *hr_emu_indices_here() { return &hr_emu_idx; }

// A thread-local array no kernel writes, beside the shared arrays (exported, so the driver sees it).
#define HR_EMU_SHARED_GUARD(name) \
    extern "C" {                  \
    __attribute__((visibility("default"))) alignas(64) thread_local unsigned char name[256]; \
    }

// The module: `file`, the table, and the `extern __shared__` array (or none).
#define HR_EMU_MODULE(file, table, dynamic_fn, dynamic_bytes)                                                   \
    extern "C" __attribute__((visibility("default"))) const hr_emu_module *hr_emu_module_get(const hr_emu_host *h) { \
        static const hr_emu_module m = {file, (int)(sizeof table / sizeof table[0]), table, dynamic_fn,            \
                                        dynamic_bytes, hr_emu_indices_here};                                      \
        hr_emu_barrier = h->barrier;                                                                             \
        return &m;                                                                                               \
    }

#endif
