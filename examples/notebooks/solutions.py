"""Reference solutions to the notebooks' exercises, one function per exercise.

Each function has the name and signature of the stub in its notebook, so the self-check cell
can test either (see ``exercises.resolve``). Try the exercise before reading on.
"""
import numpy as np

import minitorch_alex as mt
import minitorch_alex.nn.functional as F

# ---- 01_backprop_matrix_products -----------------------------------------------------------------

def my_matmul_backward(x, w, dy):
    """Gradients of a scalar loss L through y = x @ w, given dy = dL/dy.

    x (N, D), w (D, M), dy (N, M) -> (dx (N, D), dw (D, M)).
    """
    dx = dy @ w.T  # (N, M) @ (M, D): the only product of dy and w that has x's shape
    dw = x.T @ dy  # (D, N) @ (N, M): the only product of x and dy that has w's shape
    return dx, dw


def my_numerical_gradient(f, x, eps=1e-6):
    """Central differences: dL/dx[i] ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps).

    f maps an array like x to a float; x is restored before returning.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        orig = x[idx]
        x[idx] = orig + eps
        f_plus = f(x)
        x[idx] = orig - eps
        f_minus = f(x)
        x[idx] = orig  # put it back, or every later entry is measured at a shifted point
        grad[idx] = (f_plus - f_minus) / (2 * eps)
    return grad


# ---- 02_im2col ---------------------------------------------------------------------------------------

def my_conv_forward(x, w, b, stride=1, padding=0):
    """The definition as loops: x (N, C, H, W), w (O, C, kh, kw), b (O,) -> y (N, O, OH, OW)."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    y = np.empty((n, o, oh, ow), dtype=np.result_type(x, w, b))
    for i in range(n):
        for f in range(o):
            for r in range(oh):
                for q in range(ow):
                    window = xpad[i, :, r * stride : r * stride + kh, q * stride : q * stride + kw]  # (C, kh, kw)
                    y[i, f, r, q] = np.sum(window * w[f]) + b[f]  # no flip: a cross-correlation
    return y


def my_im2col(x, kh, kw, stride=1):
    """One image x (C, H, W), no padding -> (C*kh*kw, OH*OW), rows ordered (c, i, j), columns
    ordered (r, q) over the output pixels: the same layout as ``minitorch_alex.ops.im2col.im2col``."""
    c, h, w = x.shape
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    col = np.empty((c * kh * kw, oh * ow), dtype=x.dtype)
    for r in range(oh):
        for q in range(ow):
            window = x[:, r * stride : r * stride + kh, q * stride : q * stride + kw]  # (C, kh, kw)
            col[:, r * ow + q] = window.reshape(-1)  # C-order flattening gives rows (c, i, j)
    return col


def my_box_blur_weight(channels=3, k=5):
    """A conv2d weight (channels, channels, k, k) that blurs every channel on its own with a
    k x k box filter: output channel c is the mean of the k x k window of input channel c."""
    weight = np.zeros((channels, channels, k, k))
    for c in range(channels):
        weight[c, c] = 1.0 / (k * k)  # output c reads input c only: no colour mixing
    return weight


# ---- 03_conv_backward ------------------------------------------------------------------------------

def my_conv_backward(x, w, dy, stride=1, padding=0):
    """(dx, dw, db) of y = conv2d(x, w, b, stride, padding), given dy (N, O, OH, OW), with loops.

    Each output pixel's dy sends dy * w[o] back to the window it read and dy * window to w[o].
    """
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    _, _, oh, ow = dy.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    dxpad, dw = np.zeros_like(xpad), np.zeros_like(w)
    for i in range(n):
        for r in range(oh):
            for q in range(ow):
                rows, cols = slice(r * stride, r * stride + kh), slice(q * stride, q * stride + kw)
                g = dy[i, :, r, q]  # (O,): this pixel's gradient in every output channel
                dw += g[:, None, None, None] * xpad[i, :, rows, cols][None]
                dxpad[i, :, rows, cols] += np.tensordot(g, w, axes=1)  # +=: windows overlap when stride < kernel
    db = dy.sum(axis=(0, 2, 3))
    dx = dxpad[:, :, padding : padding + h, padding : padding + wd]  # the padding was not part of x
    return dx, dw, db


def my_col2im(col, x_shape, kh, kw, stride=1):
    """The adjoint of my_im2col: col (C*kh*kw, OH*OW) -> (C, H, W), adding up overlaps."""
    c, h, w = x_shape
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    x = np.zeros(x_shape, dtype=col.dtype)
    for r in range(oh):
        for q in range(ow):
            # +=, not =: a pixel in several windows gets a contribution from each
            x[:, r * stride : r * stride + kh, q * stride : q * stride + kw] += col[:, r * ow + q].reshape(c, kh, kw)
    return x


