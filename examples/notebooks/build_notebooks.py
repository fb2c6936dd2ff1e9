"""Write the course notebooks from the cell sources in this file, execute them, save them with
their outputs.

    python examples/notebooks/build_notebooks.py              # all notebooks
    python examples/notebooks/build_notebooks.py 02_im2col    # the ones whose name contains "02_im2col"
    python examples/notebooks/build_notebooks.py --no-execute # sources only, no outputs

The .ipynb files are generated: edit the cells here and re-run this script, so the sources stay
reviewable as Python and the committed outputs always come from one top-to-bottom run.
tests/test_notebooks.py checks that the committed notebooks' cells match this file.

Cells are tagged for the tests: "setup" (imports a self-check needs), "exercise" (a stub the
student fills in; its reference answer is the function of the same name in solutions.py) and
"check" (the self-check of the exercise defined in the cell before it).
"""
import os
import sys
import time
from pathlib import Path
from textwrap import dedent

import nbformat

HERE = Path(__file__).resolve().parent
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def md(text):
    return ("markdown", dedent(text).strip(), ())


def code(text, *tags):
    return ("code", dedent(text).strip(), tags)


SETUP = code(
    """
    import inspect
    import os
    import time

    # Run the readable NumPy reference ops, the code these notebooks show (the package can also hand
    # some ops to optional numba kernels, its "fast" backend; the listings' `fast` branches are those).
    os.environ["MINITORCH_ALEX_BACKEND"] = "reference"

    import numpy as np
    import matplotlib.pyplot as plt

    import minitorch_alex as mt
    import minitorch_alex.nn.functional as F
    from exercises import resolve  # the glue between exercise stubs and solutions.py

    np.set_printoptions(precision=4, suppress=True, linewidth=110)
    """,
    "setup",
)

EXERCISE_NOTE = md(
    """
    **How the exercises work.** Each exercise is a function stub, `raise NotImplementedError  # your code here`.
    Replace the body with your code and run the self-check cell below it: its `assert`s fail until
    your function is right. While the stub is untouched the check falls back to the reference answer
    in `solutions.py` (it says so), so the notebook always runs top to bottom; CI sets
    `MINITORCH_SOLUTIONS=1` to run the checks on the reference answers.
    """
)


# ==================================================================================================
# 01: backprop as matrix products
# ==================================================================================================

