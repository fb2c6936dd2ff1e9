"""The cells of 04_alexnet_layers.ipynb: edit them here, then run ``python build_notebooks.py 04``."""
from cells import EXERCISE_NOTE, SETUP, code, md

CELLS = [
    md(
        r"""
        # 4. The other AlexNet layers: ReLU, max-pool, LRN, dropout, softmax cross-entropy

        Between its convolutions and fully connected layers AlexNet uses five more ops. For each:
        the forward pass, its derivative, the library's implementation, and a gradient check,
        including the checks' blind spots: kinks and ties where the function has no derivative, an
        LRN bug whose size is $\\alpha a^2$ and hides when that product is small, and randomness that
        must be held fixed.
        """
    ),
    SETUP,
    md(
        r"""
        ## ReLU

        $y = \max(x, 0)$, so $\partial y/\partial x$ is 1 where $x > 0$ and 0 where $x < 0$; at $x = 0$ there
        is no derivative and the package, like PyTorch, uses 0. The backward pass lets the gradient
        through where the output was positive:
        """
    ),
    code(
        """
        from minitorch_alex.ops.activation import ReLU

        listing(ReLU)
        x = mt.tensor(np.array([-1.5, -0.2, 0.3, 2.0]), requires_grad=True)
        print(mt.gradcheck(F.relu, [x]))
        at_kink = mt.tensor(np.array([-1.0, 0.0, 1.0]), requires_grad=True)
        report = mt.gradcheck(F.relu, [at_kink], raise_exception=False)
        print(report)
        assert not report.ok and report.worst["index"] == (1,)
        """
    ),
    md(
        r"""
        At exactly 0 the central difference straddles the kink and measures the average slope,
        $(\varepsilon - 0)/(2\varepsilon) = 0.5$ (times the random weight `gradcheck` puts on that output),
        while the backward pass says 0. Neither is wrong: the function has no derivative there.
        Gradient checks must keep inputs at least $\varepsilon$ away from kinks, which is why the
        package's tests draw values away from 0 and from each other (`tests/conftest.py`).

        ## Overlapping max-pooling

        AlexNet pools $3\times3$ windows with stride 2, so neighbouring windows overlap by one row or
        column (the paper reports this lowered its error rates by 0.4% and 0.3% compared with
        $2\times2$ windows with stride 2). The output is the largest entry of each window; the
        derivative is 1 for that entry and 0 for the rest. Write its backward pass before reading the
        library's.
        """
    ),
    EXERCISE_NOTE,
    md(
        r"""
        ### Exercise 4.1: max-pool backward

        Given `x` $(N, C, H, W)$ and `dy`, the gradient of $y$ = `F.max_pool2d(x, k, stride)` (no padding),
        return `dx`: each output's gradient goes to the entry of its window that holds the maximum, and a
        pixel that is the maximum of several overlapping windows collects the gradient of each. Loops
        are fine.

        **Ties.** When several entries of a window share the maximum, the gradient goes to one of them:
        the first in row-major order, as `np.argmax` picks it (PyTorch's rule too). Do not send it to
        every tied entry (`mask = window == window.max()`): the window's output moved by `dy`, and
        handing `dy` to each of two tied entries counts that change twice. Ties are common in a real
        network (after a ReLU, a window of zeros is all ties), and the check includes them.
        """
    ),
    code(
        '''
        def my_maxpool_backward(x, dy, k=3, stride=2):
            """dL/dx of y = max_pool2d(x, k, stride), given dy = dL/dy. x (N, C, H, W), dy (N, C, OH, OW)."""
            raise NotImplementedError  # your code here
        ''',
        "exercise",
    ),
    code(
        """
        # Self-check: against autograd, with overlapping windows (stride < k), a pixel that wins four of
        # them, and ties (windows of equal values: the gradient goes to the first maximum only).
        with check(my_maxpool_backward) as maxpool_backward:
            rng = np.random.default_rng(10)
            winner = rng.permutation(25).reshape(1, 1, 5, 5).astype(np.float64)
            winner[0, 0, 2, 2] = 99.0  # the centre lies in all four 3x3 windows of stride 2
            distinct = [(winner, 3, 2)] + [(rng.permutation(n * c * h * w).reshape(n, c, h, w) / 7.0, k, s)
                                            for n, c, h, w, k, s in [(2, 3, 7, 7, 3, 2), (1, 2, 6, 8, 2, 2), (1, 1, 6, 6, 3, 1)]]
            relu_like = np.maximum(rng.standard_normal((2, 2, 7, 7)), 0)  # zeros: whole windows of ties
            tied = [(relu_like, 3, 2), (rng.integers(0, 3, (1, 2, 6, 6)).astype(np.float64), 2, 2)]
            for x_values, k, s in distinct + tied:
                x = mt.tensor(x_values, requires_grad=True)
                y = F.max_pool2d(x, k, stride=s)
                dy = rng.standard_normal(y.shape)
                y.backward(dy)
                got = maxpool_backward(x_values, dy, k, s)
                assert np.shape(got) == x.shape, f"got shape {np.shape(got)}, want {x.shape}"
                hint = ("with tied maxima: does each window's gradient go to its first maximum only, not to every tied entry?"
                        if any(c is x_values for c, _, _ in tied) else "does a pixel that wins several windows add them up?")
                assert np.allclose(got, x.grad.numpy()), f"differs from autograd (x {x.shape}, {k}x{k} windows, stride {s}): {hint}"
            passed(maxpool_backward, "the max-pool gradient agrees with autograd, ties included")
        """,
        "check",
    ),
    md(
        """
        The library unrolls the windows with im2col (pad value $-\\infty$), remembers the argmax of each
        column, and in backward sends each output's gradient to its winner, with col2im adding up
        the pixels that win several windows:
        """
    ),
    code(
        """
        from minitorch_alex.ops.pool import MaxPool2d

        listing(MaxPool2d)
        """
    ),
    code(
        """
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 1, (1, 1, 5, 5))
        x[0, 0, 2, 2] = 9.0  # the centre lies in all four 3x3 windows of stride 2
        x = mt.tensor(x, requires_grad=True)
        y = F.max_pool2d(x, 3, stride=2)
        y.backward(np.ones(y.shape))
        print("output:\\n", y.numpy()[0, 0])
        print("gradient of sum(output):\\n", x.grad.numpy()[0, 0])
        assert x.grad.numpy()[0, 0, 2, 2] == 4.0
        """
    ),
    md(
        r"""
        The centre pixel wins all four windows and collects four gradients.

        **Ties.** When two entries of a window are equal, the maximum has no derivative: nudging either
        one up makes it the winner, nudging it down hands the win to the other. The central difference
        then measures $\tfrac12$ for each tied entry, while the backward pass gives everything to one
        of them (the first in row-major order, NumPy's `argmax`).
        """
    ),
    code(
        """
        x = mt.tensor(np.array([[[[1.0, 1.0], [0.0, 0.5]]]]), requires_grad=True)  # a tie for the max
        y = F.max_pool2d(x, 2)
        y.backward(np.ones(y.shape))
        print("backward pass:", x.grad.numpy().ravel())
        report = mt.gradcheck(lambda x: F.max_pool2d(x, 2), [x], raise_exception=False)
        print(report)
        assert not report.ok

        distinct = mt.tensor(np.array([[[[1.0, 0.9], [0.0, 0.5]]]]), requires_grad=True)
        print(mt.gradcheck(lambda x: F.max_pool2d(x, 2), [distinct]))
        """
    ),
    md(
        r"""
        Ties do happen in a real network: after a ReLU, a window of all zeros is a tie. There it is
        harmless, because the gradient routed to the winning zero is stopped by the ReLU below it
        (its output was not positive). For gradient checks, the inputs are drawn with distinct values.

        ## Local response normalisation (LRN)

        Section 3.3 of the paper normalises each activation by the energy of its neighbours in
        adjacent channels at the same pixel:

        $$b_i = a_i \,/\, s_i^{\beta}, \qquad s_i = k + \alpha \sum_{j \in \mathcal{N}(i)} a_j^2,$$

        where $\mathcal{N}(i)$ is the window of $n = 5$ channels centred on $i$ (clipped at the ends), with
        $k = 2$, $\alpha = 10^{-4}$, $\beta = 0.75$.

        **Convention.** This package uses the paper's formula: $\alpha$ times the **sum** of squares.
        PyTorch's `nn.LocalResponseNorm` (like Caffe and cuda-convnet) multiplies the **average**,
        $\frac{\alpha}{n}\sum$, so the paper's layer is PyTorch's with `alpha=5e-4`. Numerically,
        against PyTorch's documented formula written in NumPy:
        """
    ),
    code(
        """
        def lrn_average_convention(a, size, alpha, beta, k):
            # PyTorch's documented formula: alpha times the *average* of the squares over a zero-padded window of `size`
            c = a.shape[1]
            sq = np.pad(a**2, ((0, 0), (size // 2, (size - 1) // 2), (0, 0), (0, 0)))
            average = sum(sq[:, d : d + c] for d in range(size)) / size
            return a / (k + alpha * average) ** beta

        a = rng.standard_normal((1, 7, 2, 2)) * 30  # large activations so that the denominator matters
        ours = F.local_response_norm(mt.tensor(a), size=5, alpha=1e-4, beta=0.75, k=2.0).numpy()
        pytorch_style = lrn_average_convention(a, size=5, alpha=5e-4, beta=0.75, k=2.0)
        wrongly_converted = lrn_average_convention(a, size=5, alpha=1e-4, beta=0.75, k=2.0)
        print("ours vs average convention with alpha = 5e-4:", np.abs(ours - pytorch_style).max())
        print("ours vs average convention with alpha = 1e-4:", np.abs(ours - wrongly_converted).max())
        assert np.allclose(ours, pytorch_style)
        """
    ),
    md(
        r"""
        **Backward.** $b_i$ depends on $a_j$ in two ways: directly when $j = i$, and through the
        denominator whenever $j$ is in $i$'s window. With $g_i = \partial L/\partial b_i$,

        $$\frac{\partial b_i}{\partial a_j} = [i = j]\, s_i^{-\beta} \;-\; 2\alpha\beta\, a_i a_j\, s_i^{-\beta-1}\,[j \in \mathcal{N}(i)]
        \quad\Rightarrow\quad
        \frac{\partial L}{\partial a_j} = g_j s_j^{-\beta} \;-\; 2\alpha\beta\, a_j \sum_{i:\, j \in \mathcal{N}(i)} g_i\, a_i\, s_i^{-\beta-1}.$$

        The second sum runs over the channels whose window contains $j$: for an odd $n$ that is the same
        window around $j$, for an even $n$ it is the window mirrored.
        """
    ),
    md(
        r"""
        ### Exercise 4.2: LRN backward

        Implement the formula above in NumPy for `a`, `g` of shape $(N, C, H, W)$ with window
        `size` (the window of channel $i$ covers $i - \lfloor n/2\rfloor \dots i + \lfloor (n-1)/2 \rfloor$,
        clipped at the ends; the paper's convention, $\alpha$ times the sum). The check uses $\alpha = 1$
        and an even window size, for reasons the next section shows.
        """
    ),
    code(
        '''
        def my_lrn_backward(a, g, size=5, alpha=1e-4, beta=0.75, k=2.0):
            """dL/da of b = local_response_norm(a, size, alpha, beta, k), given g = dL/db."""
            raise NotImplementedError  # your code here
        ''',
        "exercise",
    ),
    code(
        """
        # Self-check: against autograd, with alpha large enough that every term matters.
        with check(my_lrn_backward) as lrn_backward:
            rng = np.random.default_rng(8)
            alpha = 1.0  # alpha * a**2 ~ 1 for these activations: every term of the derivative matters (see below)
            for size, c in [(5, 8), (3, 4), (4, 6), (1, 3)]:
                a = rng.standard_normal((2, c, 3, 3))
                g = rng.standard_normal(a.shape)
                x = mt.tensor(a, requires_grad=True)
                F.local_response_norm(x, size, alpha, 0.75, 2.0).backward(g)
                got = lrn_backward(a, g, size, alpha, 0.75, 2.0)
                assert np.shape(got) == a.shape, f"got shape {np.shape(got)}, want {a.shape}"
                err = np.abs(got - x.grad.numpy()).max()
                assert err < 1e-9, f"size {size}: max difference from autograd {err:.1e} (cross-channel terms? the mirrored window for even sizes?)"
            passed(lrn_backward, "the LRN gradient agrees with autograd")
        """,
        "check",
    ),
    md(
        """
        The library's LRN (`window_sum` adds shifted copies along the channel axis):
        """
    ),
    code(
        """
        from minitorch_alex.ops.lrn import LocalResponseNorm

        listing(LocalResponseNorm)
        """
    ),
    md(
        r"""
        **Why the check needs a large $\alpha$.** A tempting shortcut treats each channel as if it
        normalised only itself, keeping the $i = j$ term of the sum and dropping the **cross-channel**
        terms $i \ne j$. Every term of the sum carries a factor $\alpha a_i a_j$, so the part the
        shortcut loses is proportional to $\alpha a^2$ for activations of size $a$ (the table measures
        the constant). Here is that
        wrong backward under the package's strict check (float64, `rtol=1e-6`), for several $\alpha$ and
        three activation scales:
        """
    ),
    code(
        """
        from minitorch_alex.ops.lrn import window_sum  # sums over each channel's window, zero outside

        class LRNWithoutCrossTerm(mt.Function):
            # LRN's forward (one group); a backward that keeps only the i = j term of the sum
            def forward(self, a, size, alpha, beta, k):
                self.a, self.alpha, self.beta = a, alpha, beta
                self.s = k + alpha * window_sum(a * a, size // 2, (size - 1) // 2)
                return a * self.s**-beta

            def backward(self, g):
                a, s, alpha, beta = self.a, self.s, self.alpha, self.beta
                return (g * s**-beta - 2 * alpha * beta * a * (g * a * s ** (-beta - 1)),)

        rng = np.random.default_rng(1)
        base = rng.standard_normal((2, 8, 3, 3))
        scales = (1.0, 0.1, 0.01)
        verdict = {}
        print("wrong backward: max relative error, and the verdict of mt.gradcheck (rtol=1e-6)")
        print(f"{'alpha':>7s} | " + " | ".join(f"activations ~{scale:<5}" for scale in scales) + " | library's LRN")
        for alpha in (1e-4, 1e-3, 1e-2, 1e-1, 1.0):
            cells, library_ok = [], True
            for scale in scales:
                x = mt.tensor(base * scale, requires_grad=True)
                wrong = mt.gradcheck(lambda x: LRNWithoutCrossTerm.apply(x, size=5, alpha=alpha, beta=0.75, k=2.0),
                                     [x], raise_exception=False)
                right = mt.gradcheck(lambda x: F.local_response_norm(x, 5, alpha, 0.75, 2.0), [x], raise_exception=False)
                verdict[alpha, scale] = wrong.ok
                library_ok &= right.ok
                cells.append(f"{wrong.max_rel_error:7.1e} {'passes' if wrong.ok else 'FAILS ':6s}")
            print(f"{alpha:7.0e} | " + " | ".join(f"{c:18s}" for c in cells) + f" | {'passes' if library_ok else 'FAILS'}")
            assert library_ok

        assert verdict[1e-4, 0.01], "alpha * a**2 = 1e-8: the bug passes"
        assert not verdict[1e-4, 1.0] and not verdict[1e-4, 0.1], "the paper's alpha with activations ~1 or ~0.1: it fails"
        assert not verdict[1.0, 0.01] and not verdict[1.0, 1.0], "alpha = 1: the same inputs expose it"
        """
    ),
    md(
        r"""
        The error of the wrong backward grows like $\alpha a^2$: 10× per row down each column, 100× less
        per column across each row, until it saturates. The constant in front of $\alpha a^2$ depends on
        the input; the next cell measures it on eight random draws (at the paper's $\alpha$, activations
        ~0.1, well before saturation) and prints its range.
        """
    ),
    code(
        """
        constants = []
        for seed in range(8):
            a = np.random.default_rng(100 + seed).standard_normal((2, 8, 3, 3)) * 0.1
            x = mt.tensor(a, requires_grad=True)
            wrong = mt.gradcheck(lambda x: LRNWithoutCrossTerm.apply(x, size=5, alpha=1e-4, beta=0.75, k=2.0),
                                 [x], raise_exception=False)
            constants.append(wrong.max_rel_error / (1e-4 * np.mean(a**2)))  # error / (alpha * mean a^2)
        print(f"max relative error / (alpha a^2) over 8 draws: min {min(constants):.0f}, median {np.median(constants):.0f}, "
              f"max {max(constants):.0f}")
        """
    ),
    md(
        r"""
        The constant varies several-fold from draw to draw (one unlucky entry dominates a maximum), so
        only the scaling is a law. What matters is the product $\alpha a^2$, not $\alpha$ alone:
        at the paper's $\alpha = 10^{-4}$ the strict check **fails** the bug for activations around 1 and
        0.1, and passes it only for activations around 0.01, where $\alpha a^2 = 10^{-8}$ and the error is
        below $10^{-6}$. A looser tolerance hides more: a float32 comparison cannot ask for better than
        about $10^{-5}$ relative (notebook 1's best float32 finite difference) and in practice allows
        $10^{-3}$, which would pass the ~0.1 column as well. A test cannot count on the size of the
        activations a layer will see, so the package's tests check LRN at a large $\alpha$ (0.3), with
        this bug as a test that the check can fail. The general lesson: **choose a check's inputs and
        constants so that every term of the derivative matters**.

        ## Dropout

        While training, each unit is kept with probability $1 - p$ (the paper: $p = 0.5$, in fc6 and
        fc7) and zeroed otherwise: $y = x \odot m$ with a random 0/1 mask $m$. At test time the paper
        multiplies the outputs by $1 - p$ instead, so that each unit's expected input is unchanged;
        PyTorch's *inverted* dropout divides by $1 - p$ while training and does nothing at test time.
        The backward pass multiplies by the same mask and factor as the forward pass.

        ### Exercise 4.4: dropout forward and backward, both conventions

        Return `(y, dx)`: dropout's output for `x` and the gradient $\partial L/\partial x$ given
        `dy` $= \partial L/\partial y$, where `mask` is the boolean keep-mask $m$ (True keeps a unit)
        and `p` the probability of dropping one. While training, use the given mask; at test time
        there is no mask. `inverted=False` is the paper's convention, `inverted=True` PyTorch's. The
        check tries $p = 0.5$ and $p = 0.2$ (at $p = 0.5$ the factors $p$ and $1 - p$ coincide).
        """
    ),
    code(
        '''
        def my_dropout(x, dy, mask, p=0.5, training=True, inverted=True):
            """(y, dx) of dropout with keep-mask `mask` (True keeps); paper's scaling if not inverted."""
            raise NotImplementedError  # your code here
        ''',
        "exercise",
    ),
    code(
        """
        # Self-check: against F.dropout and its autograd backward, both conventions, training and test, two p.
        with check(my_dropout) as dropout_fn:
            rng = np.random.default_rng(11)
            x_np, dy = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
            for p in (0.5, 0.2):
                mask = rng.random((4, 6)) >= p
                for inverted in (False, True):
                    for training in (True, False):
                        x = mt.tensor(x_np, requires_grad=True)
                        y = F.dropout(x, p, training=training, mask=mask if training else None, inverted=inverted)
                        y.backward(dy)
                        got_y, got_dx = dropout_fn(x_np, dy, mask, p=p, training=training, inverted=inverted)
                        case = f"p={p}, {'inverted' if inverted else 'paper'}, {'training' if training else 'test'}"
                        assert np.shape(got_y) == x.shape and np.shape(got_dx) == x.shape, f"{case}: wrong shapes"
                        assert np.allclose(got_y, y.numpy()), f"{case}: y differs from F.dropout (the scaling? 1 - p or p?)"
                        assert np.allclose(got_dx, x.grad.numpy()), f"{case}: dx differs (the same factor as the forward?)"
            passed(dropout_fn, "dropout's forward and backward, paper's and inverted scaling")
        """,
        "check",
    ),
    md(
        r"""
        The library's version: the `Dropout` function multiplies by the mask (times a scale), and
        `F.dropout`, the function `ops/dropout.py::dropout`, picks the mask and the scale for the two
        conventions and for test time. A gradient check needs the mask fixed:
        """
    ),
    code(
        """
        from minitorch_alex.ops.dropout import Dropout, dropout

        listing(Dropout)
        listing(dropout)
        rng = np.random.default_rng(2)
        x = mt.tensor(rng.standard_normal((4, 6)), requires_grad=True)
        mask = rng.random((4, 6)) >= 0.5
        print("fixed mask:      ", mt.gradcheck(lambda x: F.dropout(x, 0.5, mask=mask), [x]))
        random_each_call = mt.gradcheck(lambda x: F.dropout(x, 0.5), [x], raise_exception=False)
        print("new mask per call:", random_each_call)
        assert not random_each_call.ok
        """
    ),
    md(
        r"""
        A gradient check evaluates the function many times; if each evaluation draws a new mask, the
        finite differences compare two different functions and the check fails even though the
        backward pass is right. The function under test must be deterministic: pass the mask in
        (`F.dropout(x, p, mask=...)`), or seed the generator identically before every call.

        The two conventions agree in expectation: averaged over many masks, the paper's training
        output equals its test output.
        """
    ),
    code(
        """
        mt.manual_seed(0)
        x = mt.tensor(np.array([1.0, -2.0, 0.5, 3.0]))
        average = np.mean([F.dropout(x, 0.5, inverted=False).numpy() for _ in range(4000)], axis=0)
        test = F.dropout(x, 0.5, training=False, inverted=False).numpy()
        print("mean of 4000 training outputs:", average)
        print("test-time output (x · 0.5):   ", test)
        assert np.allclose(average, test, atol=0.1)  # the standard error is |x|·0.5/sqrt(4000) < 0.03
        """
    ),
    md(
        r"""
        ## Softmax cross-entropy

        The network's last layer produces logits $z \in \mathbb{R}^{N\times C}$; the loss is the mean
        negative log-probability of the correct classes $t_n$:

        $$L = -\frac1N \sum_n \log p_{n t_n}, \qquad p_{nc} = \frac{e^{z_{nc}}}{\sum_{c'} e^{z_{nc'}}}.$$
        """
    ),
    md(
        r"""
        ### Exercise 4.3: the gradient of softmax cross-entropy

        Derive $\partial L/\partial z_{nc}$ yourself, then return it for the **mean** cross-entropy of
        `logits` $(N, C)$ against integer `target` $(N,)$, in NumPy. Hint: write $\log p_{nt}$ in terms
        of $z_{nt}$ and $\log\sum_{c'} e^{z_{nc'}}$ before differentiating. The check includes logits
        in the hundreds, where `np.exp` overflows: find a way to compute $p$ that does not.
        """
    ),
    code(
        '''
        def my_cross_entropy_grad(logits, target):
            """d/dlogits of mean_n -log softmax(logits[n])[target[n]]."""
            raise NotImplementedError  # your code here
        ''',
        "exercise",
    ),
    code(
        """
        # Self-check: against autograd, including logits that overflow a naive exp.
        with check(my_cross_entropy_grad) as ce_grad:
            rng = np.random.default_rng(9)
            for n, c, scale in [(1, 3, 1.0), (5, 7, 3.0), (4, 10, 300.0)]:
                z = rng.standard_normal((n, c)) * scale
                t = rng.integers(0, c, n)
                zt = mt.tensor(z, requires_grad=True)
                F.cross_entropy(zt, t).backward()
                with np.errstate(all="ignore"):  # an overflow should fail the assert below, not just warn
                    got = ce_grad(z, t)
                assert np.shape(got) == z.shape, f"got shape {np.shape(got)}, want {z.shape}"
                assert np.allclose(got, zt.grad.numpy()), f"differs from autograd for N={n}, logits of scale {scale} (the mean over N? overflow?)"
            passed(ce_grad, "the cross-entropy gradient agrees with autograd")
        """,
        "check",
    ),
    md(
        r"""
        **The answer.** Since $\log p_{nt} = z_{nt} - \log\sum_{c'} e^{z_{nc'}}$ and the derivative of the
        log-sum-exp is the softmax, $\partial L/\partial z_{nc} = (p_{nc} - [c = t_n])/N$: fusing the
        softmax with the loss makes the gradient one subtraction. For the forward pass, subtracting
        each row's maximum before exponentiating changes nothing mathematically ($p$ is unchanged when
        every $z_{nc'}$ of a row shifts by the same amount) and keeps $e^{z}$ from overflowing: the
        largest exponent becomes $e^0 = 1$. The library's loss, and what the row maximum buys:
        """
    ),
    code(
        """
        from minitorch_alex.ops.loss import CrossEntropy

        listing(CrossEntropy)
        z = np.array([[1000.0, 0.0, -5.0]])
        with np.errstate(over="ignore", invalid="ignore"):
            print("naive softmax:   ", np.exp(z) / np.exp(z).sum())
        print("F.softmax:       ", F.softmax(mt.tensor(z)).numpy())

        rng = np.random.default_rng(3)
        logits = mt.tensor(rng.standard_normal((5, 7)) * 3, requires_grad=True)
        target = rng.integers(0, 7, 5)
        print(mt.gradcheck(lambda z: F.cross_entropy(z, target), [logits]))
        """
    ),
]
