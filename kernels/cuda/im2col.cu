// im2col and col2im, both as gathers: each thread writes one output element and nothing else,
// so no atomics are needed and the result does not depend on thread order.
//
//   x   (N, C, H, W)           C-contiguous
//   col (C*kh*kw, N*OH*OW)     row (c, i, j), column (n, oy, ox): the reference layout of
//                              minitorch_alex/ops/im2col.py, so a channel group's rows are one
//                              contiguous block and grouped convolution is one batched GEMM.
#include "common.cuh"

// grid.y walks the rows r = (c, i, j) (grid-stride), grid.x the columns q = (n, oy, ox):
// consecutive threads write consecutive columns (coalesced) and read x with stride sw.
template <typename T>
MT_DEVICE void im2col_body(const T* __restrict__ x, T* __restrict__ col, int n, int c, int h, int w,
                            int kh, int kw, int sh, int sw, int ph, int pw, int oh, int ow, double pad) {
    const int ncols = n * oh * ow, rows = c * kh * kw, plane = oh * ow;
    const T pad_value = from_acc<T>((typename Acc<T>::type)pad);
    ROW_LOOP(r, rows) {
        const int ci = r / (kh * kw), i = (r / kw) % kh, j = r % kw;
        T* out = col + (long long)r * ncols;
        GRID_LOOP(q, ncols) {
            const int qi = (int)q;  // < ncols, an int: 32-bit division
            const int ni = qi / plane, rem = qi % plane, oy = rem / ow, ox = rem % ow;
            const int y = oy * sh + i - ph, xx = ox * sw + j - pw;
            out[q] = (y >= 0 && y < h && xx >= 0 && xx < w)
                         ? x[((long long)(ni * c + ci) * h + y) * w + xx] : pad_value;
        }
    }
}

// One thread per input pixel (n, c, y, x): add up the col entries of every window position
// (oy, ox) that covers it, i.e. oy*sh + i - ph == y for some 0 <= i < kh (likewise for x).
template <typename T>
MT_DEVICE void col2im_body(const T* __restrict__ col, T* __restrict__ x, int n, int c, int h, int w,
                            int kh, int kw, int sh, int sw, int ph, int pw, int oh, int ow) {
    typedef typename Acc<T>::type A;
    const int ncols = n * oh * ow, plane = oh * ow;
    const long long total = (long long)n * c * h * w;
    const Unravel u(total);
    GRID_LOOP(t, total) {
        const int xx = (int)u.mod(t, w), y = (int)u.mod(u.div(t, w), h), ci = (int)u.mod(u.div(t, (long long)w * h), c);
        const int ni = (int)u.div(t, (long long)w * h * c);
        const int yp = y + ph, xp = xx + pw;  // position in the padded input
        // window rows oy with 0 <= yp - oy*sh < kh
        const int oy0 = yp < kh ? 0 : (yp - kh) / sh + 1, oy1 = min(yp / sh + 1, oh);
        const int ox0 = xp < kw ? 0 : (xp - kw) / sw + 1, ox1 = min(xp / sw + 1, ow);
        A sum = 0;
        for (int oy = oy0; oy < oy1; ++oy) {
            const int i = yp - oy * sh;
            for (int ox = ox0; ox < ox1; ++ox) {
                const int j = xp - ox * sw;
                const long long r = (ci * kh + i) * kw + j;
                sum += to_acc(col[r * ncols + (long long)ni * plane + oy * ow + ox]);
            }
        }
        x[t] = from_acc<T>(sum);
    }
}

#define INSTANTIATE(T, S)                                                                          \
    KERNEL void im2col_##S(const T* x, T* col, int n, int c, int h, int w, int kh,   \
                                          int kw, int sh, int sw, int ph, int pw, int oh, int ow,   \
                                          double pad) {                                            \
        im2col_body<T>(x, col, n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow, pad);                   \
    }                                                                                              \
    KERNEL void col2im_##S(const T* col, T* x, int n, int c, int h, int w, int kh,   \
                                          int kw, int sh, int sw, int ph, int pw, int oh, int ow) { \
        col2im_body<T>(col, x, n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow);                        \
    }
FOR_EACH_FLOAT(INSTANTIATE)
