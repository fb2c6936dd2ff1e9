// Max pooling with the winner's position (overlapping windows allowed: AlexNet pools 3x3 with
// stride 2), forward and backward.
//
//   x, gx (N, C, H, W); y, gy, argmax (N, C, OH, OW); all C-contiguous.
//   argmax holds the winner's flat index y*W + x inside its input plane (int32).
//
// As in the reference (minitorch_alex/ops/pool.py, np.argmax over the window): the window is
// scanned in row-major order, ties go to the first entry, the first NaN wins, and padding never
// wins. The backward pass is a gather: one thread per input pixel adds the gradients of the
// outputs whose window covers it and whose winner it is, so no atomics are needed.
#include "common.cuh"

template <typename T>
MT_DEVICE void maxpool_forward_body(const T* __restrict__ x, T* __restrict__ y, int* __restrict__ argmax,
                                     int n, int c, int h, int w, int kh, int kw, int sh, int sw, int ph,
                                     int pw, int oh, int ow) {
    typedef typename Acc<T>::type A;
    const long long total = (long long)n * c * oh * ow;
    const Unravel u(total);
    GRID_LOOP(t, total) {
        const int ox = (int)u.mod(t, ow), oy = (int)u.mod(u.div(t, ow), oh);
        const long long nc = u.div(t, (long long)ow * oh);
        const T* plane = x + nc * h * w;
        A best = 0;
        int where = -1;
        for (int i = 0; i < kh; ++i) {
            const int yy = oy * sh + i - ph;
            if (yy < 0 || yy >= h) continue;
            for (int j = 0; j < kw; ++j) {
                const int xx = ox * sw + j - pw;
                if (xx < 0 || xx >= w) continue;
                const A v = to_acc(plane[yy * w + xx]);
                if (where < 0 || v > best || (v != v && best == best)) {
                    best = v;
                    where = yy * w + xx;
                }
            }
        }
        y[t] = from_acc<T>(best);
        argmax[t] = where;
    }
}

template <typename T>
MT_DEVICE void maxpool_backward_body(const T* __restrict__ gy, const int* __restrict__ argmax,
                                      T* __restrict__ gx, int n, int c, int h, int w, int kh, int kw,
                                      int sh, int sw, int ph, int pw, int oh, int ow) {
    typedef typename Acc<T>::type A;
    const long long total = (long long)n * c * h * w;
    const Unravel u(total);
    GRID_LOOP(t, total) {
        const int xx = (int)u.mod(t, w), yy = (int)u.mod(u.div(t, w), h);
        const long long nc = u.div(t, (long long)w * h);
        const int yp = yy + ph, xp = xx + pw, me = yy * w + xx;
        const int oy0 = yp < kh ? 0 : (yp - kh) / sh + 1, oy1 = min(yp / sh + 1, oh);
        const int ox0 = xp < kw ? 0 : (xp - kw) / sw + 1, ox1 = min(xp / sw + 1, ow);
        const long long base = nc * oh * ow;
        A sum = 0;
        for (int oy = oy0; oy < oy1; ++oy)
            for (int ox = ox0; ox < ox1; ++ox) {
                const long long o = base + oy * ow + ox;
                if (argmax[o] == me) sum += to_acc(gy[o]);
            }
        gx[t] = from_acc<T>(sum);
    }
}

#define INSTANTIATE(T, S)                                                                          \
    KERNEL void maxpool_forward_##S(const T* x, T* y, int* argmax, int n, int c,      \
                                                   int h, int w, int kh, int kw, int sh, int sw,     \
                                                   int ph, int pw, int oh, int ow) {                 \
        maxpool_forward_body<T>(x, y, argmax, n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow);          \
    }                                                                                              \
    KERNEL void maxpool_backward_##S(const T* gy, const int* argmax, T* gx, int n,    \
                                                    int c, int h, int w, int kh, int kw, int sh,     \
                                                    int sw, int ph, int pw, int oh, int ow) {        \
        maxpool_backward_body<T>(gy, argmax, gx, n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow);       \
    }
FOR_EACH_FLOAT(INSTANTIATE)
