// Elementwise kernels: dropout, ReLU, the bias (+ ReLU) written with a layer's output, and mixed
// precision's unscale.
#include "common.cuh"

// Dropout, forward and backward alike: y = x * scale where keep, else 0. keep is a bool array
// of x's shape drawn on the host from the same NumPy generator as on the CPU (ops/dropout.py),
// so one seed gives the same mask on every device.
template <typename T>
MT_DEVICE void dropout_body(const T* __restrict__ x, const bool* __restrict__ keep, T* __restrict__ y,
                             long long size, double scale_) {
    typedef typename Acc<T>::type A;
    const A scale = (A)scale_;
    GRID_LOOP(i, size) y[i] = keep[i] ? from_acc<T>(to_acc(x[i]) * scale) : from_acc<T>((A)0);
}

// max(x, 0), NaN kept (like np.maximum); the backward pass needs only the output: gx = gy where
// y > 0.
template <typename T>
MT_DEVICE void relu_body(const T* __restrict__ x, T* __restrict__ y, long long size) {
    typedef typename Acc<T>::type A;
    GRID_LOOP(i, size) {
        const A v = to_acc(x[i]);
        y[i] = v < (A)0 ? from_acc<T>((A)0) : x[i];
    }
}

template <typename T>
MT_DEVICE void relu_backward_body(const T* __restrict__ y, const T* __restrict__ gy, T* __restrict__ gx,
                                   long long size) {
    typedef typename Acc<T>::type A;
    GRID_LOOP(i, size) gx[i] = to_acc(y[i]) > (A)0 ? gy[i] : from_acc<T>((A)0);
}

// The convolution's GEMM gives rows (O, N*P) (output channel major); the layer's output is
// y (N, O, P). Move each value into place, add the channel's bias and, if relu, clamp at 0:
// one pass instead of a transpose, a bias add and a ReLU.
template <typename T>
MT_DEVICE void bias_act_nchw_body(const T* __restrict__ rows, const T* __restrict__ bias, T* __restrict__ y,
                                   int n, int o, int p, int has_bias, int relu) {
    typedef typename Acc<T>::type A;
    const long long total = (long long)n * o * p;
    const Unravel u(total);
    GRID_LOOP(t, total) {
        const int q = (int)u.mod(t, p), oc = (int)u.mod(u.div(t, p), o), ni = (int)u.div(t, (long long)p * o);
        A v = to_acc(rows[(long long)oc * n * p + (long long)ni * p + q]);
        if (has_bias) v += to_acc(bias[oc]);
        y[t] = from_acc<T>(relu && v < (A)0 ? (A)0 : v);
    }
}

// A fully connected layer's output y (N, O), in place: y[i, o] += bias[o], then the ReLU if asked.
template <typename T>
MT_DEVICE void bias_act_rows_body(T* __restrict__ y, const T* __restrict__ bias, long long total, int o, int relu) {
    typedef typename Acc<T>::type A;
    const Unravel u(total);
    GRID_LOOP(t, total) {
        const A v = to_acc(y[t]) + to_acc(bias[u.mod(t, o)]);
        y[t] = from_acc<T>(relu && v < (A)0 ? (A)0 : v);
    }
}

// Mixed precision's unscale (minitorch_alex/amp.py), one pass per gradient instead of a cast, a
// multiply, an isfinite and an all: out = float32(g) * inv, and found[0] = 1 if any result is
// inf or NaN (every writer writes the same 1, so the race is benign). The flag is shared by all
// the gradients on a device and read once per step.
template <typename T>
MT_DEVICE void unscale_body(const T* __restrict__ g, float* __restrict__ out, long long size, double inv_,
                            int* __restrict__ found) {
    const float inv = (float)inv_;
    GRID_LOOP(i, size) {
        const float v = (float)to_acc(g[i]) * inv;
        out[i] = v;
        if (!isfinite(v)) found[0] = 1;
    }
}

#define INSTANTIATE(T, S)                                                                          \
    KERNEL void dropout_apply_##S(const T* x, const bool* keep, T* y, long long size,       \
                                                 double scale) {                                   \
        dropout_body<T>(x, keep, y, size, scale);                                                  \
    }                                                                                              \
    KERNEL void relu_forward_##S(const T* x, T* y, long long size) { relu_body<T>(x, y, size); } \
    KERNEL void relu_backward_##S(const T* y, const T* gy, T* gx, long long size) {        \
        relu_backward_body<T>(y, gy, gx, size);                                                    \
    }                                                                                              \
    KERNEL void bias_act_nchw_##S(const T* rows, const T* bias, T* y, int n, int o,   \
                                                 int p, int has_bias, int relu) {                  \
        bias_act_nchw_body<T>(rows, bias, y, n, o, p, has_bias, relu);                             \
    }                                                                                              \
    KERNEL void bias_act_rows_##S(T* y, const T* bias, long long total, int o, int relu) { \
        bias_act_rows_body<T>(y, bias, total, o, relu);                                                \
    }                                                                                              \
    KERNEL void unscale_##S(const T* g, float* out, long long size, double inv, int* found) {  \
        unscale_body<T>(g, out, size, inv, found);                                                 \
    }
FOR_EACH_FLOAT(INSTANTIATE)