def my_conv_input_grad(dy, w, padding=0):
    """dL/dx of y = conv2d(x, w, stride=1, padding) given dy = dL/dy, as a convolution.

    dy (N, O, OH, OW), w (O, C, kh, kw) -> dx (N, C, H, W): convolve dy with the weights
    flipped in space and with in/out channels swapped, padded by k - 1 - padding ("full").
    """
    kh, kw = w.shape[2:]
    if padding > min(kh, kw) - 1:
        raise ValueError("this construction needs padding <= kernel size - 1")
    w_flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))  # (C, O, kh, kw)
    dx = F.conv2d(mt.tensor(dy), mt.tensor(w_flipped), padding=(kh - 1 - padding, kw - 1 - padding))
    return dx.numpy()


# ---- 04_alexnet_layers -----------------------------------------------------------------------------

def my_maxpool_backward(x, dy, k=3, stride=2):
    """dL/dx of y = max_pool2d(x, k, stride) (no padding), given dy: each output's gradient goes to
    its window's maximum (the first one in row-major order if tied), adding up where windows overlap."""
    n, c, oh, ow = dy.shape
    dx = np.zeros_like(x, dtype=np.result_type(x, dy))
    for i in range(n):
        for ch in range(c):
            for r in range(oh):
                for q in range(ow):
                    window = x[i, ch, r * stride : r * stride + k, q * stride : q * stride + k]
                    a, b = np.unravel_index(np.argmax(window), window.shape)
                    dx[i, ch, r * stride + a, q * stride + b] += dy[i, ch, r, q]  # a pixel may win several windows
    return dx


def my_lrn_backward(a, g, size=5, alpha=1e-4, beta=0.75, k=2.0):
    """Gradient of LRN (the paper's convention, alpha times the sum) for a, g of shape (N, C, H, W).

    b[i] = a[i] * s[i]**-beta,  s[i] = k + alpha * sum_{j in window(i)} a[j]**2
    da[j] = g[j] s[j]**-beta - 2 alpha beta a[j] * sum_{i : j in window(i)} g[i] a[i] s[i]**(-beta-1)
    """
    c = a.shape[1]
    lo, hi = size // 2, (size - 1) // 2  # window(i) = channels i-lo ... i+hi
    s = np.full_like(a, k)
    for i in range(c):
        s[:, i] += alpha * (a[:, max(0, i - lo) : i + hi + 1] ** 2).sum(axis=1)
    t = g * a * s ** (-beta - 1)  # how much output i cares about its own denominator
    da = g * s**-beta
    for j in range(c):
        # the outputs i whose window holds j are i = j-hi ... j+lo (the window transposed)
        da[:, j] -= 2 * alpha * beta * a[:, j] * t[:, max(0, j - hi) : j + lo + 1].sum(axis=1)
    return da


def my_dropout(x, dy, mask, p=0.5, training=True, inverted=True):
    """Dropout's output y and input gradient dx = dL/dx (given dy = dL/dy), with the keep-mask
    ``mask`` (True keeps a unit) while training. inverted=True (PyTorch's): y = x * mask / (1 - p)
    while training, y = x at test time; inverted=False (the paper's): y = x * mask while training,
    y = x * (1 - p) at test time."""
    if not training:  # no mask at test time; the paper scales by the keep probability instead
        scale = 1.0 if inverted else 1.0 - p
        return x * scale, dy * scale
    keep = mask.astype(x.dtype)
    scale = 1.0 / (1.0 - p) if inverted else 1.0  # inverted: the kept units are scaled up while training
    return x * keep * scale, dy * keep * scale  # y is linear in x: the backward multiplies by the same factor


def my_cross_entropy_grad(logits, target):
    """d/dlogits of mean_n -log softmax(logits[n])[target[n]]: (softmax - onehot) / N."""
    n = logits.shape[0]
    z = logits - logits.max(axis=1, keepdims=True)  # exp of large logits would overflow
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    p[np.arange(n), target] -= 1.0
    return p / n


# ---- 05_alexnet_end_to_end -------------------------------------------------------------------------

def my_alexnet_shapes(size=224, conv1_padding=2):
    """(C, H, W) after each stage of AlexNet for a size x size input, from the formulas alone."""
    def out(n, k, s, p):
        return (n + 2 * p - k) // s + 1

    shapes = {}
    n = out(size, 11, 4, conv1_padding)
    shapes["conv1"] = (96, n, n)
    n = out(n, 3, 2, 0)
    shapes["pool1"] = (96, n, n)
    n = out(n, 5, 1, 2)
    shapes["conv2"] = (256, n, n)
    n = out(n, 3, 2, 0)
    shapes["pool2"] = (256, n, n)
    for name, ch in (("conv3", 384), ("conv4", 384), ("conv5", 256)):
        n = out(n, 3, 1, 1)
        shapes[name] = (ch, n, n)
    n = out(n, 3, 2, 0)
    shapes["pool5"] = (256, n, n)
    return shapes


# ---- 06_paper_experiments --------------------------------------------------------------------------

def my_sgd_update(w, v, g, lr, momentum=0.9, weight_decay=5e-4):
    """One step of the paper's rule (section 5): v <- momentum v - weight_decay lr w - lr g; w <- w + v.

    w, v, g: arrays of one shape; returns the new (w, v), leaving the inputs unchanged.
    """
    v = momentum * v - weight_decay * lr * w - lr * g  # the learning rate inside the velocity
    return w + v, v
