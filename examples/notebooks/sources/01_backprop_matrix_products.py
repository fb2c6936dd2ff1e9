"""The cells of 01_backprop_matrix_products.ipynb: edit them here, then run ``python build_notebooks.py 01``."""
from cells import EXERCISE_NOTE, SETUP, code, md

CELLS = [
    md(
        r"""
        # 1. Backprop as matrix products

        Every layer of AlexNet that has weights, the five convolutions and the three fully connected
        layers, spends nearly all of its time in one matrix product, forward and backward. This notebook

        1. derives the backward pass of $Y = XW$ from the shapes alone: $dX = dY\,W^\top$, $dW = X^\top dY$;
        2. checks it against `minitorch_alex`'s autograd and against finite differences;
        3. sweeps the finite-difference step in float32 and float64, to show why gradient checks
           are done in float64.
        """
    ),
    SETUP,
    EXERCISE_NOTE,
    md(
        r"""
        ### Exercise 1.1: the backward pass of a matrix product

        Before reading on, derive it yourself. A fully connected layer maps a batch `x` of $N$ rows
        with $D$ features to `y = x @ w`, with `w` of shape $(D, M)$. Somewhere downstream a scalar
        loss $L$ is computed, and backprop hands the layer `dy` $= \partial L/\partial y$, of the same
        shape as `y`. Return `(dx, dw)`, the gradients $\partial L/\partial x$ and $\partial L/\partial w$
        (each of the shape of what it differentiates), with NumPy only. Write one entry of `y` as a sum
        over $d$ and apply the chain rule; the check includes $D = M$, where a product with the right
        shape can still be the wrong one.
        """
    ),
    code(
        '''
        def my_matmul_backward(x, w, dy):
            """Return (dx, dw) for y = x @ w, given dy = dL/dy. x (N, D), w (D, M), dy (N, M)."""
            raise NotImplementedError  # your code here
        ''',
        "exercise",
    ),
    code(
        """
        # Self-check: compares with the framework's autograd on a few shapes.
        with check(my_matmul_backward) as matmul_backward:
            rng = np.random.default_rng(1)
            for n, d, m in [(3, 5, 5), (4, 3, 5), (1, 7, 2), (6, 6, 6)]:  # D = M first: there shapes cannot catch dy @ w
                x = mt.tensor(rng.standard_normal((n, d)), requires_grad=True)
                w = mt.tensor(rng.standard_normal((d, m)), requires_grad=True)
                dy = rng.standard_normal((n, m))
                (x @ w).backward(dy)  # backward from a given upstream gradient
                dx, dw = matmul_backward(x.numpy(), w.numpy(), dy)
                assert np.shape(dx) == x.shape and np.shape(dw) == w.shape, \\
                    f"got shapes {np.shape(dx)} and {np.shape(dw)}, want {x.shape} and {w.shape}"
                assert np.allclose(dx, x.grad.numpy()), "dx differs from autograd's"
                assert np.allclose(dw, w.grad.numpy()), "dw differs from autograd's"
            passed(matmul_backward, "dx and dw agree with autograd")
        """,
        "check",
    ),
    md(
        r"""
        ## Deriving the backward pass from shapes

        (The answer to exercise 1.1.) A fully connected layer maps a batch $X$ of $N$ rows with $D$ features to $Y = XW$ with
        $W \in \mathbb{R}^{D\times M}$. Somewhere downstream a scalar loss $L$ is computed, and
        backprop hands the layer $dY = \partial L/\partial Y$, **the same shape as $Y$**. The layer must
        return $dX = \partial L / \partial X$ (shape of $X$) and $dW$ (shape of $W$).

        $Y$ is linear in $X$, so $dX$ is linear in $dY$ and involves $W$. When $N$, $D$ and $M$ all
        differ there is exactly one way to multiply an $(N, M)$ matrix and a $(D, M)$ matrix into an
        $(N, D)$ one: $dX = dY\,W^\top$. Likewise $dW$ must be $(D, M)$, built from $X$ $(N, D)$ and
        $dY$ $(N, M)$: $dW = X^\top dY$. The shapes are a mnemonic, not a proof: when two sizes are
        equal (fc7 is $4096\times4096$, so $D = M$) the wrong product $dY\,W$ has the right shape too.
        The index form is the proof:

        $$Y_{nm} = \sum_d X_{nd} W_{dm}
          \quad\Rightarrow\quad
          \frac{\partial L}{\partial X_{nd}} = \sum_m \frac{\partial L}{\partial Y_{nm}}\,\frac{\partial Y_{nm}}{\partial X_{nd}}
          = \sum_m dY_{nm} W_{dm} = (dY\,W^\top)_{nd},
          \qquad
          \frac{\partial L}{\partial W_{dm}} = \sum_n X_{nd}\, dY_{nm} = (X^\top dY)_{dm}.$$

        With AlexNet's fc6 (a batch of 128, $256\cdot 6\cdot 6 = 9216$ inputs, 4096 outputs):
        """
    ),
    code(
        """
        N, D, M = 128, 9216, 4096
        print(f"forward   Y  = X·W    ({N}, {M}) = ({N}, {D}) · ({D}, {M})")
        print(f"backward  dX = dY·Wᵀ  ({N}, {D}) = ({N}, {M}) · ({M}, {D})")
        print(f"          dW = Xᵀ·dY  ({D}, {M}) = ({D}, {N}) · ({N}, {M})")
        gflop = 2 * N * D * M / 1e9  # a multiply and an add per term
        print(f"each product costs 2·N·D·M = {gflop:.2f} GFLOP: the backward pass costs twice the forward")
        """
    ),
    md(
        r"""
        Now check the formulas against the framework's autograd. Any $dY$ is a possible upstream
        gradient, so pick a random one, $R$: the loss $L = \sum_{nm} R_{nm} Y_{nm}$ has exactly
        $dY = R$ (this is also how `mt.gradcheck` turns a tensor-valued function into a scalar one).
        """
    ),
    code(
        """
        rng = np.random.default_rng(0)
        X, W = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
        R = rng.standard_normal((4, 5))  # the upstream gradient dL/dY

        x = mt.tensor(X, requires_grad=True)  # float64 arrays stay float64
        w = mt.tensor(W, requires_grad=True)
        L = ((x @ w) * mt.tensor(R)).sum()
        L.backward()

        dX, dW = R @ W.T, X.T @ R
        print("dX: autograd vs dY·Wᵀ, max difference", np.abs(x.grad.numpy() - dX).max())
        print("dW: autograd vs Xᵀ·dY, max difference", np.abs(w.grad.numpy() - dW).max())
        assert np.allclose(x.grad.numpy(), dX) and np.allclose(w.grad.numpy(), dW)
        """
    ),
    md(
        r"""
        The package's fully connected op stores the weight PyTorch's way, $(M, D)$ = (out, in), and
        computes $y = x W^\top + b$. Substituting $W^\top$ for $W$ above gives its backward:
        $dx = dy\,W$, $dW = dy^\top x$, and $db = \sum_n dy_n$ because the bias is added to every
        row (broadcasting is multiplication by a column of ones, and its transpose is a sum).
        (`listing` prints an op's NumPy reference code, the code the first cell selected; the
        package's optional numba and CUDA kernels are separate implementations of the same ops.)
        """
    ),
    code(
        """
        from minitorch_alex.ops.linear import Linear

        listing(Linear)
        """
    ),
    md(
        """
        Two pieces of the framework's plumbing appear in every listed op. `self.needs_input_grad[i]`
        says whether input `i` needs a gradient at all (the autograd engine sets it before calling
        `backward`), so an op skips the products nobody will read (the input gradient of a network's
        first layer, whose input is the data, is one). `fresh_grads = True` promises the engine that `backward` returns new
        arrays, not views of something it keeps, so a parameter may take its gradient as its `.grad`
        without a copy.
        """
    ),
    md(
        """
        A convolution is the same three products once its input windows are unrolled into a matrix
        (notebook 2 builds that matrix, notebook 3 its backward). From the docstring of
        `minitorch_alex/ops/conv.py`:
        """
    ),
    code(
        """
        import minitorch_alex.ops.conv as conv_ops

        print(conv_ops.__doc__.split("This is the reference")[0])  # the rest is about the backends
        """
    ),
    md(
        r"""
        ## Finite differences

        A derivation can be wrong, so every op's backward is checked against a gradient computed
        without it. The central difference

        $$\frac{\partial f}{\partial x_i} \approx \frac{f(x + \varepsilon e_i) - f(x - \varepsilon e_i)}{2\varepsilon}$$

        is off by $\tfrac{\varepsilon^2}{6} f'''$ (Taylor: the even terms cancel), while the forward
        difference $(f(x+\varepsilon e_i) - f(x))/\varepsilon$ is off by $\tfrac{\varepsilon}{2} f''$,
        far more for a small $\varepsilon$.
        It costs two evaluations of $f$ per input entry, which is why gradient checks use small inputs.

        ### Exercise 1.2: central differences

        Perturb one entry of `x` at a time, in place, with the step `eps` you are given, and put the
        entry back **exactly** before moving on: save it and assign it back (`x[i] = orig`).
        Undoing the step arithmetically (`+= eps`, `-= 2 * eps`, `+= eps`) does not give back the same
        float, because each addition rounds. The damage is tiny, about $10^{-16}$ per entry, but it is
        silent: every later entry is then measured at a shifted point, and the caller's array has
        changed under it. The check also runs with a large step, $\varepsilon = 0.1$, where central
        and forward differences differ by orders of magnitude, so the formula has to be the central one.
        """
    ),
    code(
        '''
        def my_numerical_gradient(f, x, eps=1e-6):
            """Central differences of f (array -> float) at x, one entry at a time; x must be left unchanged."""
            raise NotImplementedError  # your code here
        ''',
        "exercise",
    ),
    code(
        """
        # Self-check: a function whose gradient we know exactly.
        with check(my_numerical_gradient) as numerical_gradient:
            rng = np.random.default_rng(2)
            x = rng.uniform(-2, 2, size=(3, 4))
            x_before = x.copy()
            f = lambda v: float(np.sum(np.sin(v) * v**2))
            exact = np.cos(x) * x**2 + 2 * x * np.sin(x)
            got = numerical_gradient(f, x, eps=1e-4)
            assert np.shape(got) == x.shape, f"got shape {np.shape(got)}, want {x.shape}"
            assert np.array_equal(x, x_before), \\
                f"x changed by up to {np.abs(x - x_before).max():.1e}: put each entry back by assigning the saved value"
            err = np.abs(got - exact).max()
            # central: off by ~eps²·|f'''|/6 ~ 1e-8 here; forward differences would be off by ~eps·|f''|/2 ~ 1e-4
            assert err < 1e-6, f"max error {err:.1e}: forward instead of central differences?"
            # at eps = 0.1 the central formula is off by ~1e-3 and the forward one by ~0.1, so the answer must be
            # the central formula evaluated at the step it is given
            big = 0.1
            steps = np.eye(x.size).reshape(x.size, *x.shape) * big
            central = np.array([(f(x + e) - f(x - e)) / (2 * big) for e in steps]).reshape(x.shape)
            gap = np.abs(np.asarray(numerical_gradient(f, x, eps=big)) - central).max()
            assert gap < 1e-10, f"at eps = {big} the answer is {gap:.1e} from the central difference: forward differences? a fixed step?"
            passed(numerical_gradient, f"central differences, max error {err:.1e}")
        """,
        "check",
    ),
    md(
        """
        The package's `mt.gradcheck` does this for any function of tensors: it reduces a tensor
        output to the scalar `sum(r * fn(x))` with a fixed random `r`, runs one backward pass, and
        compares every entry with central differences in float64. It returns a report, and raises
        `GradcheckError` with the worst entry when one falls outside `atol + rtol * |numeric|`.
        """
    ),
    code(
        """
        rng = np.random.default_rng(3)
        x = mt.tensor(rng.standard_normal((4, 3)), requires_grad=True)
        w = mt.tensor(rng.standard_normal((3, 5)), requires_grad=True)
        target = [0, 2, 4, 1]
        print(mt.gradcheck(lambda x, w: F.cross_entropy(x @ w, target), [x, w]))

        try:  # it refuses float32 inputs: the next section shows why
            mt.gradcheck(lambda x: (x @ x.T).sum(), [mt.tensor(np.ones((2, 2), np.float32), requires_grad=True)])
        except TypeError as e:
            print("float32:", e)
        """
    ),
    md(
        r"""
        ## Why gradient checks use float64: sweeping the step

        Two errors pull the step size $\varepsilon$ in opposite directions:

        * **truncation**, from the Taylor series: about $\tfrac{\varepsilon^2}{6}|f'''|$, shrinking as $\varepsilon \to 0$;
        * **rounding**: $f(x \pm \varepsilon e_i)$ are each computed with a relative error of about the
          machine epsilon $u$ ($2.2\cdot10^{-16}$ in float64, $1.2\cdot10^{-7}$ in float32), and
          dividing their difference by $2\varepsilon$ blows it up to about $u|f|/\varepsilon$.

        The total is smallest near $\varepsilon^* \sim u^{1/3}$, where it is about $u^{2/3}$: roughly
        $10^{-11}$ in float64 but only $10^{-5}$ in float32. The sweep below measures it for the loss
        `cross_entropy(X @ W)` (smooth, so both errors show): the gradient w.r.t. $X$ by central
        differences evaluated in each dtype, against the float64 autograd gradient, for 49 step sizes.
        """
    ),
    code(
        """
        rng = np.random.default_rng(4)
        X0, W0 = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
        target = [0, 2, 4, 1]

        def loss(X, W):
            return F.cross_entropy(mt.tensor(X) @ mt.tensor(W), target).item()

        x = mt.tensor(X0, requires_grad=True)
        F.cross_entropy(x @ mt.tensor(W0), target).backward()
        exact = x.grad.numpy()  # the reference (it agrees with float64 differences to ~1e-11, below)

        def central_difference(dtype, eps):
            X, W = X0.astype(dtype), W0.astype(dtype)  # the whole computation runs in dtype
            grad = np.zeros(X0.shape)
            with mt.no_grad():
                for idx in np.ndindex(X.shape):
                    Xp, Xm = X.copy(), X.copy()
                    Xp[idx] += dtype(eps)  # in float32 the step itself is rounded, as in any float32 code
                    Xm[idx] -= dtype(eps)
                    grad[idx] = (loss(Xp, W) - loss(Xm, W)) / (2 * eps)
            return grad

        eps_values = np.logspace(-12, 0, 49)
        errors = {}
        for dtype in (np.float32, np.float64):
            errors[dtype] = np.array([
                np.linalg.norm(central_difference(dtype, eps) - exact) / np.linalg.norm(exact) for eps in eps_values
            ])
        at_1e6 = np.argmin(np.abs(eps_values - 1e-6))
        for dtype, err in errors.items():
            best = err.argmin()
            print(f"{np.dtype(dtype).name}: best step {eps_values[best]:.0e} gives relative error {err[best]:.1e}; "
                  f"at step 1e-6 (gradcheck's) the error is {err[at_1e6]:.1e}")
        """
    ),
    code(
        """
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        colours = {np.float32: "tab:red", np.float64: "tab:blue"}
        for dtype, err in errors.items():
            u = np.finfo(dtype).eps
            ax.loglog(eps_values, err, "o-", ms=3, color=colours[dtype], label=f"{np.dtype(dtype).name} central differences")
            ax.loglog(eps_values, u / eps_values, ":", color=colours[dtype], label=f"rounding ~ u/ε, u = {u:.1e}")
        ax.loglog(eps_values, eps_values**2 / 6, "--", color="gray", label="truncation ~ ε²/6")
        ax.axvline(1e-6, color="k", lw=0.8)
        ax.text(1.3e-6, 1e-13, "mt.gradcheck's ε", fontsize=9)
        ax.set_ylim(1e-14, 10)
        ax.set_xlabel("step ε")
        ax.set_ylabel("relative error of the gradient")
        ax.set_title("Central differences: truncation vs rounding error")
        ax.legend(fontsize=8, loc="lower left")
        plt.show()
        """
    ),
    md(
        r"""
        Reading the plot from the right: for large steps both dtypes follow the same truncation line
        (slope 2). Going left, the rounding error (slope $-1$) takes over, at $\varepsilon \approx 10^{-2}$
        in float32 but only near $10^{-5}$ in float64. In float32 the curve flattens at 1 for the
        smallest steps: $x + \varepsilon$ rounds back to $x$ and the difference is exactly 0.

        Consequences for testing a backward pass:

        * In float32 **no step** gets the relative error below about $10^{-5}$, and at $\varepsilon = 10^{-6}$ it
          is of order $10^{-1}$. A bug whose effect on the gradient is smaller than that hides in the noise.
          Notebook 4 has one: LRN's backward without its cross-channel terms, whose relative error grows
          like $\alpha a^2$ for activations of size $a$ (notebook 4 measures the constant in front, which
          varies with the input), so it shrinks 10,000-fold at the paper's $\alpha = 10^{-4}$ as $a$
          goes from 1 to 0.01, down to where float32 cannot see it.
        * In float64 at $\varepsilon = 10^{-6}$ the error is around $10^{-10}$, so a check can demand
          `rtol=1e-6` and still leave more than three orders of magnitude of margin. That is what `mt.gradcheck`
          does, and why it refuses float32 inputs. (The ops are dtype-generic, so the float64 check
          covers the float32 code path too; comparisons with PyTorch in float32 cover the rest.)
        """
    ),
    code(
        """
        best32, best64 = errors[np.float32].min(), errors[np.float64].min()
        assert best64 < 1e-9 < 1e-6 < best32, "float64 can resolve what float32 cannot"
        assert errors[np.float64][at_1e6] < 1e-8 and errors[np.float32][at_1e6] > 1e-2
        print(f"best float32 error {best32:.1e} vs best float64 error {best64:.1e}: {best32 / best64:.0e} times larger")
        """
    ),
]
