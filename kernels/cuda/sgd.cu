// The paper's SGD update (section 5; minitorch_alex/optim/sgd.py), one pass per parameter:
//
//   v <- momentum * v - (weight_decay * lr) * w - lr * g
//   w <- w + v
//
// w, v, g: flat arrays of `size` elements. Master weights are float32 (or float64) even in
// mixed precision (minitorch_alex/amp.py), so only those two types are instantiated.
#include "common.cuh"

template <typename T>
MT_DEVICE void sgd_body(T* __restrict__ w, T* __restrict__ v, const T* __restrict__ g, long long size,
                         double momentum_, double wd_lr_, double lr_) {
    const T momentum = (T)momentum_, wd_lr = (T)wd_lr_, lr = (T)lr_;
    GRID_LOOP(i, size) {
        const T vi = momentum * v[i] - wd_lr * w[i] - lr * g[i];
        v[i] = vi;
        w[i] = w[i] + vi;
    }
}

#define INSTANTIATE(T, S)                                                                          \
    KERNEL void sgd_momentum_##S(T* w, T* v, const T* g, long long size, double momentum,  \
                                                double wd_lr, double lr) {                         \
        sgd_body<T>(w, v, g, size, momentum, wd_lr, lr);                                           \
    }
INSTANTIATE(float, f32)
INSTANTIATE(double, f64)