def notebook_01():
    return [
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
        md(
            r"""
            ## Deriving the backward pass from shapes

            A fully connected layer maps a batch $X$ of $N$ rows with $D$ features to $Y = XW$ with
            $W \in \mathbb{R}^{D\times M}$. Somewhere downstream a scalar loss $L$ is computed, and
            backprop hands the layer $dY = \partial L/\partial Y$, **the same shape as $Y$**. The layer must
            return $dX = \partial L / \partial X$ (shape of $X$) and $dW$ (shape of $W$).

            $Y$ is linear in $X$, so $dX$ is linear in $dY$ and involves $W$. There is exactly one way to
            multiply an $(N, M)$ matrix and a $(D, M)$ matrix into an $(N, D)$ one: $dX = dY\,W^\top$.
            Likewise $dW$ must be $(D, M)$, built from $X$ $(N, D)$ and $dY$ $(N, M)$: $dW = X^\top dY$.
            The shapes leave no other choice, and the index form confirms it:

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
            (In this and later listings, a branch on `use_fast` or `self.fast` hands the work to the
            package's optional numba kernels; the first cell selected the NumPy code after it.)
            """
        ),
        code(
            """
            from minitorch_alex.ops.linear import Linear

            print(inspect.getsource(Linear))
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

            print(conv_ops.__doc__)
            """
        ),
        EXERCISE_NOTE,
        md(
            """
            ### Exercise 1.1: the backward pass of a matrix product

            Return `(dx, dw)` for `y = x @ w` given `dy`, with NumPy only.
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
            matmul_backward = resolve(my_matmul_backward)
            rng = np.random.default_rng(1)
            for n, d, m in [(4, 3, 5), (1, 7, 2), (6, 6, 6)]:
                x = mt.tensor(rng.standard_normal((n, d)), requires_grad=True)
                w = mt.tensor(rng.standard_normal((d, m)), requires_grad=True)
                dy = rng.standard_normal((n, m))
                (x @ w).backward(dy)  # backward from a given upstream gradient
                dx, dw = matmul_backward(x.numpy(), w.numpy(), dy)
                assert np.shape(dx) == x.shape and np.shape(dw) == w.shape, \\
                    f"got shapes {np.shape(dx)} and {np.shape(dw)}, want {x.shape} and {w.shape}"
                assert np.allclose(dx, x.grad.numpy()), "dx differs from autograd's"
                assert np.allclose(dw, w.grad.numpy()), "dw differs from autograd's"
            print("✓ my_matmul_backward agrees with autograd")
            """,
            "check",
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
            numerical_gradient = resolve(my_numerical_gradient)
            rng = np.random.default_rng(2)
            x = rng.uniform(-2, 2, size=(3, 4))
            x_before = x.copy()
            f = lambda v: float(np.sum(np.sin(v) * v**2))
            exact = np.cos(x) * x**2 + 2 * x * np.sin(x)
            got = numerical_gradient(f, x, eps=1e-4)
            assert np.shape(got) == x.shape, f"got shape {np.shape(got)}, want {x.shape}"
            assert np.array_equal(x, x_before), "x must be restored after each perturbation"
            err = np.abs(got - exact).max()
            # central: off by ~eps²·|f'''|/6 ~ 1e-8 here; forward differences would be off by ~eps·|f''|/2 ~ 1e-4
            assert err < 1e-6, f"max error {err:.1e}: forward instead of central differences?"
            print(f"✓ central differences, max error {err:.1e}")
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
              is of order $10^{-1}$. A bug whose effect on the gradient is $10^{-4}$ relative (notebook 4 has one:
              LRN's backward without its cross-channel term, at the paper's $\alpha = 10^{-4}$) hides in that noise.
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


# ==================================================================================================
# 02: im2col
# ==================================================================================================

def notebook_02():
    return [
        md(
            r"""
            # 2. im2col: convolution as one matrix product

            A convolution slides a small filter over the image and takes a dot product at every
            position. Written as loops that is seven nested loops; rewritten with **im2col** ("image to
            columns") it becomes one matrix product, which a BLAS library runs near the machine's peak.
            This notebook

            1. prints the unrolled matrix for a tiny input and the output-size formula;
            2. builds AlexNet's conv1 as a $363 \times 3025$ matrix per image;
            3. proves a naive loop and im2col equal, then times them;
            4. applies hand-made filters (edges, colour) to a photo.
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
            * **Row** $(c, i, j)$ is what kernel tap $(i, j)$ of channel $c$ sees in every window. That is a
              strided slice of the input, `x[:, c, i : i + s·OH : s, j : j + s·OW : s]`. So the library does not
              loop over the $N \cdot OH \cdot OW$ windows but over the $k_h k_w$ taps, copying one slice each:
            """
        ),
        code(
            """
            row = 1 * 9 + 2 * 3 + 0  # row (c=1, i=2, j=0)
            assert np.array_equal(col[row], x[0, 1, 2:4, 0:2].ravel())
            print(inspect.getsource(im2col))
            """
        ),
        md(
            r"""
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
            ## The output size

            Along one axis the window's first pixel can sit at $0, s, 2s, \dots$ as long as the window fits
            in the padded length $n + 2p$, i.e. up to $n + 2p - k$. That gives

            $$n_{\text{out}} = \left\lfloor \frac{n + 2p - k}{s} \right\rfloor + 1 .$$

            When $s$ does not divide $n + 2p - k$ the floor drops the last few pixels. The paper's
            "224×224 input, 55×55 conv1 output" is an instance: without padding it would be 54.25, which no
            network can produce; this package pads conv1 by 2, cuda-convnet and Caffe fed 227×227 crops.
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
            Implementations that cannot afford it tile the work or use other algorithms (FFT, Winograd);
            this package keeps the readable version.

            ## A naive loop, proven equal, then timed

            The definition, transcribed literally: one dot product per (image, filter, output pixel).
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
                    ax.imshow(image, cmap=cmap)
                else:  # signed responses: a symmetric colour scale, white at zero
                    ax.imshow(image, cmap=cmap, vmin=-lim, vmax=lim)
                ax.set_title(title)
                ax.axis("off")
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
        EXERCISE_NOTE,
        md(
            r"""
            ### Exercise 2.1: im2col with loops

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
            im2col_fn = resolve(my_im2col)
            rng = np.random.default_rng(4)
            for c, h, w, kh, kw, s in [(1, 4, 4, 3, 3, 1), (2, 5, 6, 3, 2, 1), (3, 7, 7, 3, 3, 2), (2, 9, 8, 4, 3, 3)]:
                x = rng.standard_normal((c, h, w))
                got = im2col_fn(x, kh, kw, s)
                want = im2col(x[None], (kh, kw), (s, s))
                assert np.shape(got) == want.shape, f"got shape {np.shape(got)}, want {want.shape}"
                assert np.allclose(got, want), f"values differ for C={c}, {h}x{w}, kernel {kh}x{kw}, stride {s}: is the row order (c, i, j)?"
            print("✓ my_im2col matches the library's im2col")
            """,
            "check",
        ),
        md(
            r"""
            ### Exercise 2.2: a box blur as a convolution weight

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
            blur_weight = resolve(my_box_blur_weight)
            rng = np.random.default_rng(5)
            x = rng.uniform(size=(1, 3, 12, 10))
            for k in (3, 5):
                w = np.asarray(blur_weight(3, k), dtype=np.float64)
                assert w.shape == (3, 3, k, k), f"weight shape {w.shape}, want (out, in, k, k) = (3, 3, {k}, {k})"
                y = F.conv2d(mt.tensor(x), mt.tensor(w)).numpy()
                # the mean of every k x k window of one channel: im2col of that channel alone, averaged over rows
                want = np.stack([im2col(x[:, c : c + 1], (k, k)).mean(axis=0).reshape(12 - k + 1, 10 - k + 1) for c in range(3)])
                assert np.allclose(y[0], want), "output channel c must be the k x k mean of input channel c alone"
            print("✓ my_box_blur_weight blurs each channel separately")
            """,
            "check",
        ),
    ]


# ==================================================================================================
# 03: convolution backward
# ==================================================================================================

def notebook_03():
    return [
        md(
            r"""
            # 3. The backward pass of a convolution

            With $\text{col} = \text{im2col}(x)$ the forward pass is $Y = W\cdot\text{col}$ (notebook 2), so
            notebook 1's rules give the backward pass at once:

            $$dW = dY\cdot\text{col}^\top, \qquad d\,\text{col} = W^\top dY, \qquad dx = \text{col2im}(d\,\text{col}).$$

            The new piece is **col2im**, which turns the gradient of the columns back into the gradient of
            the image. This notebook shows

            1. why col2im must *add* where windows overlap, and what breaks when it assigns;
            2. that the input gradient is itself a convolution, of $dY$ with the flipped filters (a "full" or
               transposed convolution);
            3. gradient checks against finite differences;
            4. the adjoint identity $\langle \text{im2col}(x), c\rangle = \langle x, \text{col2im}(c)\rangle$,
               an exact test of a linear op's backward.
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
        md(
            """
            The library's convolution, forward and backward (one product per group of channels; the
            `self.fast` branches are the optional numba kernels, not used here):
            """
        ),
        code(
            """
            print(inspect.getsource(Conv2d))
            """
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
            print(inspect.getsource(col2im))
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
            fig.colorbar(im, ax=axes, shrink=0.8)
            plt.show()
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

            ## The input gradient is a convolution with flipped weights

            In one dimension, with one channel, $y[r] = \sum_i w[i]\,x[r + i]$. Pixel $x[t]$ appears in the
            outputs $r = t - i$, so

            $$dx[t] = \sum_i dy[t - i]\; w[i] = \sum_{i'} dy[t - (k-1) + i']\; w[k - 1 - i'] \qquad (i' = k - 1 - i),$$

            with $dy$ taken as 0 outside its range. That is again a cross-correlation, of $dy$ zero-padded by
            $k - 1$ on both sides (a **full** convolution) with the **flipped** kernel $w[k-1-i']$. With
            channels, input channel $c$ collects from every output channel $o$, so the weight's two channel
            axes swap: $dx = \text{conv2d}(dy,\ \text{flip}(w)^{\top_{0,1}},\ \text{padding} = k - 1 - p)$.
            """
        ),
        EXERCISE_NOTE,
        md(
            r"""
            ### Exercise 3.1: the input gradient as a convolution (stride 1)

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
            input_grad = resolve(my_conv_input_grad)
            rng = np.random.default_rng(7)
            for n, c, o, h, k, p in [(1, 1, 1, 5, 3, 0), (2, 3, 4, 6, 3, 1), (1, 2, 3, 7, 5, 2), (2, 2, 2, 6, 2, 1)]:
                x = mt.tensor(rng.standard_normal((n, c, h, h)), requires_grad=True)
                w = rng.standard_normal((o, c, k, k))
                y = F.conv2d(x, mt.tensor(w), padding=p)
                dy = rng.standard_normal(y.shape)
                y.backward(dy)
                got = input_grad(dy, w, p)
                assert np.shape(got) == x.shape, f"got shape {np.shape(got)}, want {x.shape}"
                assert np.allclose(got, x.grad.numpy()), f"differs from autograd (C={c}, O={o}, kernel {k}, padding {p}): flipped? channels swapped?"
            print("✓ my_conv_input_grad agrees with autograd")
            """,
            "check",
        ),
        md(
            r"""
            With a stride $s > 1$ the outputs sit $s$ pixels apart, so first spread $dy$ out, inserting
            $s - 1$ zeros between its entries ("dilating" it), then proceed as above. Rows and columns at the
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
                # 1. dilate: dy's entries go where the windows started, stride apart
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
            ### Exercise 3.2: col2im with loops

            The adjoint of exercise 2.1's `my_im2col`: one image, no padding, `col` of shape
            `(C·kh·kw, OH·OW)` back to `(C, H, W)`, adding up where windows overlap. Loops are fine.
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
            col2im_fn = resolve(my_col2im)
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
            print("✓ my_col2im is the adjoint of im2col")
            """,
            "check",
        ),
    ]


# ==================================================================================================
# 04: the other AlexNet layers
# ==================================================================================================

def notebook_04():
    return [
        md(
            r"""
            # 4. The other AlexNet layers: ReLU, max-pool, LRN, dropout, softmax cross-entropy

            Between its convolutions and fully connected layers AlexNet uses five more ops. For each:
            the forward pass, its derivative, the library's implementation, and a gradient check,
            including the checks' blind spots: kinks and ties where the function has no derivative, a
            bug that hides at the paper's LRN constant, and randomness that must be held fixed.
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

            print(inspect.getsource(ReLU))
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
            derivative is 1 for that entry and 0 for the rest. The library unrolls the windows with
            im2col, remembers the argmax of each column, and in backward sends each output's gradient to
            its winner, with col2im adding up the pixels that win several windows:
            """
        ),
        code(
            """
            from minitorch_alex.ops.pool import MaxPool2d

            print(inspect.getsource(MaxPool2d))
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
            window around $j$, for an even $n$ it is the window mirrored. In the library (`window_sum` adds
            shifted copies along the channel axis):
            """
        ),
        code(
            """
            from minitorch_alex.ops.lrn import LocalResponseNorm

            print(inspect.getsource(LocalResponseNorm))
            """
        ),
        md(
            r"""
            **Why the check needs a large $\alpha$.** A tempting shortcut treats each channel as if it
            normalised only itself, keeping the $i = j$ term of the sum and dropping the **cross-channel**
            terms $i \ne j$. Every term of the sum carries a factor $\alpha a_i a_j$, so the part the
            shortcut loses is of relative size about $\alpha a^2$ for activations of size $a$. Here is that
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
            passed = {}
            print("wrong backward: max relative error, and the verdict of mt.gradcheck (rtol=1e-6)")
            print(f"{'alpha':>7s} | " + " | ".join(f"activations ~{scale:<5}" for scale in scales) + " | library's LRN")
            for alpha in (1e-4, 1e-3, 1e-2, 1e-1, 1.0):
                cells, library_ok = [], True
                for scale in scales:
                    x = mt.tensor(base * scale, requires_grad=True)
                    wrong = mt.gradcheck(lambda x: LRNWithoutCrossTerm.apply(x, size=5, alpha=alpha, beta=0.75, k=2.0),
                                         [x], raise_exception=False)
                    right = mt.gradcheck(lambda x: F.local_response_norm(x, 5, alpha, 0.75, 2.0), [x], raise_exception=False)
                    passed[alpha, scale] = wrong.ok
                    library_ok &= right.ok
                    cells.append(f"{wrong.max_rel_error:7.1e} {'passes' if wrong.ok else 'FAILS ':6s}")
                print(f"{alpha:7.0e} | " + " | ".join(f"{c:18s}" for c in cells) + f" | {'passes' if library_ok else 'FAILS'}")
                assert library_ok

            assert passed[1e-4, 0.01], "the paper's alpha with small activations: the bug passes"
            assert not passed[1.0, 0.01] and not passed[1.0, 1.0], "alpha = 1: the same inputs expose it"
            """
        ),
        md(
            r"""
            The error of the wrong backward grows like $\alpha a^2$: 10× per row down each column, 100× less
            per column across each row, until it saturates. With the paper's $\alpha = 10^{-4}$ and
            activations around 0.01 it is below $10^{-6}$ and **passes the strict float64 check**; with
            activations around 0.1 it is a few times $10^{-5}$, which a float32-style tolerance (`rtol=1e-3`,
            notebook 1) would pass as well. The same inputs fail at $\alpha = 1$. A test cannot count on the
            size of the activations a layer will see, so the package's tests check LRN at a large
            $\alpha$ (0.3), with this bug as a test that the check can fail. The general lesson: **choose a
            check's inputs and constants so that every term of the derivative matters**.

            ## Dropout

            While training, each unit is kept with probability $1 - p$ (the paper: $p = 0.5$, in fc6 and
            fc7) and zeroed otherwise: $y = x \odot m$ with a random 0/1 mask $m$. At test time the paper
            multiplies the outputs by $1 - p$ instead, so that each unit's expected input is unchanged;
            PyTorch's *inverted* dropout divides by $1 - p$ while training and does nothing at test time.
            The backward pass is $dx = dy \odot m$, **with the same mask** as the forward pass:
            """
        ),
        code(
            """
            from minitorch_alex.ops.dropout import Dropout

            print(inspect.getsource(Dropout))
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

            Since $\log p_{nt} = z_{nt} - \log\sum_{c'} e^{z_{nc'}}$ and the derivative of the log-sum-exp is
            the softmax, $\partial L/\partial z_{nc} = (p_{nc} - [c = t_n])/N$: fusing the softmax with the loss
            makes the gradient one subtraction. For the forward pass, subtracting each row's maximum before
            exponentiating changes nothing mathematically and keeps $e^{z}$ from overflowing:
            """
        ),
        code(
            """
            from minitorch_alex.ops.loss import CrossEntropy

            print(inspect.getsource(CrossEntropy))
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
        EXERCISE_NOTE,
        md(
            r"""
            ### Exercise 4.1: LRN backward

            Implement the formula above in NumPy for `a`, `g` of shape $(N, C, H, W)$ with window
            `size` (the window of channel $i$ covers $i - \lfloor n/2\rfloor \dots i + \lfloor (n-1)/2 \rfloor$,
            clipped at the ends; the paper's convention, $\alpha$ times the sum). The check uses $\alpha = 1$
            and an even window size, for the reasons above.
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
            lrn_backward = resolve(my_lrn_backward)
            rng = np.random.default_rng(8)
            alpha = 1.0  # at the paper's 1e-4 a backward without the cross-channel terms would pass (see above)
            for size, c in [(5, 8), (3, 4), (4, 6), (1, 3)]:
                a = rng.standard_normal((2, c, 3, 3))
                g = rng.standard_normal(a.shape)
                x = mt.tensor(a, requires_grad=True)
                F.local_response_norm(x, size, alpha, 0.75, 2.0).backward(g)
                got = lrn_backward(a, g, size, alpha, 0.75, 2.0)
                assert np.shape(got) == a.shape, f"got shape {np.shape(got)}, want {a.shape}"
                err = np.abs(got - x.grad.numpy()).max()
                assert err < 1e-9, f"size {size}: max difference from autograd {err:.1e} (cross-channel terms? the mirrored window for even sizes?)"
            print("✓ my_lrn_backward agrees with autograd")
            """,
            "check",
        ),
        md(
            r"""
            ### Exercise 4.2: the gradient of softmax cross-entropy

            Return $\partial L/\partial z$ for the **mean** cross-entropy of `logits` $(N, C)$ against integer
            `target` $(N,)$, in NumPy. Make it work for logits in the hundreds.
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
            ce_grad = resolve(my_cross_entropy_grad)
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
            print("✓ my_cross_entropy_grad agrees with autograd")
            """,
            "check",
        ),
    ]


# ==================================================================================================
# 05: AlexNet end to end
# ==================================================================================================

def notebook_05():
    return [
        md(
            r"""
            # 5. AlexNet end to end

            The whole network: its shapes stage by stage, the loss it starts from, a scaled-down copy that
            overfits a small batch and learns conv1 filters in seconds on a laptop CPU, and the paper's
            split over two GPUs, with the bytes that cross between them.
            """
        ),
        SETUP,
        md(
            r"""
            ## The network and its parameters

            `mt.models.alexnet()` is the paper's network on one device, the two GPU "towers" expressed as
            `groups=2` in conv2, conv4, conv5 and in the LRN layers. Building it draws 61 million weights
            from $N(0, 0.01^2)$, the paper's initialisation.
            """
        ),
        code(
            """
            from minitorch_alex.models.alexnet import LAYER_NAMES

            start = time.perf_counter()
            mt.manual_seed(0)
            model = mt.models.alexnet(num_classes=1000)
            print(f"built in {time.perf_counter() - start:.1f} s\\n")
            print(model, "\\n")
            for name in LAYER_NAMES:
                layer = getattr(model, name)
                print(f"{name:5s} weight {str(layer.weight.shape):20s} {layer.weight.size + layer.bias.size:>12,d} parameters")
            print(f"{'total':5s} {'':27s} {model.num_parameters():>12,d}")
            fc_share = sum(getattr(model, n).weight.size + getattr(model, n).bias.size for n in ("fc6", "fc7", "fc8")) / model.num_parameters()
            print(f"fully connected layers: {fc_share:.1%} of the parameters")
            assert model.num_parameters() == 60_965_224
            """
        ),
        md(
            """
            96% of the parameters are in the three fully connected layers (fc6 alone has 37.7 million),
            while most of the arithmetic is in the convolutions.

            ## Shapes through the network

            `model.stages(x)` runs the network and yields `(name, output)` after each stage. The input here
            is two images of standard normal noise, a stand-in for the paper's mean-subtracted RGB crops.
            """
        ),
        code(
            """
            PAPER_SHAPES = {"conv1": (96, 55, 55), "pool1": (96, 27, 27), "conv2": (256, 27, 27), "pool2": (256, 13, 13),
                            "conv3": (384, 13, 13), "conv4": (384, 13, 13), "conv5": (256, 13, 13), "pool5": (256, 6, 6),
                            "fc6": (4096,), "fc7": (4096,), "fc8": (1000,)}

            x = mt.randn(2, 3, 224, 224)
            model.eval()  # dropout off: the paper's test-time mode (outputs times 0.5)
            shapes, start = {}, time.perf_counter()
            print(f"{'stage':6s} {'output (N, ...)':>22s} {'values/image':>13s} {'KB/image (float32)':>19s}")
            with mt.no_grad():  # no graph: nothing to backpropagate here
                for name, out in model.stages(x):
                    shapes[name] = out.shape[1:]
                    per_image = int(np.prod(out.shape[1:]))
                    print(f"{name:6s} {str(out.shape):>22s} {per_image:>13,d} {per_image * 4 / 1024:>19.1f}")
            logits = out.numpy().astype(np.float64)
            print(f"\\nforward pass of 2 images: {time.perf_counter() - start:.2f} s")
            assert shapes == PAPER_SHAPES
            """
        ),
        md(
            r"""
            ## The initial loss is about $\ln C$

            With small random weights the logits are small, the softmax is close to uniform over the
            $C = 1000$ classes, and the cross-entropy of any label is close to $-\ln(1/C) = \ln C \approx 6.91$.
            A first loss far from $\ln C$ means a bug (wrong logit scale, labels off by one, a loss averaged
            wrongly) before any training has happened. More precisely, averaged over all $C$ possible labels
            the loss is $\operatorname{logsumexp}(z) - \operatorname{mean}(z)$, which for logits of standard
            deviation $\sigma$ is about $\ln C + \sigma^2/2$:
            """
        ),
        code(
            """
            C = logits.shape[1]
            logsumexp = logits.max(1) + np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1))
            expected = logsumexp - logits.mean(1)  # the loss averaged over every possible label, per image
            sigma = logits.std(1)
            print(f"ln C = {np.log(C):.4f}")
            print(f"loss averaged over all labels, per image: {expected.round(4)}; logit std {sigma.round(3)} "
                  f"so ln C + σ²/2 = {(np.log(C) + sigma**2 / 2).round(4)}")
            labels = [3, 7]
            print(f"cross-entropy for labels {labels}: {F.cross_entropy(mt.tensor(logits), labels).item():.4f}")
            assert np.all(np.abs(expected - np.log(C)) < 0.2)
            """
        ),
        md(
            """
            One SGD step of the real network (the paper's rule: momentum 0.9, weight decay 0.0005,
            learning rate 0.01) on these two images, to see what a step costs on a CPU:
            """
        ),
        code(
            """
            opt = mt.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
            model.train()  # dropout on
            start = time.perf_counter()
            loss = F.cross_entropy(model(x), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step_time = time.perf_counter() - start
            model.eval()
            with mt.no_grad():
                after = F.cross_entropy(model(x), labels).item()
            print(f"one step with a batch of 2: {step_time:.1f} s; loss on the same two images {loss.item():.3f} -> {after:.3f}")
            print(f"the paper's batch of 128 would take about {step_time * 64:.0f} s per step at this rate")
            assert after < loss.item()
            """
        ),
        md(
            r"""
            With two images and 61 million parameters, a single step already moves the logits toward the
            two labels. A step on a CPU takes seconds, and the paper took about 90 passes over 1.2 million
            images; the experiments below use a scaled-down copy instead.

            ## The two towers

            The network did not fit on one 3 GB GTX 580, so the paper split every layer in half across two
            GPUs (Figure 2). Each GPU holds half the filters of each layer and the matching half of the
            activations, and the GPUs communicate only at some layers: **conv3, fc6, fc7 and fc8 read the
            outputs of both towers**; conv2, conv4 and conv5 read only their own tower's maps (hence
            `groups=2`). At each crossing, each GPU must receive the other's half of the layer's input,
            and in the backward pass the gradients with respect to those same activations travel back.
            In float32:
            """
        ),
        code(
            """
            BYTES = np.dtype(np.float32).itemsize
            BATCH = 128
            halves = {  # what each tower sends the other at a crossing, per image (half of the stage's output)
                "conv3": ("pool2", shapes["pool2"]),
                "fc6": ("pool5", shapes["pool5"]),
                "fc7": ("fc6", shapes["fc6"]),
                "fc8": ("fc7", shapes["fc7"]),
            }
            print(f"{'reader':6s} {'reads':14s} {'each way/image':>15s} {'both ways/image':>16s} "
                  f"{'forward/batch':>14s} {'fwd+bwd/batch':>14s}")
            crossing_bytes = {}
            for reader, (source, shape) in halves.items():
                one_way = int(np.prod(shape)) // 2 * BYTES  # one tower's half of the source's output
                crossing_bytes[reader] = one_way
                half = (shape[0] // 2,) + tuple(shape[1:])
                print(f"{reader:6s} {source + ' ' + 'x'.join(map(str, half)):14s} {one_way:>13,d} B {2 * one_way:>14,d} B "
                      f"{2 * one_way * BATCH / 1e6:>11.2f} MB {4 * one_way * BATCH / 1e6:>11.2f} MB")
            per_image_each_way = sum(crossing_bytes.values())
            print(f"{'total':21s} {per_image_each_way:>13,d} B {2 * per_image_each_way:>14,d} B "
                  f"{2 * per_image_each_way * BATCH / 1e6:>11.2f} MB {4 * per_image_each_way * BATCH / 1e6:>11.2f} MB")
            assert crossing_bytes == {"conv3": 128 * 13 * 13 * 4, "fc6": 128 * 6 * 6 * 4, "fc7": 2048 * 4, "fc8": 2048 * 4}

            sent_per_gpu = 2 * per_image_each_way * BATCH  # forward activations + backward gradients, one direction
            print(f"\\neach GPU sends {sent_per_gpu / 1e6:.1f} MB per batch of {BATCH} (activations forward, gradients back)")
            print(f"at PCIe 2.0 x16's 8 GB/s per direction (in theory): {sent_per_gpu / 8e9 * 1e3:.1f} ms per batch;")
            steps = 90 * 1.2e6 / BATCH
            print(f"the paper's 90 epochs in 5-6 days is {5 * 86400 / steps:.2f}-{6 * 86400 / steps:.2f} s per batch")
            print(f"splitting the data instead (each GPU a whole copy of the network) would exchange the weight "
                  f"gradients: {model.num_parameters() * BYTES / 1e6:.0f} MB per GPU per batch")
            """
        ),
        md(
            r"""
            Splitting the **model** keeps the communication to the activations at four narrow points:
            pool5 and the fully connected layers are small even though fc6 and fc7 hold most of the
            weights, which never move. (The softmax also needs the 1000 logits in one place, at most 2 KB
            per image, negligible.) The diagram, with each red arrow labelled by the bytes it carries per
            image; the gradients travel back along the same arrows.
            """
        ),
        code(
            """
            from matplotlib.patches import FancyBboxPatch

            rows = [  # (label, per-tower output, the crossing that feeds this row, if any)
                ("conv1 · LRN · pool1", "48×27×27", None), ("conv2 · LRN · pool2", "128×13×13", None),
                ("conv3", "192×13×13", "conv3"), ("conv4", "192×13×13", None), ("conv5 · pool5", "128×6×6", None),
                ("fc6", "2048", "fc6"), ("fc7", "2048", "fc7"), ("fc8", "500 logits", "fc8"),
            ]
            fig, ax = plt.subplots(figsize=(8, 9.5))
            xs, box_w, box_h = (0.0, 4.0), 2.2, 0.55
            colours = ("#cfe2f3", "#fce5cd")
            ax.add_patch(FancyBboxPatch((xs[0] - box_w / 2, -box_h / 2), xs[1] - xs[0] + box_w, box_h,
                                        boxstyle="round,pad=0.02", fc="#eeeeee", ec="k"))
            ax.text(sum(xs) / 2, 0, "input 3×224×224 (both GPUs get the whole image)", ha="center", va="center", fontsize=9)
            for i, (label, size, crossing) in enumerate(rows, start=1):
                y = -1.2 * i
                for t, x0 in enumerate(xs):
                    ax.add_patch(FancyBboxPatch((x0 - box_w / 2, y - box_h / 2), box_w, box_h,
                                                boxstyle="round,pad=0.02", fc=colours[t], ec="k"))
                    ax.text(x0, y + 0.08, label, ha="center", va="center", fontsize=9)
                    ax.text(x0, y - 0.15, size, ha="center", va="center", fontsize=8, color="#444444")
                    ax.annotate("", xy=(x0, y + box_h / 2), xytext=(x0, y + 1.2 - box_h / 2),
                                arrowprops=dict(arrowstyle="->", color="k"))  # within the tower
                if crossing:
                    for t in (0, 1):  # from the other tower's previous row into this one
                        ax.annotate("", xy=(xs[t] + (0.5 if t == 0 else -0.5), y + box_h / 2),
                                    xytext=(xs[1 - t] + (-0.5 if t == 0 else 0.5), y + 1.2 - box_h / 2),
                                    arrowprops=dict(arrowstyle="->", color="tab:red", lw=1.5))
                    ax.text(sum(xs) / 2, y + 0.6, f"{crossing_bytes[crossing] / 1000:.1f} kB\\neach way",
                            ha="center", va="center", fontsize=8, color="tab:red",
                            bbox=dict(fc="white", ec="none", pad=0.5))
            ax.text(xs[0], 1.0, "GPU 1", ha="center", fontsize=12, weight="bold")
            ax.text(xs[1], 1.0, "GPU 2", ha="center", fontsize=12, weight="bold")
            ax.set_xlim(-1.6, 5.6)
            ax.set_ylim(-1.2 * len(rows) - 0.6, 1.4)
            ax.axis("off")
            ax.set_title(f"AlexNet's two towers: {per_image_each_way / 1000:.1f} kB per image cross each way, forward "
                         f"(and as much back)", fontsize=10)
            plt.show()
            """
        ),
        md(
            r"""
            ## A scaled-down AlexNet

            Same layer pattern (11×11 stride-4 conv1, ReLU, LRN with `groups=2`, overlapping 3×3/2 max-pools,
            grouped conv2/4/5, three fully connected layers with dropout), with a quarter to a third of the
            convolutions' channels and 256-unit fully connected layers, for 64×64 inputs: conv1 gives
            15×15 maps, the pools 7×7, 3×3 and 1×1.
            """
        ),
        code(
            """
            del model, opt, loss  # free the full network's weights, gradients and momentum (about 0.7 GB)

            from minitorch_alex import nn
            from minitorch_alex.nn import init

            class MiniAlexNet(nn.Module):
                def __init__(self, num_classes=8, widths=(32, 64, 96, 96, 64), hidden=256, dropout=0.5):
                    super().__init__()
                    c1, c2, c3, c4, c5 = widths
                    self.conv1 = nn.Conv2d(3, c1, 11, stride=4, padding=2)
                    self.conv2 = nn.Conv2d(c1, c2, 5, padding=2, groups=2)
                    self.conv3 = nn.Conv2d(c2, c3, 3, padding=1)
                    self.conv4 = nn.Conv2d(c3, c4, 3, padding=1, groups=2)
                    self.conv5 = nn.Conv2d(c4, c5, 3, padding=1, groups=2)
                    self.fc6, self.fc7, self.fc8 = nn.Linear(c5, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, num_classes)
                    self.lrn = nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0, groups=2)
                    self.drop = nn.Dropout(dropout)
                    # He initialisation, N(0, 2/fan_in), keeps the signal's scale through the ReLUs. The paper's
                    # N(0, 0.01²) with biases of 1 suits the full-width network; in this narrow one the loss stalls
                    # at the label frequencies. conv1 keeps the paper's 0.01, so its filters start as faint noise.
                    for name, p in self.named_parameters():
                        if name.endswith("bias"):
                            init.constant_(p, 0.0)
                        else:
                            std = 0.01 if name.startswith("conv1") else np.sqrt(2.0 / np.prod(p.shape[1:]))
                            init.normal_(p, 0.0, std)

                def forward(self, x):
                    x = F.max_pool2d(self.lrn(F.relu(self.conv1(x))), 3, 2)
                    x = F.max_pool2d(self.lrn(F.relu(self.conv2(x))), 3, 2)
                    x = F.relu(self.conv5(F.relu(self.conv4(F.relu(self.conv3(x))))))
                    x = F.flatten(F.max_pool2d(x, 3, 2), 1)
                    x = F.relu(self.fc6(x))
                    x = F.relu(self.fc7(self.drop(x)))
                    return self.fc8(self.drop(x))

            mt.manual_seed(0)
            print(f"MiniAlexNet: {MiniAlexNet().num_parameters():,} parameters")
            """
        ),
        md(
            """
            The data: coloured stripes in four orientations and two colours (8 classes), with random
            frequency and phase and plenty of pixel noise, generated on the fly, so nothing to download.
            One example of each class:
            """
        ),
        code(
            """
            ANGLES = np.deg2rad([0, 45, 90, 135])  # the direction the stripes' brightness varies along
            COLOURS = np.array([[1.0, 0.35, 0.0], [0.0, 0.45, 1.0]])  # orange, blue
            CLASSES = [f"{colour} {angle}°" for colour in ("orange", "blue") for angle in (0, 45, 90, 135)]

            def stripes(n, rng, size=64):
                labels = rng.integers(0, len(CLASSES), n)
                yy, xx = np.mgrid[0:size, 0:size] / size
                images = np.empty((n, 3, size, size), np.float32)
                for i, label in enumerate(labels):
                    theta = ANGLES[label % 4] + rng.normal(0, 0.1)
                    phase = 2 * np.pi * rng.uniform(3, 6) * (xx * np.cos(theta) + yy * np.sin(theta)) + rng.uniform(0, 2 * np.pi)
                    images[i] = COLOURS[label // 4][:, None, None] * np.sin(phase) + rng.normal(0, 0.3, (3, size, size))
                return images, labels

            def show(image):  # (3, H, W) around 0 -> (H, W, 3) in [0, 1]
                return np.clip(image.transpose(1, 2, 0) * 0.35 + 0.5, 0, 1)

            images, labels = stripes(64, np.random.default_rng(10))
            first = [int(np.flatnonzero(labels == c)[0]) for c in range(len(CLASSES))]  # one example of each class
            fig, axes = plt.subplots(1, 8, figsize=(12, 1.9))
            for ax, image, label in zip(axes, images[first], labels[first]):
                ax.imshow(show(image))
                ax.set_title(CLASSES[label], fontsize=8)
                ax.axis("off")
            plt.show()
            """
        ),
        md(
            r"""
            ## Overfitting a small batch

            The standard first test of a training setup: on a fixed batch of 32 images, with dropout off,
            the network must drive the loss to about zero. If it cannot memorise 32 images, something is
            broken (a wrong gradient, a learning rate far off, a disconnected layer), and no amount of data
            will fix it. The loss starts near $\ln 8 \approx 2.08$.
            """
        ),
        code(
            """
            rng = np.random.default_rng(0)
            mt.manual_seed(0)
            X, Y = stripes(32, rng)
            net = MiniAlexNet(dropout=0.0)
            opt = mt.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
            losses, start = [], time.perf_counter()
            for step in range(60):
                loss = F.cross_entropy(net(mt.tensor(X)), Y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
            net.eval()
            with mt.no_grad():
                accuracy = (net(mt.tensor(X)).numpy().argmax(1) == Y).mean()
            print(f"60 steps in {time.perf_counter() - start:.1f} s: loss {losses[0]:.3f} -> {losses[-1]:.5f}, "
                  f"training accuracy {accuracy:.0%}")

            fig, ax = plt.subplots(figsize=(6, 3.5))
            ax.semilogy(losses)
            ax.axhline(np.log(8), ls="--", color="gray", label="ln 8 (chance)")
            ax.set_xlabel("step")
            ax.set_ylabel("training loss")
            ax.set_title("MiniAlexNet memorising 32 images")
            ax.legend()
            plt.show()
            assert losses[-1] < 0.05 and accuracy == 1.0
            """
        ),
        md(
            r"""
            ## conv1's filters before and after training

            Now a short real training run: 150 steps, each on a fresh batch of 32 images, dropout on, the
            paper's SGD settings. Each filter is shown as an 11×11 colour image, scaled to its own range.
            """
        ),
        code(
            """
            rng = np.random.default_rng(1)
            mt.manual_seed(1)
            net = MiniAlexNet(dropout=0.5)
            before = net.conv1.weight.numpy().copy()
            opt = mt.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
            losses, start = [], time.perf_counter()
            for step in range(150):
                X, Y = stripes(32, rng)
                loss = F.cross_entropy(net(mt.tensor(X)), Y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
            after = net.conv1.weight.numpy().copy()
            net.eval()
            X_test, Y_test = stripes(512, np.random.default_rng(99))
            with mt.no_grad():
                test_accuracy = (net(mt.tensor(X_test)).numpy().argmax(1) == Y_test).mean()
            print(f"150 steps in {time.perf_counter() - start:.1f} s; mean loss of the last 20 steps {np.mean(losses[-20:]):.3f}; "
                  f"accuracy on 512 new images {test_accuracy:.1%} (chance 12.5%)")
            assert test_accuracy > 0.5
            """
        ),
        code(
            """
            def filter_grid(w, cols=8):
                # (O, 3, k, k) -> one RGB image, each filter min-max scaled on its own, 1-pixel white gaps
                o, _, k, _ = w.shape
                rows = -(-o // cols)
                grid = np.ones((rows * (k + 1) + 1, cols * (k + 1) + 1, 3))
                for i, f in enumerate(w):
                    f = f.transpose(1, 2, 0)
                    f = (f - f.min()) / (f.max() - f.min() + 1e-12)
                    r, c = divmod(i, cols)
                    grid[1 + r * (k + 1) : 1 + r * (k + 1) + k, 1 + c * (k + 1) : 1 + c * (k + 1) + k] = f
                return grid

            fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
            for ax, w, title in zip(axes, (before, after, after - before), ("before: N(0, 0.01²) noise", "after 150 steps", "after − before")):
                ax.imshow(filter_grid(w), interpolation="nearest")
                ax.set_title(title)
                ax.axis("off")
            plt.show()
            """
        ),
        md(
            """
            The filters have become oriented stripes in orange and blue, the colours and orientations of
            the data, with some initial noise still visible; the change alone (right) shows the learned
            structure cleanly. On ImageNet, AlexNet's 96 conv1 filters became edge detectors at many
            orientations and frequencies plus colour blobs (Figure 3 of the paper), for the same reason:
            those are the patterns that the first layer can use to tell its data apart.
            """
        ),
        EXERCISE_NOTE,
        md(
            r"""
            ### Exercise 5.1: AlexNet's shapes from the formulas

            Without running the network, return a dict mapping `"conv1"`, `"pool1"`, `"conv2"`, `"pool2"`,
            `"conv3"`, `"conv4"`, `"conv5"`, `"pool5"` to the `(channels, height, width)` of that stage's
            output for a `size`×`size` input, with conv1 padded by `conv1_padding` (notebook 2 has the
            formula; the layer table is in `minitorch_alex/models/alexnet.py`).
            """
        ),
        code(
            '''
            def my_alexnet_shapes(size=224, conv1_padding=2):
                """{"conv1": (96, H, W), "pool1": ..., ..., "pool5": ...} for a size x size input."""
                raise NotImplementedError  # your code here
            ''',
            "exercise",
        ),
        code(
            """
            # Self-check: this package's 224 input with padding 2, Caffe's 227 without, and 224 without.
            shapes_fn = resolve(my_alexnet_shapes)
            paper = {"conv1": (96, 55, 55), "pool1": (96, 27, 27), "conv2": (256, 27, 27), "pool2": (256, 13, 13),
                     "conv3": (384, 13, 13), "conv4": (384, 13, 13), "conv5": (256, 13, 13), "pool5": (256, 6, 6)}
            unpadded_224 = {"conv1": (96, 54, 54), "pool1": (96, 26, 26), "conv2": (256, 26, 26), "pool2": (256, 12, 12),
                            "conv3": (384, 12, 12), "conv4": (384, 12, 12), "conv5": (256, 12, 12), "pool5": (256, 5, 5)}
            for (size, padding), want in [((224, 2), paper), ((227, 0), paper), ((224, 0), unpadded_224)]:
                got = {name: tuple(int(v) for v in shape) for name, shape in shapes_fn(size, padding).items()}
                assert got == want, f"size {size}, conv1 padding {padding}: got {got}"
            print("✓ my_alexnet_shapes reproduces the network's shapes")
            """,
            "check",
        ),
    ]


# ==================================================================================================
# assembly
# ==================================================================================================

NOTEBOOKS = {
    "01_backprop_matrix_products.ipynb": notebook_01,
    "02_im2col.ipynb": notebook_02,
    "03_conv_backward.ipynb": notebook_03,
    "04_alexnet_layers.ipynb": notebook_04,
    "05_alexnet_end_to_end.ipynb": notebook_05,
}


def build(filename):
    """The notebook ``filename`` without outputs, as an nbformat NotebookNode."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    stem = filename.split("_")[0]
    for i, (kind, source, tags) in enumerate(NOTEBOOKS[filename]()):
        cell = nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
        cell.id = f"nb{stem}-{i:02d}"  # stable ids keep regenerated notebooks' diffs small
        if tags:
            cell.metadata["tags"] = list(tags)
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def execute(nb, timeout=600):
    """Run ``nb`` in place in a fresh python3 kernel started in this folder, with the reference
    solutions (MINITORCH_SOLUTIONS=1), the inline matplotlib backend (so figures are saved) and
    one BLAS thread, as tests/test_notebooks.py runs them (the timings printed are single-core)."""
    from nbclient import NotebookClient

    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["MINITORCH_SOLUTIONS"] = "1"
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(nb, kernel_name="python3", timeout=timeout, record_timing=False,
                       resources={"metadata": {"path": str(HERE)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def main(argv):
    run = "--no-execute" not in argv
    wanted = [a for a in argv if not a.startswith("--")]
    for filename in NOTEBOOKS:
        if wanted and not any(w in filename for w in wanted):
            continue
        nb = build(filename)
        if run:
            start = time.perf_counter()
            execute(nb)
            print(f"{filename}: executed in {time.perf_counter() - start:.1f} s")
        nbformat.write(nb, HERE / filename)
        print(f"wrote {HERE / filename}")


if __name__ == "__main__":
    main(sys.argv[1:])
