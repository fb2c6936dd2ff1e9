"""2-D convolution on the CPU: im2col chunks + GEMMs, no full-batch column matrix.

Shapes: x (N, C, H, W), weight (O, C/G, kh, kw), bias (O,) or None, y (N, O, OH, OW); G groups,
P = OH*OW, K = C*kh*kw, Kg = K/G, Og = O/G.

The batch is cut into chunks of ``b`` images (``chunk_plan``), and the chunks are shared out
among the threads (``kernels.cpu.parallel``): each thread runs the whole pipeline on its chunk
with serial kernels and a single-threaded GEMM, in its own scratch buffers.

    forward    col = im2col(x[chunk])                (K, b*P)   scratch
               rows_g = W_g @ col_g                  (Og, b*P)  one GEMM per group, scratch
               y[chunk] = rows -> NCHW, + bias       (a copy of whole P-long runs)
    backward   rows = gy[chunk] -> (O, b*P)          bias gradient summed on the way
               col = im2col(x[chunk])                recomputed instead of stored
               gW_gᵀ += col_g @ rows_gᵀ              into the thread's own accumulator
               col_g = W_gᵀ @ rows_g                 the same scratch buffer, reused for dcol
               gx[chunk] = col2im(col)

Recomputing im2col in backward costs one gather per chunk but means the only thing a
convolution keeps for backward is its input (which the previous layer usually holds anyway)
instead of a column matrix kh*kw/(sh*sw) times its size: 1.8 GB for AlexNet at batch 128.
Chunks are big enough for efficient GEMMs (>= ``MIN_COLUMNS`` columns), small enough that each
thread's column matrix stays near ``TARGET_BYTES`` (cache-sized), and there are at least as
many chunks as threads.

Stride-1 layers use fewer multiply-adds than im2col's:

* 3x3 (AlexNet's conv3-5): Winograd's F(5x5, 3x3) (``winograd5.py``) for all three products, with
  the same chunking: 0.29x the multiply-adds on 13x13 maps ('winograd5'; F(4x4, 3x3) in
  ``winograd.py``, 0.38x and more accurate in float32, is 'winograd4'; F(2x2, 3x3), 0.52x, 'winograd').
* larger kernels (conv2, 5x5): products in the frequency domain (``fourier.py``): 0.1x the
  multiply-adds for conv2, and DFTs done as GEMMs.

So do strided layers whose kernel spans 3 strides (conv1, 11x11 stride 4): split into their
polyphase components (``polyphase.py``), they are a 3x3 stride-1 convolution, which F(5x5, 3x3)
computes with 0.26x the multiply-adds of im2col ('polyphase').

``algorithm`` (one of ``ALGORITHMS``) picks explicitly; 'auto' takes the above where it applies
and im2col elsewhere (1x1, kernels smaller than 3x3, other strided ones).
For conv3-5 the Fourier path, also correct, measured slower than Winograd: their weight
spectra (e.g. 88 MB for conv3) cost more memory traffic than the products save.
"""
from __future__ import annotations

import numpy as np

from ..common import conv_output_size, needs
from . import fourier, polyphase, winograd, winograd5
from .activation import relu_backward, relu_backward_channel_sums
from .im2col import col2im_into, im2col_into, nchw_to_rows, nchw_to_rows_relu, rows_to_nchw
from .parallel import get_num_threads, run_parallel, run_parallel_accumulate, split_range
from .workspace import transient, workspace

ALGORITHMS = ("auto", "im2col", "winograd", "winograd4", "winograd5", "fourier", "polyphase")

TARGET_BYTES = 8 << 20  # column-matrix scratch per thread
MIN_COLUMNS = 512  # fewer GEMM columns than this and the GEMM loses efficiency


