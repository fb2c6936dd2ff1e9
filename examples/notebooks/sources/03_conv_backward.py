"""The cells of 03_conv_backward.ipynb: edit them here, then run ``python build_notebooks.py 03``."""
from cells import EXERCISE_NOTE, SETUP, code, md

CELLS = [
    md(
        r"""
        # 3. The backward pass of a convolution

        With $\text{col} = \text{im2col}(x)$ the forward pass is $Y = W\cdot\text{col}$ (notebook 2), so
        notebook 1's rules give the backward pass at once:

        $$dW = dY\cdot\text{col}^\top, \qquad d\,\text{col} = W^\top dY, \qquad dx = \text{col2im}(d\,\text{col}).$$

        The new piece is **col2im**, which turns the gradient of the columns back into the gradient of
        the image. You write the backward pass with loops first, then col2im; then the notebook shows

        1. why col2im must *add* where windows overlap, and what breaks when it assigns;
        2. that the input gradient is itself a convolution, of $dY$ with the flipped filters (a "full" or
           transposed convolution);
        3. gradient checks against finite differences;
        4. the adjoint identity $\langle \text{im2col}(x), c\rangle = \langle x, \text{col2im}(c)\rangle$,
           an exact test of a linear op's backward;
        5. the same `+=` inside the autograd engine, where a tensor used twice collects two gradients.
        """
    ),
    SETUP,
    code(
        """
        from minitorch_alex.ops.conv import Conv2d
        from minitorch_alex.ops.im2col import col2im, conv_output_size, im2col
        """,
        "setup",
    ),
    EXERCISE_NOTE,
    md(
        r"""
        ### Exercise 3.1: the backward pass of a convolution, with loops

        Take notebook 2's loop, $y[n, o, r, q] = b[o] + \sum_{c,i,j} w[o, c, i, j]\, x_{\text{pad}}[n, c, rs + i, qs + j]$,
        and run it backwards: every term that the forward pass added to $y[n, o, r, q]$ sends
        $dy[n, o, r, q]$ times its other factor back to each of its two factors. So for each output
        pixel, the window of $x_{\text{pad}}$ under it collects $dy \cdot w[o]$, and $dw[o]$ collects
        $dy \cdot$ window; $db[o]$ is the sum of $dy[:, o]$. Return `dx` (cropped back to $x$'s shape),
        `dw` and `db`.
        """
    ),
    code(
        '''
        def my_conv_backward(x, w, dy, stride=1, padding=0):
            """(dx, dw, db) of y = conv2d(x, w, b, stride, padding) given dy = dL/dy. x (N, C, H, W), w (O, C, kh, kw)."""
            raise NotImplementedError  # your code here
        ''',
        "exercise",
    ),
    code(
        """
        # Self-check: against autograd, with overlapping windows (stride < kernel), strides and padding.
        with check(my_conv_backward) as conv_backward:
            rng = np.random.default_rng(8)
            for n, c, h, wd, o, kh, kw, s, p in [(1, 1, 5, 5, 1, 3, 3, 1, 0), (2, 3, 7, 6, 4, 3, 2, 1, 1),
                                                 (1, 2, 9, 9, 3, 3, 3, 2, 1), (2, 2, 11, 11, 2, 5, 5, 3, 2)]:
                x = mt.tensor(rng.standard_normal((n, c, h, wd)), requires_grad=True)
                w = mt.tensor(rng.standard_normal((o, c, kh, kw)), requires_grad=True)
                b = mt.tensor(rng.standard_normal(o), requires_grad=True)
                y = F.conv2d(x, w, b, stride=s, padding=p)
                dy = rng.standard_normal(y.shape)
                y.backward(dy)
                dx, dw, db = conv_backward(x.numpy(), w.numpy(), dy, s, p)
                for name, got, want in (("dx", dx, x.grad), ("dw", dw, w.grad), ("db", db, b.grad)):
                    assert np.shape(got) == want.shape, f"{name}: got shape {np.shape(got)}, want {want.shape}"
                    assert np.allclose(got, want.numpy()), \\
                        f"{name} differs from autograd (w {w.shape}, stride {s}, padding {p}): do overlapping windows add up?"
            passed(conv_backward, "dx, dw and db agree with autograd")
        """,
        "check",
    ),
    md(
        r"""
        ### Exercise 3.2: col2im with loops

        The adjoint of notebook 2's `my_im2col` (exercise 2.2): one image, no padding, `col` of shape
        `(C·kh·kw, OH·OW)` back to `(C, H, W)`, adding up where windows overlap. Loops are fine. (Exercise 3.1's `dx` is
        this operation applied to the columns' gradient.)
        """
    ),
    code(
        '''
        def my_col2im(col, x_shape, kh, kw, stride=1):
            """col (C*kh*kw, OH*OW) -> (C, H, W) with x_shape = (C, H, W); overlapping windows add up."""
            raise NotImplementedError  # your code here
        ''',
        "exercise",
    ),
    code(
        """
        # Self-check: against the library's col2im, and the adjoint identity with its im2col.
        with check(my_col2im) as col2im_fn:
            rng = np.random.default_rng(6)
            for c, h, w, kh, kw, s in [(1, 5, 5, 3, 3, 1), (2, 6, 7, 3, 2, 1), (3, 7, 7, 3, 3, 2), (2, 8, 9, 2, 3, 3)]:
                oh, ow = (h - kh) // s + 1, (w - kw) // s + 1
                col = rng.standard_normal((c * kh * kw, oh * ow))
                got = col2im_fn(col, (c, h, w), kh, kw, s)
                want = col2im(col, (1, c, h, w), (kh, kw), (s, s))[0]
                assert np.shape(got) == want.shape, f"got shape {np.shape(got)}, want {want.shape}"
                assert np.allclose(got, want), f"differs from col2im (kernel {kh}x{kw}, stride {s}): do overlapping windows add up?"
                x = rng.standard_normal((c, h, w))
                lhs, rhs = np.vdot(im2col(x[None], (kh, kw), (s, s)), col), np.vdot(x, got)
                assert np.isclose(lhs, rhs), f"adjoint identity fails: <im2col(x), col> = {lhs:.6f} but <x, my_col2im(col)> = {rhs:.6f}"
            passed(col2im_fn, "col2im is the adjoint of im2col")
        """,
        "check",
    ),
    md(
        r"""
        ## col2im adds up overlaps

        im2col copies each pixel into every window that contains it. In the forward pass that pixel
        therefore influences several outputs, and its gradient is the **sum** of the gradients that
        arrive through each copy. col2im is the transpose of im2col: it walks the same strided slices
        and does `+=`:
        """
    ),
    code(
        """
        listing(col2im)
        """
    ),
    md(
        r"""
        Applied to a matrix of ones, col2im counts how many windows contain each pixel. In one
        dimension, a row of 7 or 9 pixels, kernel 3:
        """
    ),
    code(
        """
        def coverage(length, k, s):
            ones = np.ones((k, conv_output_size(length, k, s, 0)))  # col of a (1, 1, 1, length) input, kernel (1, k)
            return col2im(ones, (1, 1, 1, length), (1, k), (1, s))[0, 0, 0]

        print("kernel 3, stride 1:", coverage(7, 3, 1))
        print("kernel 3, stride 2:", coverage(7, 3, 2))
        print("kernel 3, stride 3:", coverage(9, 3, 3), "(no overlap)")
        """
    ),
    md(
        """
        Here is col2im with the one-character bug, `=` where the library has `+=`. Each pixel keeps only
        the contribution of the last window written to it:
        """
    ),
    code(
        """
        def col2im_assign(col, x_shape, kernel_size, stride=(1, 1), padding=(0, 0)):
            # the library's col2im with one change, marked
            n, c, h, w = x_shape
            (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
            oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
            col = col.reshape(c, kh, kw, n, oh, ow)
            xpad = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=col.dtype)
            for i in range(kh):
                for j in range(kw):
                    xpad[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] = col[:, i, j].transpose(1, 0, 2, 3)  # BUG: = not +=
            return xpad[:, :, ph : ph + h, pw : pw + w]

        ones = np.ones((3, conv_output_size(7, 3, 1, 0)))
        print("kernel 3, stride 1, assigning:", col2im_assign(ones, (1, 1, 1, 7), (1, 3))[0, 0, 0])
        """
    ),
    md(
        """
        In AlexNet's conv1 (11×11 windows every 4 pixels) every pixel lies in 4, 6 or 9 windows, fewer
        near the border, so the assigning version would drop most of the input gradient:
        """
    ),
    code(
        """
        count = col2im(np.ones((3 * 11 * 11, 55 * 55)), (1, 3, 224, 224), (11, 11), (4, 4), (2, 2))[0, 0]
        values, freq = np.unique(count, return_counts=True)
        print("windows per pixel:", dict(zip(values.astype(int).tolist(), freq.tolist())))

        fig, axes = plt.subplots(1, 2, figsize=(10, 4.3))
        im = axes[0].imshow(count, cmap="viridis")
        axes[0].set_title("conv1: windows containing each pixel")
        axes[1].imshow(count[:32, :32], cmap="viridis", vmin=count.min(), vmax=count.max())
        axes[1].set_title("top-left 32×32 corner")
        for ax in axes:
            ax.set_xlabel("pixel column")
            ax.set_ylabel("pixel row")
        fig.colorbar(im, ax=axes, shrink=0.8, label="number of 11×11 windows")
        plt.show()
        """
    ),
    md(
        """
        The library's convolution, forward and backward: the three products of the first cell, one per
        group of channels, with col2im for the input gradient.
        (`xp.ascontiguousarray(y)` copies the transposed output into ordinary row-major memory, so the
        next layer's reshapes are views rather than copies; `xp` is `np` on a CPU, as in notebook 2.)
        """
    ),
    code(
        """
        listing(Conv2d)
        """
    ),
    md(
        r"""
        To see the bug fail a gradient check, here is a complete convolution `Function` in a dozen
        lines (no bias, no groups), with the col2im to use as a parameter. `mt.Function` subclasses
        implement `forward` and `backward` on raw arrays; `apply` records the graph.
        """
    ),
    code(
        """
        class TinyConv2d(mt.Function):
            def forward(self, x, w, stride, padding, col2im_fn):
                n, c, h, wd = x.shape
                o, _, kh, kw = w.shape
                oh, ow = conv_output_size(h, kh, stride, padding), conv_output_size(wd, kw, stride, padding)
                self.col = im2col(x, (kh, kw), (stride, stride), (padding, padding))
                self.w, self.x_shape, self.stride, self.padding, self.col2im_fn = w, x.shape, stride, padding, col2im_fn
                y = w.reshape(o, -1) @ self.col  # Y = W·col
                return y.reshape(o, n, oh, ow).transpose(1, 0, 2, 3)

            def backward(self, gy):
                o, c, kh, kw = self.w.shape
                gy = gy.transpose(1, 0, 2, 3).reshape(o, -1)  # back to (O, N·OH·OW)
                gw = (gy @ self.col.T).reshape(self.w.shape)  # dW = dY·colᵀ
                gcol = self.w.reshape(o, -1).T @ gy  # dcol = Wᵀ·dY
                s, p = (self.stride,) * 2, (self.padding,) * 2
                return self.col2im_fn(gcol, self.x_shape, (kh, kw), s, p), gw  # dx = col2im(dcol)

        rng = np.random.default_rng(0)
        x = mt.tensor(rng.standard_normal((2, 2, 7, 7)), requires_grad=True)
        w = mt.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
        results = {}
        for fn in (col2im, col2im_assign):
            for stride in (1, 2, 3):
                conv = lambda x, w: TinyConv2d.apply(x, w, stride=stride, padding=0, col2im_fn=fn)
                report = mt.gradcheck(conv, [x, w], raise_exception=False)
                results[fn.__name__, stride] = report.ok
                print(f"{fn.__name__:14s} kernel 3, stride {stride}: {'passed' if report.ok else 'FAILED'}, "
                      f"max relative error {report.max_rel_error:.1e}, worst entry in input {report.worst['input']} (0 = x, 1 = w)")
        assert all(results[("col2im", s)] for s in (1, 2, 3))
        assert not results[("col2im_assign", 1)] and not results[("col2im_assign", 2)] and results[("col2im_assign", 3)]
        """
    ),
    md(
        r"""
        The bug only shows where windows overlap (stride < kernel) and only in the input gradient;
        with stride 3 = kernel 3 the assigning version is correct, and the weight gradient never uses
        col2im. A test suite that checked convolutions only with stride equal to the kernel, or only
        the weight gradient, would pass it. That is why the package's tests draw kernel sizes,
        strides and paddings at random (with hypothesis) and check both. Max pooling (notebook 4)
        reuses col2im, and AlexNet's 3×3 pools with stride 2 overlap too.
        """
    ),
    md(
        r"""
        ## The input gradient is a convolution

        Exercise 3.1's `dx` scatters $dy \cdot w$ into every window. The same sum can be read the other
        way round, as a gather: each input pixel collects from the outputs whose windows contain it,
        and that gather is a convolution of $dy$. Work it out in one dimension with one channel,
        $y[r] = \sum_i w[i]\, x[r + i]$: which outputs $r$ read pixel $x[t]$, and with which weight? Then
        write the stride-1 case with channels as one call of `F.conv2d`.
        """
    ),
    md(
        r"""
        ### Exercise 3.3: the input gradient as a convolution (stride 1)

        Given `dy` $(N, O, OH, OW)$ and `w` $(O, C, k_h, k_w)$ of a stride-1 convolution with padding
        `padding`, return `dx` $(N, C, H, W)$ by calling `F.conv2d` once. (Assume `padding <= k - 1`.)
        """
    ),
    code(
        '''
        def my_conv_input_grad(dy, w, padding=0):
            """dL/dx of y = conv2d(x, w, stride=1, padding=padding), as one convolution of dy. Arrays in, array out."""
            raise NotImplementedError  # your code here
        ''',
        "exercise",
    ),
    code(
        """
        # Self-check: against autograd on several shapes and paddings.
        with check(my_conv_input_grad) as input_grad:
            rng = np.random.default_rng(7)
            for n, c, o, h, k, p in [(1, 1, 1, 5, 3, 0), (2, 3, 4, 6, 3, 1), (1, 2, 3, 7, 5, 2), (2, 2, 2, 6, 2, 1)]:
                x = mt.tensor(rng.standard_normal((n, c, h, h)), requires_grad=True)
                w = rng.standard_normal((o, c, k, k))
                y = F.conv2d(x, mt.tensor(w), padding=p)
                dy = rng.standard_normal(y.shape)
                y.backward(dy)
                try:
                    got = input_grad(dy, w, p)
                except ValueError as e:  # F.conv2d refuses a weight whose in-channels are not dy's O
                    raise AssertionError(f"F.conv2d refused the weight ({e}): dy has O = {o} channels, so the weight "
                                         f"it is convolved with must be (C, O, k, k): swap w's first two axes") from None
                assert np.shape(got) == x.shape, f"got shape {np.shape(got)}, want {x.shape}"
                assert np.allclose(got, x.grad.numpy()), f"differs from autograd (C={c}, O={o}, kernel {k}, padding {p}): flipped? channels swapped?"
            passed(input_grad, "the input gradient agrees with autograd")
        """,
        "check",
    ),
    md(
        r"""
        **The derivation.**

        In one dimension, with one channel, $y[r] = \sum_i w[i]\,x[r + i]$. Pixel $x[t]$ appears in the
        outputs $r = t - i$, so

        $$dx[t] = \sum_i dy[t - i]\; w[i] = \sum_{i'} dy[t - (k-1) + i']\; w[k - 1 - i'] \qquad (i' = k - 1 - i),$$

        with $dy$ taken as 0 outside its range. That is again a cross-correlation, of $dy$ zero-padded by
        $k - 1$ on both sides (a **full** convolution) with the **flipped** kernel $w[k-1-i']$. With
        channels, input channel $c$ collects from every output channel $o$, so the weight's two channel
        axes swap: $dx = \text{conv2d}(dy,\ \text{flip}(w)^{\top_{0,1}},\ \text{padding} = k - 1 - p)$.
        """
    ),
    md(
        r"""
        With a stride $s > 1$ the outputs sit $s$ pixels apart, so first spread $dy$ out, inserting
        $s - 1$ zeros between its entries (*zero insertion*; a convolution read this way is said to have
        a fractional stride $1/s$, not to be confused with a dilated kernel), then proceed as above. Rows and columns at the
        bottom/right that no window reached (when the floor in the output size dropped them) get
        gradient zero. This combination is what deep-learning libraries call a **transposed convolution**
        (`ConvTranspose2d`, once misnamed "deconvolution"): the forward pass of the layer that upsamples
        is the backward pass of the layer that downsamples.
        """
    ),
    code(
        """
        def conv_input_grad_transposed(dy, w, x_shape, stride, padding):
            n, o, oh, ow = dy.shape
            _, c, kh, kw = w.shape
            h, wd = x_shape[2:]
            # 1. insert zeros: dy's entries go where the windows started, stride apart
            d = np.zeros((n, o, (oh - 1) * stride + 1, (ow - 1) * stride + 1))
            d[:, :, ::stride, ::stride] = dy
            # 2. pad by k - 1 ("full"), plus the bottom/right rows and columns no window reached
            extra_h = h + 2 * padding - kh - (oh - 1) * stride
            extra_w = wd + 2 * padding - kw - (ow - 1) * stride
            d = np.pad(d, ((0, 0), (0, 0), (kh - 1, kh - 1 + extra_h), (kw - 1, kw - 1 + extra_w)))
            # 3. correlate with the flipped filters, in/out channels swapped: the gradient of the padded input
            w_flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
            dx_padded = F.conv2d(mt.tensor(d), mt.tensor(w_flipped)).numpy()
            # 4. the padding was not part of the input: crop it
            return dx_padded[:, :, padding : padding + h, padding : padding + wd]

        rng = np.random.default_rng(1)
        for n, c, o, h, k, s, p in [(2, 3, 4, 7, 3, 1, 1), (1, 2, 3, 8, 3, 2, 0), (2, 3, 4, 33, 11, 4, 2), (1, 1, 2, 10, 4, 3, 5)]:
            x = mt.tensor(rng.standard_normal((n, c, h, h)), requires_grad=True)
            w = rng.standard_normal((o, c, k, k))
            y = F.conv2d(x, mt.tensor(w), stride=s, padding=p)
            dy = rng.standard_normal(y.shape)
            y.backward(dy)
            diff = np.abs(conv_input_grad_transposed(dy, w, x.shape, s, p) - x.grad.numpy()).max()
            print(f"x {x.shape}, kernel {k}, stride {s}, padding {p}: max difference from autograd {diff:.1e}")
            assert diff < 1e-10
        """
    ),
    md(
        r"""
        (In the second case no window reaches the input's last row and column, so their gradient is 0;
        the third is conv1's geometry, 11×11 with stride 4 and padding 2, on a small input.)

        ## Gradient checks against finite differences

        `mt.gradcheck` compares every entry of the input, weight and bias gradients with central
        differences in float64 (notebook 1), here for a grouped, strided, padded convolution and for
        conv1's geometry on a small input:
        """
    ),
    code(
        """
        rng = np.random.default_rng(2)
        x = mt.tensor(rng.standard_normal((2, 4, 6, 6)), requires_grad=True)
        w = mt.tensor(rng.standard_normal((6, 2, 3, 3)), requires_grad=True)
        b = mt.tensor(rng.standard_normal(6), requires_grad=True)
        print(mt.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2), [x, w, b]))

        x = mt.tensor(rng.standard_normal((1, 3, 19, 19)), requires_grad=True)
        w = mt.tensor(rng.standard_normal((4, 3, 11, 11)), requires_grad=True)
        print(mt.gradcheck(lambda x, w: F.conv2d(x, w, stride=4, padding=2), [x, w], samples=300))
        """
    ),
    md(
        r"""
        ## The adjoint identity

        im2col is a linear map $A$ from images to column matrices; col2im is meant to be its transpose
        $A^\top$. For any linear map the transpose is characterised by
        $\langle A x, c\rangle = \langle x, A^\top c\rangle$ for all $x, c$. Both sides are one dot product
        each, so this is an exact test (up to rounding, about $10^{-15}$ relative): no step size, no
        tolerance to tune. For the convolution itself (linear in $x$ when there is no bias), the backward
        pass is the transpose, so $\langle \text{conv}(x), dy\rangle = \langle x, dx\rangle$.
        """
    ),
    code(
        """
        rng = np.random.default_rng(3)
        geometries = [  # (x shape, kernel, stride, padding)
            ((2, 3, 7, 7), (3, 3), 1, 0), ((1, 2, 9, 8), (3, 2), 2, 1), ((1, 3, 19, 19), (11, 11), 4, 2), ((1, 1, 8, 8), (2, 2), 3, 0),
        ]
        for shape, k, s, p in geometries:
            x = rng.standard_normal(shape)
            c = rng.standard_normal(im2col(x, k, (s, s), (p, p)).shape)
            lhs = np.vdot(im2col(x, k, (s, s), (p, p)), c)
            rhs = np.vdot(x, col2im(c, shape, k, (s, s), (p, p)))
            bad = np.vdot(x, col2im_assign(c, shape, k, (s, s), (p, p)))
            print(f"x {shape}, kernel {k}, stride {s}: <im2col(x), c> = {lhs:9.4f}, <x, col2im(c)> = {rhs:9.4f}, "
                  f"<x, col2im_assign(c)> = {bad:9.4f}")
            assert abs(lhs - rhs) <= 1e-12 * (abs(lhs) + np.linalg.norm(x) * np.linalg.norm(c))
        """
    ),
    md(
        """
        The assigning version satisfies the identity only in the last geometry, where stride 3 > kernel 2
        leaves gaps and nothing overlaps. Now the whole convolution, through autograd:
        """
    ),
    code(
        """
        x = mt.tensor(rng.standard_normal((2, 4, 9, 9)), requires_grad=True)
        w = mt.tensor(rng.standard_normal((6, 2, 3, 3)))
        y = F.conv2d(x, w, stride=2, padding=1, groups=2)
        dy = rng.standard_normal(y.shape)
        y.backward(dy)
        lhs, rhs = np.vdot(y.numpy(), dy), np.vdot(x.numpy(), x.grad.numpy())
        print(f"<conv(x), dy> = {lhs:.12f}\\n<x, dx>       = {rhs:.12f}")
        assert np.isclose(lhs, rhs, rtol=1e-12)
        """
    ),
    md(
        r"""
        ## The same `+=` in the autograd engine

        col2im adds because a pixel feeds several windows. The autograd engine has the same rule one
        level up: a tensor used by several ops gets a gradient from each, and they **add**. And it
        must visit the ops in an order in which every op comes after all the ops that use its output
        (a reverse topological order), so that a gradient is complete before it is passed on. Here is
        that whole engine for scalars in a dozen lines, micrograd style, with a switch that makes it
        assign instead of add:
        """
    ),
    code(
        """
        class Value:
            def __init__(self, data, parents=(), local_grads=()):
                self.data, self.parents, self.local_grads, self.grad = data, parents, local_grads, 0.0

            def __add__(self, other):
                return Value(self.data + other.data, (self, other), (1.0, 1.0))

            def __mul__(self, other):
                return Value(self.data * other.data, (self, other), (other.data, self.data))

            def backward(self, add=True):
                order, seen = [], set()
                def visit(v):  # depth-first: a node is appended after everything it depends on
                    if id(v) not in seen:
                        seen.add(id(v))
                        for p in v.parents:
                            visit(p)
                        order.append(v)
                visit(self)
                self.grad = 1.0
                for v in reversed(order):  # every node after all the nodes that use it
                    for p, local in zip(v.parents, v.local_grads):
                        if add:
                            p.grad += v.grad * local  # the chain rule, summed over every use of p
                        else:
                            p.grad = v.grad * local  # the col2im_assign bug, one level up

        for add in (True, False):
            a, b = Value(2.0), Value(3.0)
            d = a * b + a  # a is used twice
            L = d * d
            L.backward(add=add)
            print(f"{'adding' if add else 'assigning'}: dL/da = {a.grad}, dL/db = {b.grad}")
        # L = (ab + a)², so dL/da = 2(ab + a)(b + 1) = 64 and dL/db = 2(ab + a)·a = 32
        x = mt.tensor(np.array(2.0), requires_grad=True)
        y = mt.tensor(np.array(3.0), requires_grad=True)
        d = x * y + x
        (d * d).backward()
        print(f"minitorch_alex: dL/da = {x.grad.item()}, dL/db = {y.grad.item()}")
        assert x.grad.item() == 64.0 and y.grad.item() == 32.0 and a.grad != 64.0
        """
    ),
    md(
        """
        The graph the package's engine walks for the same $L = (ab + a)^2$, drawn before `backward`
        frees it by `draw_graph` from `course.py` (graphviz when it is installed, matplotlib
        otherwise): tensors in square boxes, the ops that made them in round ones. `a` feeds two ops
        and `d` feeds the last `Mul` twice (`d * d`, two arrows on top of each other), so each of
        their gradients is a sum of two terms:
        """
    ),
    code(
        """
        from course import draw_graph

        a = mt.tensor(np.array(2.0), requires_grad=True)
        b = mt.tensor(np.array(3.0), requires_grad=True)
        ab = a * b
        d = ab + a
        L = d * d
        nodes, edges = draw_graph(L, {"a": a, "b": b, "ab": ab, "d": d, "L": L})
        print(f"{sum(kind == 'op' for kind, _ in nodes.values())} ops, {len(edges)} arrows")
        """
    ),
    md(
        """
        The package's engine does the same with arrays: `_topological_order` (iterative, so graphs of
        any depth work) and `_accumulate`, which adds a new gradient to the one already collected for
        the same tensor:
        """
    ),
    code(
        """
        from minitorch_alex.autograd import _accumulate, _topological_order

        listing(_topological_order)
        listing(_accumulate)
        """
    ),
]
