// Local response normalisation across channels, the paper's convention (alpha times the SUM of
// squares, not the average: see minitorch_alex/ops/lrn.py):
//
//   s[c] = k + alpha * sum of x[c']^2 over c' in c-before ... c+after (inside the channel group)
//   y[c] = x[c] * s[c]^-beta
//   gx[j] = gy[j] * s[j]^-beta - 2*alpha*beta * x[j] * sum over i in j-after ... j+before of
//           gy[i] * x[i] * s[i]^(-beta-1)
//
// before = size/2, after = (size-1)/2. x, y, scale, gy, gx are (N, C, H, W) C-contiguous with C
// split into `groups` groups of cg channels; no window crosses a group. One thread per element
// (n, c, p): consecutive threads take consecutive pixels p, so every read of a neighbouring
// channel is coalesced. The forward pass also writes s ("scale"), which the backward pass
// reads instead of recomputing it (the reference keeps it too).
#include "common.cuh"

template <typename T>
MT_DEVICE void lrn_forward_body(const T* __restrict__ x, T* __restrict__ y, T* __restrict__ scale,
                                 int n, int c, int p, int groups, int before, int after,
                                 double alpha_, double beta_, double k_) {
    typedef typename Acc<T>::type A;
    const A alpha = (A)alpha_, neg_beta = (A)-beta_, k = (A)k_;
    const int cg = c / groups;
    const long long total = (long long)n * c * p;
    const Unravel u(total);
    GRID_LOOP(t, total) {
        const int q = (int)u.mod(t, p), ch = (int)u.mod(u.div(t, p), c);
        const int g0 = (ch / cg) * cg, cl = ch - g0;  // first channel of the group, index inside it
        const T* base = x + u.div(t, (long long)p * c) * c * p + q;  // x[n, 0, q]
        A sum = 0;
        for (int d = max(0, cl - before); d <= min(cg - 1, cl + after); ++d) {
            const A v = to_acc(base[(long long)(g0 + d) * p]);
            sum += v * v;
        }
        const A s = k + alpha * sum;
        scale[t] = from_acc<T>(s);
        y[t] = from_acc<T>(to_acc(x[t]) * acc_pow(s, neg_beta));
    }
}

template <typename T>
MT_DEVICE void lrn_backward_body(const T* __restrict__ x, const T* __restrict__ scale,
                                  const T* __restrict__ gy, T* __restrict__ gx, int n, int c, int p,
                                  int groups, int before, int after, double alpha_, double beta_) {
    typedef typename Acc<T>::type A;
    const A neg_beta = (A)-beta_, two_alpha_beta = (A)(2.0 * alpha_ * beta_);
    const int cg = c / groups;
    const long long total = (long long)n * c * p;
    const Unravel u(total);
    GRID_LOOP(t, total) {
        const int q = (int)u.mod(t, p), ch = (int)u.mod(u.div(t, p), c);
        const int g0 = (ch / cg) * cg, cl = ch - g0;
        const long long img = u.div(t, (long long)p * c) * c * p + q;
        A inner = 0;  // the transposed window: channels i whose window holds this channel
        for (int d = max(0, cl - after); d <= min(cg - 1, cl + before); ++d) {
            const long long o = img + (long long)(g0 + d) * p;
            const A s = to_acc(scale[o]);
            inner += to_acc(gy[o]) * to_acc(x[o]) * acc_pow(s, neg_beta) / s;
        }
        const A s = to_acc(scale[t]);
        gx[t] = from_acc<T>(to_acc(gy[t]) * acc_pow(s, neg_beta) - two_alpha_beta * to_acc(x[t]) * inner);
    }
}

#define INSTANTIATE(T, S)                                                                          \
    KERNEL void lrn_forward_##S(const T* x, T* y, T* scale, int n, int c, int p,     \
                                               int groups, int before, int after, double alpha,     \
                                               double beta, double k) {                             \
        lrn_forward_body<T>(x, y, scale, n, c, p, groups, before, after, alpha, beta, k);          \
    }                                                                                              \
    KERNEL void lrn_backward_##S(const T* x, const T* scale, const T* gy, T* gx,     \
                                                int n, int c, int p, int groups, int before,        \
                                                int after, double alpha, double beta) {             \
        lrn_backward_body<T>(x, scale, gy, gx, n, c, p, groups, before, after, alpha, beta);        \
    }
FOR_EACH_FLOAT(INSTANTIATE)
