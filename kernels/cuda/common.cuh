// Shared by every kernel file: storage types, the accumulation type, launch-loop helpers.
//
// Storage types: float, double, __half, __nv_bfloat16. Arithmetic on the 16-bit types is done
// in float (Acc<T>::type), so an LRN window sum or a col2im sum of a half tensor does not lose
// precision on the way; double stays double so the float64 tests compare to the NumPy reference
// at 1e-12.
//
// Each .cu file writes its kernels once as templates and then stamps out one extern "C" entry
// point per storage type with FOR_EACH_FLOAT (names end in _f32, _f64, _f16, _bf16), so the
// loader (kernels/cuda/__init__.py) and nvcc can use the files as they are, without name
// mangling or explicit template instantiation lists.
#pragma once
#include <cuda_fp16.h>
#include <cuda_bf16.h>

// MT_HOST_EMULATION (tests/kernels/cuda/test_cuda_emulated.py only): the same kernel bodies compiled as plain
// host functions, each "thread" loop run serially, so the kernels' index arithmetic can be checked
// against the NumPy reference on a machine without a GPU. Entry points keep their names.
#ifdef MT_HOST_EMULATION
#define MT_DEVICE __host__ __device__
#define KERNEL extern "C"
#define GRID_LOOP(i, n) for (long long i = 0; i < (long long)(n); ++i)
#define ROW_LOOP(r, rows) for (int r = 0; r < (rows); ++r)
#include <xmmintrin.h>
// CuPy compiles every kernel with -ftz=true (cupy/cuda/compiler.py, _compile_with_cache_cuda):
// single-precision subnormal inputs and results are flushed to zero on the GPU. The emulation
// does the same through the SSE control register (flush-to-zero and denormals-are-zero bits),
// which the test sets around each float32/16-bit kernel call and restores after it (it is per
// thread, and NumPy in the same thread must not see it). Returns the register's previous value.
extern "C" unsigned int mt_emulation_flush_subnormals(unsigned int on) {
    unsigned int previous = _mm_getcsr();
    _mm_setcsr(on ? (previous | 0x8040u) : (previous & ~0x8040u));
    return previous;
}
extern "C" void mt_emulation_restore_csr(unsigned int value) { _mm_setcsr(value); }
#else
#define MT_DEVICE __device__
#define KERNEL extern "C" __global__
// One thread per element, grid-stride so any grid size covers any n. The index and the stride
// are 64-bit: with 32-bit ints, i + stride overflows once n is within one grid of 2^31 (element
// totals are long long in every kernel; the Python launchers check that the 32-bit dimension
// arguments fit).
#define GRID_LOOP(i, n)                                                                   \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n); \
         i += (long long)blockDim.x * gridDim.x)
// grid.y walks rows, grid-stride.
#define ROW_LOOP(r, rows) for (int r = blockIdx.y; r < (rows); r += gridDim.y)
#endif

template <typename T> struct Acc { typedef float type; };
template <> struct Acc<double> { typedef double type; };

MT_DEVICE __forceinline__ float to_acc(float v) { return v; }
MT_DEVICE __forceinline__ double to_acc(double v) { return v; }
MT_DEVICE __forceinline__ float to_acc(__half v) { return __half2float(v); }
MT_DEVICE __forceinline__ float to_acc(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> MT_DEVICE __forceinline__ T from_acc(float v);
template <typename T> MT_DEVICE __forceinline__ T from_acc(double v);
template <> MT_DEVICE __forceinline__ float from_acc<float>(float v) { return v; }
template <> MT_DEVICE __forceinline__ double from_acc<double>(double v) { return v; }
template <> MT_DEVICE __forceinline__ __half from_acc<__half>(float v) { return __float2half_rn(v); }
template <> MT_DEVICE __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// Unravelling a flat index: a launch over fewer than 2^31 elements (every layer of AlexNet at
// batch 128; the largest, conv1's col, has 363 x 387200 = 1.4e8) divides in 32-bit unsigned
// arithmetic, a few instructions, where a 64-bit division is a software routine on NVIDIA GPUs.
// The branch depends on the launch's total alone, so all threads of a launch take the same one.
// Both operands are below the total (divisors are products of the dimensions that make it).
struct Unravel {
    bool small;
    MT_DEVICE explicit Unravel(long long total) : small(total <= 0x7fffffffLL) {}
    MT_DEVICE __forceinline__ long long div(long long a, long long b) const {
        return small ? (long long)((unsigned)a / (unsigned)b) : a / b;
    }
    MT_DEVICE __forceinline__ long long mod(long long a, long long b) const {
        return small ? (long long)((unsigned)a % (unsigned)b) : a % b;
    }
};

MT_DEVICE __forceinline__ float acc_pow(float a, float b) { return powf(a, b); }
MT_DEVICE __forceinline__ double acc_pow(double a, double b) { return pow(a, b); }

// The storage types every kernel is instantiated for, with their name suffixes.
#define FOR_EACH_FLOAT(M) M(float, f32) M(double, f64) M(__half, f16) M(__nv_bfloat16, bf16)