def chunk_images(n, k_rows, p, itemsize, threads=None):
    """Images per chunk: enough for MIN_COLUMNS GEMM columns unless that exceeds TARGET_BYTES of
    column matrix, at least 1, and small enough that every thread gets a chunk."""
    threads = get_num_threads() if threads is None else threads
    by_columns = -(-MIN_COLUMNS // p)
    by_bytes = max(1, TARGET_BYTES // max(1, k_rows * p * itemsize))
    per_thread = -(-n // threads)
    return int(max(1, min(by_columns, by_bytes, per_thread)))


def balanced_chunks(n, max_images):
    """(first image, image count) of chunks of at most ``max_images`` images, as equal as possible
    and as many as a multiple of the thread count, so every thread gets the same work."""
    threads = get_num_threads()
    count = threads * -(-n // (threads * max_images))
    return [(a, b - a) for a, b in split_range(n, count)]


def chunk_plan(n, k_rows, p, itemsize):
    """(first image, image count) of every chunk."""
    return balanced_chunks(n, chunk_images(n, k_rows, p, itemsize))


def winograd_for(dtype):
    """The Winograd variant that 3x3 stride-1 work in ``dtype`` takes: F(5x5, 3x3) in float32, the
    fastest; F(4x4, 3x3) in float64, whose use is accuracy (gradient checks): F(5x5, 3x3) rounds
    ~3x as much there, and that rounding divided by a finite-difference step of 1e-6 fails a
    1e-6 gradient check of conv1's polyphase path on small maps (F(4x4, 3x3)'s passes)."""
    return "winograd5" if np.dtype(dtype) == np.float32 else "winograd4"


def choose_algorithm(kernel_size, stride, padding, algorithm="auto", dtype=np.float32):
    """The algorithm (one of ``ALGORITHMS`` but 'auto') for this geometry and ``dtype``; ``algorithm``
    other than 'auto' is checked to apply."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"conv2d: algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    kernel_size, stride, padding = tuple(kernel_size), tuple(stride), tuple(padding)
    winograd_ok = winograd.eligible(kernel_size, stride, padding)
    fourier_ok = fourier.eligible(kernel_size, stride, padding)
    polyphase_ok = polyphase.eligible(kernel_size, stride)
    if algorithm in WINOGRAD and not winograd_ok:
        raise ValueError(f"conv2d: Winograd F(m x m, 3x3) needs 3x3 kernels, stride 1 and padding <= 2, got "
                         f"kernel {kernel_size}, stride {stride}, padding {padding}")
    if algorithm == "fourier" and not fourier_ok:
        raise ValueError(f"conv2d: the Fourier algorithm needs stride 1, got stride {stride}")
    if algorithm == "polyphase" and not polyphase_ok:
        raise ValueError(f"conv2d: the polyphase algorithm needs a stride > 1 and a kernel spanning 3 strides "
                         f"(ceil(kernel / stride) = 3 in both directions), got kernel {kernel_size}, stride {stride}")
    if algorithm != "auto":
        return algorithm
    if polyphase_ok:  # conv1: fwd + bwd ~0.75x im2col's time at batch 32 and 128
        return "polyphase"
    if winograd_ok:  # F(5x5, 3x3): on conv3-5 at batch 128 fwd + bwd ~25% faster than F(4x4, 3x3) (itself
        return winograd_for(dtype)  # ~13% faster than F(2x2, 3x3)): 3x3 tiles cover 13x13 maps with 0.77x the work
    if fourier_ok and kernel_size[0] * kernel_size[1] > 9:
        return "fourier"
    return "im2col"


def conv2d_forward(x, weight, bias, stride, padding, groups, relu=False, algorithm="auto", saved=None):
    """y (N, O, OH, OW) = conv(x, weight) + bias, then ReLU if ``relu``. x, weight C-contiguous.
    ``saved``: a dict to hand to the matching ``conv2d_backward`` (what it can reuse), or None
    when no backward call will follow."""
    if saved is not None:
        return _conv2d_forward(x, weight, bias, stride, padding, groups, relu, algorithm, saved)
    with transient():  # evaluation: this call's scratch is free for the next layer
        return _conv2d_forward(x, weight, bias, stride, padding, groups, relu, algorithm, None)


def _conv2d_forward(x, weight, bias, stride, padding, groups, relu, algorithm, saved):
    algorithm = choose_algorithm(weight.shape[2:], stride, padding, algorithm, x.dtype)
    if algorithm in WINOGRAD:
        return _winograd_forward(x, weight, bias, padding, groups, relu, WINOGRAD[algorithm], saved)
    if algorithm == "fourier":
        return fourier.conv2d_forward(x, weight, bias, padding, groups, relu, saved)
    if algorithm == "polyphase":
        return _polyphase_forward(x, weight, bias, stride, padding, groups, relu)
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    (sh, sw), (ph, pw) = stride, padding
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    p, k_rows = oh * ow, c * kh * kw
    kg, og = k_rows // groups, o // groups
    dtype = x.dtype
    y = np.empty((n, o, oh, ow), dtype=dtype)
    y3 = y.reshape(n, o, p)
    wmat = weight.reshape(groups, og, kg)
    b = bias if bias is not None else np.zeros(o, dtype=dtype)
    pad = dtype.type(0)

    def chunk(task):
        n0, nb = task
        col = workspace("conv.col", (k_rows, nb * p), dtype)
        rows = workspace("conv.rows", (o, nb * p), dtype)
        im2col_into(x, col, n0, nb, kh, kw, sh, sw, ph, pw, oh, ow, pad)
        for g in range(groups):
            np.matmul(wmat[g], col[g * kg:(g + 1) * kg], out=rows[g * og:(g + 1) * og])
        rows_to_nchw(rows, b, y3, n0, nb, relu)

    run_parallel(chunk, chunk_plan(n, k_rows, p, dtype.itemsize), uses_blas=True)
    return y


def conv2d_backward(x, weight, gy, stride, padding, groups, need_x=True, need_weight=True, need_bias=True,
                    algorithm="auto", relu_output=None, saved=None):
    """(gx, gweight, gbias) for y = conv2d(x, weight) + bias and output gradient gy (N, O, OH, OW).

    Entries not needed are None. gbias is summed in float64 and returned in x's dtype.
    ``relu_output``: for a convolution fused with a ReLU (``conv2d_forward(..., relu=True)``),
    its output; gy is then the gradient of the ReLU's output and passes only where that output
    is positive (on the im2col path inside the move of gy into the GEMM layout, at no extra pass).
    ``saved``: the dict given to the forward call, if any.
    """
    algorithm = choose_algorithm(weight.shape[2:], stride, padding, algorithm, x.dtype)
    bias_sums = None  # the bias gradient in float64, where the ReLU's pass sums it
    if algorithm != "im2col" and relu_output is not None:
        if need_bias and algorithm != "fourier":  # (the frequency domain has it for free)
            gy, bias_sums = relu_backward_channel_sums(relu_output, gy)
        else:
            gy = relu_backward(relu_output, gy)
    if algorithm in WINOGRAD:
        return _winograd_backward(x, weight, np.ascontiguousarray(gy), padding, groups, need_x, need_weight, need_bias,
                                  WINOGRAD[algorithm], saved, bias_sums)
    if algorithm == "fourier":
        return fourier.conv2d_backward(x, weight, gy, padding, groups, need_x, need_weight, need_bias, saved)
    if algorithm == "polyphase":
        return _polyphase_backward(x, weight, np.ascontiguousarray(gy), stride, padding, groups, need_x, need_weight,
                                   need_bias, bias_sums)
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    (sh, sw), (ph, pw) = stride, padding
    oh, ow = gy.shape[2], gy.shape[3]
    p, k_rows = oh * ow, c * kh * kw
    kg, og = k_rows // groups, o // groups
    dtype = x.dtype
    gy3 = np.ascontiguousarray(gy).reshape(n, o, p)
    y3 = np.ascontiguousarray(relu_output).reshape(n, o, p) if relu_output is not None else None
    wmat = weight.reshape(groups, og, kg)
    gx = np.empty_like(x) if need_x else None
    pad = dtype.type(0)
    def new_sums():  # (transposed weight gradient, bias gradient) of a run of chunks
        return np.zeros((groups, kg, og), dtype=dtype) if need_weight else None, np.zeros(o)

    def chunk(task, sums):
        n0, nb = task
        gw_t, gb = sums
        rows = workspace("conv.rows", (o, nb * p), dtype)
        col = workspace("conv.col", (k_rows, nb * p), dtype)
        if y3 is None:
            nchw_to_rows(gy3, rows, gb, n0, nb)
        else:
            nchw_to_rows_relu(gy3, y3, rows, gb, n0, nb)
        if need_weight:
            im2col_into(x, col, n0, nb, kh, kw, sh, sw, ph, pw, oh, ow, pad)
            part = workspace("conv.gw_part", (kg, og), dtype)
            for g in range(groups):  # gW_gᵀ = col_g @ rows_gᵀ: 10-20% faster than rows_g @ col_gᵀ here
                np.matmul(col[g * kg:(g + 1) * kg], rows[g * og:(g + 1) * og].T, out=part)
                gw_t[g] += part
        if need_x:
            for g in range(groups):
                np.matmul(wmat[g].T, rows[g * og:(g + 1) * og], out=col[g * kg:(g + 1) * kg])
            col2im_into(col, gx, n0, nb, kh, kw, sh, sw, ph, pw, oh, ow)

    parts = run_parallel_accumulate(chunk, chunk_plan(n, k_rows, p, dtype.itemsize), new_sums, uses_blas=True)
    gw_t, gb = parts[0]
    for more_gw, more_gb in parts[1:]:
        gb += more_gb
        if need_weight:
            gw_t += more_gw
    gw = np.ascontiguousarray(gw_t.transpose(0, 2, 1)).reshape(weight.shape) if need_weight else None
    return gx, gw, (gb.astype(dtype) if need_bias else None)


# ----- Winograd F(2x2, 3x3), F(4x4, 3x3) and F(5x5, 3x3) ---------------------------------------------
class WinogradVariant:
    """The kernels of one Winograd algorithm F(m x m, 3x3): tiles of m x m outputs, transformed
    tiles of alpha x alpha = ``positions`` values."""

    def __init__(self, m, tiles, input_transform, output_transform, weight_transform, grad_output_transform,
                 weight_grad_transform):
        self.m, self.positions, self.tiles = m, (m + 2) ** 2, tiles
        self.input_transform, self.output_transform = input_transform, output_transform
        self.weight_transform, self.grad_output_transform = weight_transform, grad_output_transform
        self.weight_grad_transform = weight_grad_transform


WINOGRAD = {
    "winograd": WinogradVariant(2, winograd.tiles, winograd.input_transform, winograd.output_transform,
                                winograd.weight_transform, winograd.grad_output_transform, winograd.weight_grad_transform),
    "winograd4": WinogradVariant(4, winograd.tiles4, winograd.input_transform4, winograd.output_transform4,
                                 winograd.weight_transform4, winograd.grad_output_transform4,
                                 winograd.weight_grad_transform4),
    "winograd5": WinogradVariant(5, winograd5.tiles5, winograd5.input_transform5, winograd5.output_transform5,
                                 winograd5.weight_transform5, winograd5.grad_output_transform5,
                                 winograd5.weight_grad_transform5),
}

# 1024 tiles = 16 images of AlexNet's 13x13 maps per chunk for F(2x2, 3x3), one chunk per thread at batch 32
# (512 tiles and 24 MB, i.e. 8 images, measured ~10% slower on conv3-5 at batch 32 and ~5% on a whole step)
WINOGRAD_MIN_TILES = 1024  # GEMM columns (tiles) per chunk
WINOGRAD_TARGET_BYTES = 48 << 20  # transformed input + output tiles per chunk


def winograd_plan(n, tiles_per_image, channels, itemsize, positions=16):
    """Chunks of images for the Winograd path: >= WINOGRAD_MIN_TILES tiles unless the
    transformed tiles (input and output, ``channels`` = C + O) exceed WINOGRAD_TARGET_BYTES,
    balanced over the threads."""
    by_tiles = -(-WINOGRAD_MIN_TILES // tiles_per_image)
    by_bytes = max(1, WINOGRAD_TARGET_BYTES // max(1, positions * channels * tiles_per_image * itemsize))
    return balanced_chunks(n, int(max(1, min(by_tiles, by_bytes))))


def _transform_weights(variant, weight, flip):
    """U (positions, O, Cg), or (positions, Cg, O) for ``flip``: the output channels split among the threads."""
    o, cg = weight.shape[:2]
    npos = variant.positions
    u = np.empty((npos, cg, o) if flip else (npos, o, cg), dtype=weight.dtype)

    def part(r):
        variant.weight_transform(weight[r[0]:r[1]], u[:, :, r[0]:r[1]] if flip else u[:, r[0]:r[1]], flip)

    run_parallel(part, split_range(o, get_num_threads()))
    return u


def _transform_weight_grad(variant, s, shape):
    """gw (O, Cg, 3, 3) from the transformed weight gradient s (positions, O, Cg), in parallel."""
    gw = np.empty(shape, dtype=s.dtype)
    run_parallel(lambda r: variant.weight_grad_transform(s[:, r[0]:r[1]], gw[r[0]:r[1]]),
                 split_range(shape[0], get_num_threads()))
    return gw


def _winograd_forward(x, weight, bias, padding, groups, relu, variant, saved=None, phases=None):
    """``saved``: a dict for the backward call, or None. Given one, the transformed input of every
    chunk is kept there (for conv3-5 at batch 128, 75-113 MB a layer) so the weight gradient
    need not transform x again: one of the backward's three transforms. ``phases``: (kernel_size,
    stride, padding) of a strided convolution whose polyphase components (``_split_phases``) of x
    are this one's input: each chunk splits its own images, the same values as splitting all."""
    n, c, h, w = x.shape if phases is None else polyphase.phase_shape(x.shape, *phases)
    o, cg = weight.shape[:2]
    og = o // groups
    (ph, pw), dtype, npos = padding, x.dtype, variant.positions
    oh, ow = h + 2 * ph - 2, w + 2 * pw - 2
    th, tw = variant.tiles(oh), variant.tiles(ow)
    u = _transform_weights(variant, weight, False)
    y = np.empty((n, o, oh, ow), dtype=dtype)
    b = bias if bias is not None else np.zeros(o, dtype=dtype)
    plan = winograd_plan(n, th * tw, c + o, dtype.itemsize, npos)
    kept = [None] * len(plan) if saved is not None else None

    def chunk(task):
        i, (n0, nb) = task
        t = nb * th * tw
        if kept is None:
            v = workspace("wino.v", (c, npos, t), dtype)
        else:
            v = kept[i] = np.empty((c, npos, t), dtype=dtype)
        m = workspace("wino.m", (o, npos, t), dtype)
        if phases is None:
            variant.input_transform(x, v, n0, nb, ph, pw, th, tw)
        else:
            xs = workspace("wino.phases", (nb, c, h, w), dtype)
            polyphase.split_phases(x[n0:n0 + nb], xs, 0, nb, *phases[1], *phases[2])
            variant.input_transform(xs, v, 0, nb, ph, pw, th, tw)
        for xi in range(npos):
            for g in range(groups):
                np.matmul(u[xi, g * og:(g + 1) * og], v[g * cg:(g + 1) * cg, xi], out=m[g * og:(g + 1) * og, xi])
        variant.output_transform(m, b, y, n0, nb, th, tw, relu)

    run_parallel(chunk, list(enumerate(plan)), uses_blas=True)
    if kept is not None:
        saved["winograd"] = (variant, plan, kept)
    return y


def _winograd_backward(x, weight, gy, padding, groups, need_x, need_weight, need_bias, variant, saved=None,
                       bias_sums=None):
    """``saved``: the forward call's dict; its transformed inputs are used (and released) if there.
    ``bias_sums``: gy summed per channel in float64, if the caller has it already."""
    n, c, h, w = x.shape
    o, cg = weight.shape[:2]
    og = o // groups
    (ph, pw), dtype, npos = padding, x.dtype, variant.positions
    oh, ow = gy.shape[2], gy.shape[3]
    th, tw = variant.tiles(oh), variant.tiles(ow)  # tiles of y (forward and weight gradient)
    xth, xtw = variant.tiles(h), variant.tiles(w)  # tiles of x (input gradient)
    gx = np.empty_like(x) if need_x else None
    if need_x:  # the input gradient is a correlation of gy with the flipped kernels, padding 2 - p
        u_flip = _transform_weights(variant, weight, True)
        no_bias = np.zeros(c, dtype=dtype)
    kept = saved.pop("winograd", None) if saved is not None else None
    if kept is not None and kept[0] is variant:  # the forward's chunks, so each finds its transformed input
        plan, kept = kept[1], kept[2]
    else:
        plan, kept = winograd_plan(n, max(th * tw, xth * xtw), c + o, dtype.itemsize, npos), None

    def chunk(task, s):  # s: the transformed weight gradient (positions, O, Cg) of this run of chunks
        i, (n0, nb) = task
        if need_x:
            t = nb * xth * xtw
            v = workspace("wino.v", (o, npos, t), dtype)
            m = workspace("wino.m", (c, npos, t), dtype)
            variant.input_transform(gy, v, n0, nb, 2 - ph, 2 - pw, xth, xtw)
            for xi in range(npos):
                for g in range(groups):
                    np.matmul(u_flip[xi, :, g * og:(g + 1) * og], v[g * og:(g + 1) * og, xi],
                              out=m[g * cg:(g + 1) * cg, xi])
            variant.output_transform(m, no_bias, gx, n0, nb, xth, xtw, False)
        if need_weight:
            t = nb * th * tw
            z = workspace("wino.z", (o, npos, t), dtype)
            part = workspace("wino.part", (og, cg), dtype)
            variant.grad_output_transform(gy, z, n0, nb, th, tw)
            if kept is None:
                v = workspace("wino.v", (c, npos, t), dtype)
                variant.input_transform(x, v, n0, nb, ph, pw, th, tw)
            else:
                v, kept[i] = kept[i], None
            for xi in range(npos):
                for g in range(groups):
                    np.matmul(z[g * og:(g + 1) * og, xi], v[g * cg:(g + 1) * cg, xi].T, out=part)
                    s[xi, g * og:(g + 1) * og] += part

    new_sum = (lambda: np.zeros((npos, o, cg), dtype=dtype)) if need_weight else (lambda: None)
    parts = run_parallel_accumulate(chunk, list(enumerate(plan)), new_sum, uses_blas=True)
    gw = None
    if need_weight:
        s = parts[0]
        for more in parts[1:]:
            s += more
        gw = _transform_weight_grad(variant, s, weight.shape)
    gb = None
    if need_bias:
        gb = (bias_sums if bias_sums is not None else gy.sum(axis=(0, 2, 3), dtype=np.float64)).astype(dtype)
    return gx, gw, gb


# ----- strided layers through their polyphase components -------------------------------------------
def _split_phases(x, kernel_size, stride, padding):
    """The stacked polyphase components of x (``polyphase.phase_shape``), images split among the threads."""
    xs = np.empty(polyphase.phase_shape(x.shape, kernel_size, stride, padding), dtype=x.dtype)
    run_parallel(lambda r: polyphase.split_phases(x, xs, r[0], r[1] - r[0], *stride, *padding),
                 split_range(x.shape[0], get_num_threads()))
    return xs


def _polyphase_forward(x, weight, bias, stride, padding, groups, relu):
    # nothing kept for the backward: conv1's transformed input would be 173 MB at batch 128, and
    # transforming its 48 channels again is cheap; nor made whole here: each chunk splits its own
    ws = polyphase.split_weight(weight, stride)
    return _winograd_forward(x, ws, bias, (0, 0), groups, relu, WINOGRAD[winograd_for(x.dtype)],
                             phases=(weight.shape[2:], stride, padding))


def _polyphase_backward(x, weight, gy, stride, padding, groups, need_x, need_weight, need_bias, bias_sums=None):
    kernel_size = weight.shape[2:]
    if need_weight:
        xs = _split_phases(x, kernel_size, stride, padding)
    else:  # only its shape is used
        xs = np.empty(polyphase.phase_shape(x.shape, kernel_size, stride, padding), dtype=x.dtype)
    gxs, gws, gb = _winograd_backward(xs, polyphase.split_weight(weight, stride), gy, (0, 0), groups, need_x,
                                      need_weight, need_bias, WINOGRAD[winograd_for(x.dtype)],
                                      bias_sums=bias_sums)
    gx = gw = None
    if need_x:
        gx = np.empty_like(x)
        run_parallel(lambda r: polyphase.merge_phase_grads(gxs, gx, r[0], r[1] - r[0], *stride, *padding),
                     split_range(x.shape[0], get_num_threads()))
    if need_weight:
        gw = polyphase.merge_weight_grad(gws, kernel_size, stride)
    return gx, gw, gb


# ----- the ops, with the interface of ``minitorch_alex.dispatch`` ----------------------------------
class Conv2d:
    """conv2d(x, weight) + bias: keeps x (C-contiguous), not the column matrix, and what the
    forward leaves for the backward in ``saved``; nothing when no gradient is wanted."""

    needs_input_grad = ()  # not told: every input needs a gradient (``needs`` in kernels/common.py)
    relu = False

    def forward(self, x, weight, bias=None, stride=(1, 1), padding=(0, 0), groups=1):
        x, weight = np.ascontiguousarray(x), np.ascontiguousarray(weight)
        self.count = 2 if bias is None else 3
        saved = {} if any(needs(self, self.count)) else None
        y = conv2d_forward(x, weight, bias, stride, padding, groups, relu=self.relu, saved=saved)
        if saved is not None:
            self.x, self.weight, self.stride, self.padding, self.groups = x, weight, stride, padding, groups
            self.saved, self.y = saved, (y if self.relu else None)  # y: the backward's ReLU mask
        return y

    def backward(self, gy):
        need = needs(self, self.count)
        gx, gw, gb = conv2d_backward(self.x, self.weight, gy, self.stride, self.padding, self.groups,
                                     need_x=need[0], need_weight=need[1], need_bias=self.count == 3 and need[2],
                                     relu_output=self.y, saved=self.saved)
        return (gx, gw, gb) if self.count == 3 else (gx, gw)


class Conv2dReLU(Conv2d):
    """relu(conv2d(x, weight) + bias) as one op: the ReLU rides along in the kernel that writes
    the output, and its backward mask in the one that reads gy, so neither the pre-activation
    map nor a separate ReLU pass (forward or backward) exists. Keeps x and the output, as conv +
    ReLU did."""

    relu = True
