// Batch normalisation over channel axis 1, the elementwise passes (see
// minitorch_alex/ops/batchnorm.py for the maths). The per-channel sums are CuPy reductions
// (kernels/cuda/batchnorm.py), as the GEMMs are cuBLAS's; what is left is one multiply-add per
// element with per-channel coefficients:
//
//   forward:   y  = scale[c] * x + shift[c]          (scale = weight * invstd, shift = bias - mean * scale)
//   backward:  gx = a[c] * gy + b[c] * x + d[c]      (a, b, d from the channel sums, the .py file)
//
// x, y, gy, gx are (N, C, P) C-contiguous; the coefficient vectors (C,) are in the accumulation
// type (float for the 16-bit and float32 kernels, double for float64), so a half tensor's
// coefficients keep float32 precision. One thread per element; consecutive threads take
// consecutive pixels, so reads are coalesced and a warp reads one channel's coefficients.
#include "common.cuh"

template <typename T>
MT_DEVICE void bn_forward_body(const T* __restrict__ x, T* __restrict__ y,
                               const typename Acc<T>::type* __restrict__ scale,
                               const typename Acc<T>::type* __restrict__ shift, int n, int c, int p) {
    const long long total = (long long)n * c * p;
    const Unravel u(total);
    GRID_LOOP(t, total) {
        const int ch = (int)u.mod(u.div(t, p), c);
        y[t] = from_acc<T>(scale[ch] * to_acc(x[t]) + shift[ch]);
    }
}

template <typename T>
MT_DEVICE void bn_backward_body(const T* __restrict__ x, const T* __restrict__ gy, T* __restrict__ gx,
                                const typename Acc<T>::type* __restrict__ a,
                                const typename Acc<T>::type* __restrict__ b,
                                const typename Acc<T>::type* __restrict__ d, int n, int c, int p) {
    const long long total = (long long)n * c * p;
    const Unravel u(total);
    GRID_LOOP(t, total) {
        const int ch = (int)u.mod(u.div(t, p), c);
        gx[t] = from_acc<T>(a[ch] * to_acc(gy[t]) + b[ch] * to_acc(x[t]) + d[ch]);
    }
}

#define INSTANTIATE(T, S)                                                                          \
    KERNEL void bn_forward_##S(const T* x, T* y, const Acc<T>::type* scale,                        \
                               const Acc<T>::type* shift, int n, int c, int p) {                   \
        bn_forward_body<T>(x, y, scale, shift, n, c, p);                                           \
    }                                                                                              \
    KERNEL void bn_backward_##S(const T* x, const T* gy, T* gx, const Acc<T>::type* a,             \
                                const Acc<T>::type* b, const Acc<T>::type* d, int n, int c, int p) { \
        bn_backward_body<T>(x, gy, gx, a, b, d, n, c, p);                                          \
    }
FOR_EACH_FLOAT(INSTANTIATE)
