"""The cells of 02_im2col.ipynb: edit them here, then run ``python build_notebooks.py 02``."""
from cells import EXERCISE_NOTE, SETUP, code, md

CELLS = [
    md(
        r"""
        # 2. im2col: convolution as one matrix product

        A convolution slides a small filter over the image and takes a dot product at every
        position. Written as loops that is seven nested loops; rewritten with **im2col** ("image to
        columns") it becomes one matrix product, which a BLAS library runs near the machine's peak.
        This notebook

        1. states the output-size formula and has you write the convolution as loops;
        2. prints the unrolled matrix of a tiny input, has you build it with loops, then shows the
           library's version (one strided copy per kernel tap);
        3. builds AlexNet's conv1 as a $363 \times 3025$ matrix per image;
        4. checks the naive loop and im2col equal on one input, then times them;
        5. applies hand-made filters (edges, colour) to a photo.
        """
    ),
    SETUP,
    code(
        """
        from minitorch_alex.ops.im2col import col2im, conv_output_size, im2col
        """,
        "setup",
    ),
    md(
        r"""
        ## What a convolution computes

        For an input $x$ of shape $(N, C, H, W)$ and weights $w$ of shape $(O, C, k_h, k_w)$, with
        stride $s$ and zero padding $p$ (written into $x_{\text{pad}}$):

        $$y[n, o, r, q] = b[o] + \sum_{c=0}^{C-1} \sum_{i=0}^{k_h-1} \sum_{j=0}^{k_w-1} w[o, c, i, j]\; x_{\text{pad}}[n, c,\; r s + i,\; q s + j]$$

        (a cross-correlation: the filter is not flipped, as in every deep-learning framework). For a
        fixed output pixel $(r, q)$ the triple sum is a dot product between the filter and one
        **window** of the input. im2col copies every window into a column of a matrix; then all the dot
        products of all the filters are a single matrix product.
        """
    ),
    md(
        r"""
        ## The output size

        Along one axis the window's first pixel can sit at $0, s, 2s, \dots$ as long as the window fits
        in the padded length $n + 2p$, i.e. up to $n + 2p - k$. That gives

        $$n_{\text{out}} = \left\lfloor \frac{n + 2p - k}{s} \right\rfloor + 1 .$$

        When $s$ does not divide $n + 2p - k$ the floor drops the last few pixels. The paper's
        "224×224 input, 55×55 conv1 output" is an instance: without padding the formula gives
        $\lfloor 53.25 \rfloor + 1 = 54$. There are three ways to get 55: pad conv1 by 2 (this package),
        feed 227×227 crops (Caffe), or round up instead of down, $\lceil (n + 2p - k)/s \rceil + 1$, which
        is what cuda-convnet's output-size rule, the paper's own code, does for an unpadded 224 (its last
        window then hangs over the edge and sees zeros).
        """
    ),
    code(
        """
        cases = [
            ("conv1 11x11/4, 224 input, padding 2 (this package)", 224, 11, 4, 2),
            ("conv1 11x11/4, 224 input, no padding", 224, 11, 4, 0),
            ("conv1 11x11/4, 227 input, no padding (Caffe)", 227, 11, 4, 0),
            ("pool1 3x3/2", 55, 3, 2, 0),
            ("conv2 5x5, padding 2", 27, 5, 1, 2),
            ("pool2 3x3/2", 27, 3, 2, 0),
            ("conv3, conv4, conv5 3x3, padding 1", 13, 3, 1, 1),
            ("pool5 3x3/2", 13, 3, 2, 0),
        ]
        for name, n, k, s, p in cases:
            exact = (n + 2 * p - k) / s + 1
            print(f"{name:52s} ({n} + 2·{p} - {k}) // {s} + 1 = {conv_output_size(n, k, s, p):3d}   (without the floor: {exact:.2f})")
        """
    ),
    EXERCISE_NOTE,
    md(
        r"""
        ### Exercise 2.1: a convolution with loops

        Before any trick, write the definition above as loops: for each image, each filter and each output
        pixel, one dot product between the filter and the window under it, plus the bias. Pad with
        `np.pad` and use the output-size formula. No flipping: this is a cross-correlation.
        """
    ),
    code(
        '''
        def my_conv_forward(x, w, b, stride=1, padding=0):
            """y = conv2d(x, w, b, stride, padding) with loops. x (N, C, H, W), w (O, C, kh, kw), b (O,) -> (N, O, OH, OW)."""
            raise NotImplementedError  # your code here
        ''',
        "exercise",
    ),
    code(
        """
        # Self-check: against F.conv2d on shapes with non-square kernels, strides and padding.
        with check(my_conv_forward) as conv_forward:
            rng = np.random.default_rng(6)
            for n, c, h, wd, o, kh, kw, s, p in [(1, 1, 5, 5, 1, 3, 3, 1, 0), (2, 3, 7, 6, 4, 3, 2, 1, 1),
                                                 (1, 2, 9, 9, 3, 3, 3, 2, 1), (2, 3, 15, 15, 2, 5, 4, 4, 2)]:
                x, w, b = rng.standard_normal((n, c, h, wd)), rng.standard_normal((o, c, kh, kw)), rng.standard_normal(o)
                want = F.conv2d(mt.tensor(x), mt.tensor(w), mt.tensor(b), stride=s, padding=p).numpy()
                got = conv_forward(x, w, b, s, p)
                assert np.shape(got) == want.shape, f"got shape {np.shape(got)}, want {want.shape} (the output-size formula?)"
                assert np.allclose(got, want), f"values differ for w {w.shape}, stride {s}, padding {p}: the bias? a flipped filter?"
            passed(conv_forward, "matches F.conv2d")
        """,
        "check",
    ),
    md(
        r"""
        ## The unrolled matrix of a tiny input

        One image, two channels of $4\times4$, filled with $0, 1, 2, \dots$ so every entry says where
        it came from; a $3\times3$ kernel, stride 1, no padding, so there are $2\times2$ windows.
        """
    ),
    code(
        """
        x = np.arange(2 * 4 * 4, dtype=np.float64).reshape(1, 2, 4, 4)
        print("x[0] (channel, row, column):")
        print(x[0])
        col = im2col(x, (3, 3))  # stride (1, 1) and padding (0, 0) by default
        print("\\ncol shape", col.shape, "= (C·kh·kw, N·OH·OW) = (2·3·3, 1·2·2)\\n")
        print("row (c,i,j) |" + "".join(f"  window ({r},{q})" for r in range(2) for q in range(2)))
        for row, (c, i, j) in enumerate(np.ndindex(2, 3, 3)):
            print(f"  ({c},{i},{j})    |" + "".join(f"{v:15.0f}" for v in col[row]))
        """
    ),
    md(
        r"""
        * **Column** $(r, q)$ is the window under output pixel $(r, q)$, flattened channel by channel:
          the first column holds 0 1 2 / 4 5 6 / 8 9 10 from channel 0, then 16 17 18 / ... from channel 1.

        Build that matrix yourself before reading on.
        """
    ),
    md(
        r"""
        ### Exercise 2.2: im2col with loops

        For **one** image `x` of shape `(C, H, W)`, no padding, return the `(C·kh·kw, OH·OW)` matrix
        with the library's layout: rows ordered `(c, i, j)`, columns ordered `(r, q)` (row-major over
        the output pixels). Loops are fine.
        """
    ),
    code(
        '''
        def my_im2col(x, kh, kw, stride=1):
            """x (C, H, W) -> (C*kh*kw, OH*OW): column r*OW + q is the window under output pixel (r, q)."""
            raise NotImplementedError  # your code here
        ''',
        "exercise",
    ),
    code(
        """
        # Self-check: against the library's im2col on several shapes and strides.
        with check(my_im2col) as im2col_fn:
            rng = np.random.default_rng(4)
            for c, h, w, kh, kw, s in [(1, 4, 4, 3, 3, 1), (2, 5, 6, 3, 2, 1), (3, 7, 7, 3, 3, 2), (2, 9, 8, 4, 3, 3)]:
                x = rng.standard_normal((c, h, w))
                got = im2col_fn(x, kh, kw, s)
                want = im2col(x[None], (kh, kw), (s, s))
                assert np.shape(got) == want.shape, f"got shape {np.shape(got)}, want {want.shape}"
                assert np.allclose(got, want), f"values differ for C={c}, {h}x{w}, kernel {kh}x{kw}, stride {s}: is the row order (c, i, j)?"
            passed(im2col_fn, "matches the library's im2col")
        """,
        "check",
    ),
    md(
        r"""
        Now the library's way.

        * **Row** $(c, i, j)$ is what kernel tap $(i, j)$ of channel $c$ sees in every window. That is a
          strided slice of the input, `x[:, c, i : i + s·OH : s, j : j + s·OW : s]`. So the library does not
          loop over the $N \cdot OH \cdot OW$ windows but over the $k_h k_w$ taps, copying one slice each:
        """
    ),
    code(
        """
        x = np.arange(2 * 4 * 4, dtype=np.float64).reshape(1, 2, 4, 4)  # the tiny input again
        col = im2col(x, (3, 3))
        row = 1 * 9 + 2 * 3 + 0  # row (c=1, i=2, j=0)
        assert np.array_equal(col[row], x[0, 1, 2:4, 0:2].ravel())
        listing(im2col)
        """
    ),
    md(
        r"""
        (`xp = get_array_module(x)` is `numpy` for a NumPy array and `cupy` for a GPU array, so the same
        reference code runs on either device: read `xp` as `np`.)

        With the filters flattened the same way, $w$ becomes an $(O,\; C k_h k_w)$ matrix and the whole
        convolution is $Y = W_{\text{mat}} \cdot \text{col}$, an $(O,\; N\cdot OH\cdot OW)$ matrix that only
        needs reshaping. Rows are ordered channel first, so the rows of a group of channels are a
        contiguous block: a grouped convolution (AlexNet's conv2, conv4, conv5) is one product per
        block of rows.
        """
    ),
    code(
        """
        rng = np.random.default_rng(0)
        w = rng.standard_normal((3, 2, 3, 3))  # 3 filters over 2 channels
        y_gemm = (w.reshape(3, -1) @ col).reshape(3, 1, 2, 2).transpose(1, 0, 2, 3)  # (O, N·OH·OW) -> (N, O, OH, OW)
        y_conv = F.conv2d(mt.tensor(x), mt.tensor(w)).numpy()
        print(y_conv[0])
        assert np.allclose(y_gemm, y_conv)
        """
    ),
    md(
        r"""
        ## AlexNet's conv1 as one matrix per image

        conv1 has 96 filters of $3 \times 11 \times 11 = 363$ weights and produces $55 \times 55 = 3025$
        outputs per image, so per image im2col builds a $363 \times 3025$ matrix and the layer is a
        $(96 \times 363) \cdot (363 \times 3025)$ product.
        """
    ),
    code(
        """
        rng = np.random.default_rng(1)
        x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
        w = (0.01 * rng.standard_normal((96, 3, 11, 11))).astype(np.float32)  # the paper's N(0, 0.01²) initialisation

        col = im2col(x, (11, 11), stride=(4, 4), padding=(2, 2))
        y = (w.reshape(96, -1) @ col).reshape(96, 55, 55)
        print("col:", col.shape, " weights:", w.reshape(96, -1).shape, " output:", y.shape)
        assert col.shape == (363, 3025)
        assert np.allclose(y, F.conv2d(mt.tensor(x), mt.tensor(w), stride=4, padding=2).numpy()[0], atol=1e-5)

        print(f"input {x.nbytes / 1e6:.2f} MB, col {col.nbytes / 1e6:.2f} MB: {col.size / x.size:.1f} times larger")
        print(f"(each pixel lies in about (11/4)² = {(11 / 4) ** 2:.1f} windows); a batch of 128 needs {128 * col.nbytes / 1e9:.2f} GB of columns")
        print(f"the product: 2·96·363·3025 = {2 * 96 * 363 * 3025 / 1e6:.0f} MFLOP per image")
        """
    ),
    md(
        """
        The price of im2col is memory: every pixel is copied into each window that contains it.
        Implementations that cannot afford it build the columns one tile at a time, or never build them:
        an *implicit GEMM* gathers each window while it multiplies (one of the forward algorithms
        cuDNN chooses among per layer, `CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM` in its API, beside an
        explicit GEMM, FFT and Winograd), a *direct*
        convolution loops over the image in place. FFT and Winograd convolutions answer a different cost,
        the arithmetic (Winograd's F(2×2, 3×3) needs 2.25 times fewer multiplications), and need
        workspace of their own. This package keeps the readable version.

        ## The naive loop, checked equal on one input, then timed

        The definition transcribed literally, as in exercise 2.1 (compare it with yours): one dot
        product per (image, filter, output pixel).
        """
    ),
    code(
        """
        def naive_conv2d(x, w, stride=1, padding=0):
            n, c, h, wd = x.shape
            o, _, kh, kw = w.shape
            oh, ow = conv_output_size(h, kh, stride, padding), conv_output_size(wd, kw, stride, padding)
            xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
            y = np.zeros((n, o, oh, ow), dtype=x.dtype)
            for b in range(n):
                for f in range(o):
                    for r in range(oh):
                        for q in range(ow):
                            window = xpad[b, :, r * stride : r * stride + kh, q * stride : q * stride + kw]
                            y[b, f, r, q] = np.sum(window * w[f])
            return y

        # equal on a range of shapes, strides and paddings (float64: the two differ only by rounding)
        rng = np.random.default_rng(2)
        for n, c, h, wd, o, kh, kw, s, p in [(1, 1, 5, 5, 1, 3, 3, 1, 0), (2, 3, 7, 6, 4, 3, 2, 1, 1),
                                             (1, 2, 9, 9, 3, 3, 3, 2, 1), (2, 3, 15, 15, 2, 11, 11, 4, 2)]:
            x = rng.standard_normal((n, c, h, wd))
            w = rng.standard_normal((o, c, kh, kw))
            diff = np.abs(naive_conv2d(x, w, s, p) - F.conv2d(mt.tensor(x), mt.tensor(w), stride=s, padding=p).numpy()).max()
            print(f"x {x.shape}, w {w.shape}, stride {s}, padding {p}: max difference {diff:.1e}")
            assert diff < 1e-12
        """
    ),
    md("Now the real conv1 on one 224×224 image, in float32 as in training:"),
    code(
        """
        rng = np.random.default_rng(3)
        x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
        w = (0.01 * rng.standard_normal((96, 3, 11, 11))).astype(np.float32)

        start = time.perf_counter()
        y_naive = naive_conv2d(x, w, stride=4, padding=2)
        t_naive = time.perf_counter() - start

        def best_of(fn, repeat=5):
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                out = fn()
                times.append(time.perf_counter() - start)
            return out, min(times)

        col, t_im2col = best_of(lambda: im2col(x, (11, 11), (4, 4), (2, 2)))
        y_gemm, t_gemm = best_of(lambda: w.reshape(96, -1) @ col)
        y_gemm = y_gemm.reshape(1, 96, 55, 55)
        assert np.allclose(y_naive, y_gemm, atol=1e-5)  # float32 sums in a different order: rounding only

        print(f"naive loops:    {t_naive * 1e3:8.1f} ms  ({96 * 55 * 55:,} Python-level dot products of 363 terms)")
        print(f"im2col:         {t_im2col * 1e3:8.1f} ms  (121 strided copies, one per kernel tap)")
        print(f"matrix product: {t_gemm * 1e3:8.1f} ms  ({2 * 96 * 363 * 3025 / t_gemm / 1e9:.1f} GFLOP/s)")
        print(f"im2col + product is {t_naive / (t_im2col + t_gemm):.0f} times faster on this machine")
        """
    ),
    md(
        r"""
        The arithmetic is identical; the naive version pays Python's overhead once per output value
        and hands NumPy 363-term dot products too small to run fast, while im2col moves the data
        once and leaves the arithmetic to one large, cache-blocked BLAS matrix product. (Timings are
        from whatever machine last ran this notebook; the ratio is what matters.)

        ## Hand-made filters on a photo

        Before training, a convolution is just a filter bank we can design. The photo is
        `grace_hopper.jpg`, a public-domain portrait that ships with matplotlib (no download needed),
        averaged down to 300×256.
        Four filters over the three colour channels:

        * **vertical edges**: a Sobel kernel on luminance (the same $3\times3$ kernel in each channel,
          weighted by the luminance coefficients), large where brightness changes from left to right;
        * **horizontal edges**: its transpose;
        * **red vs green** and **blue vs yellow**: $1\times1$ colour-opponent filters (zero except the
          centre tap), like some of the colour blobs AlexNet's conv1 learned (Figure 3 of the paper).
        """
    ),
    code(
        """
        from matplotlib import cbook

        photo = plt.imread(cbook.get_sample_data("grace_hopper.jpg"))  # (600, 512, 3) uint8
        photo = photo.reshape(300, 2, 256, 2, 3).mean(axis=(1, 3)) / 255.0  # 2x2 averages: 300x256 keeps the notebook light
        img = photo.astype(np.float32).transpose(2, 0, 1)[None]  # (1, 3, H, W) in [0, 1]

        luminance = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 weights of R, G, B
        sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 4.0
        filters = np.zeros((4, 3, 3, 3), np.float32)  # (out, in, kh, kw)
        filters[0] = luminance[:, None, None] * sobel_x
        filters[1] = luminance[:, None, None] * sobel_x.T
        filters[2, :, 1, 1] = [1.0, -1.0, 0.0]  # red minus green
        filters[3, :, 1, 1] = [-0.5, -0.5, 1.0]  # blue minus yellow (= red + green)
        print("filter 0, one 3x3 kernel per input channel:")
        print(filters[0])

        out = F.conv2d(mt.tensor(img), mt.tensor(filters), padding=1).numpy()[0]  # (4, H, W)
        print("photo", img.shape, "-> responses", out.shape)
        """
    ),
    code(
        """
        fig, axes = plt.subplots(2, 3, figsize=(10, 7.8), dpi=72)  # a modest dpi keeps the saved notebook small
        panels = [
            (photo, "the photo", None, None),
            (np.abs(out[0]), "|vertical edges|", "gray_r", None),
            (np.abs(out[1]), "|horizontal edges|", "gray_r", None),
            (np.hypot(out[0], out[1]), "edge strength", "magma", None),
            (out[2], "red − green", "RdBu_r", np.abs(out[2]).max()),
            (out[3], "blue − yellow", "PuOr", np.abs(out[3]).max()),
        ]
        for ax, (image, title, cmap, lim) in zip(axes.flat, panels):
            if lim is None:
                shown = ax.imshow(image, cmap=cmap)
            else:  # signed responses: a symmetric colour scale, white at zero
                shown = ax.imshow(image, cmap=cmap, vmin=-lim, vmax=lim)
            if cmap is not None:  # the filter responses: a colour bar gives their scale
                fig.colorbar(shown, ax=ax, shrink=0.75)
            ax.set_title(title)
            ax.set_xticks([])
            ax.set_yticks([])
        plt.tight_layout()
        plt.show()
        """
    ),
    md(
        """
        The edge filters light up the outlines of the face, the cap, the stars and the insignia; the
        opponent filters pick out the red stripes and warm skin tones (red − green) and the blue
        background (blue − yellow). AlexNet learns 96 such filters from data instead of
        hand-designing them (notebook 5 trains a small one).
        """
    ),
    md(
        r"""
        ### Exercise 2.3: a box blur as a convolution weight

        Return a `conv2d` weight of shape `(C, C, k, k)` that blurs each colour channel **on its own**:
        output channel $c$ is the mean of the $k\times k$ window of input channel $c$, with no mixing
        of colours. (The layout is `(out_channels, in_channels, kh, kw)`.)
        """
    ),
    code(
        '''
        def my_box_blur_weight(channels=3, k=5):
            """A (channels, channels, k, k) weight: a k x k box blur of each channel separately."""
            raise NotImplementedError  # your code here
        ''',
        "exercise",
    ),
    code(
        """
        # Self-check: each output channel must be the window mean of its own input channel.
        with check(my_box_blur_weight) as blur_weight:
            rng = np.random.default_rng(5)
            x = rng.uniform(size=(1, 3, 12, 10))
            for k in (3, 5):
                w = np.asarray(blur_weight(3, k), dtype=np.float64)
                assert w.shape == (3, 3, k, k), f"weight shape {w.shape}, want (out, in, k, k) = (3, 3, {k}, {k})"
                y = F.conv2d(mt.tensor(x), mt.tensor(w)).numpy()
                # the mean of every k x k window of one channel: im2col of that channel alone, averaged over rows
                want = np.stack([im2col(x[:, c : c + 1], (k, k)).mean(axis=0).reshape(12 - k + 1, 10 - k + 1) for c in range(3)])
                assert np.allclose(y[0], want), "output channel c must be the k x k mean of input channel c alone"
            passed(blur_weight, "blurs each channel separately")
        """,
        "check",
    ),
]
