"""The cells of 06_paper_experiments.ipynb: edit them here, then run ``python build_notebooks.py 06``."""
from cells import EXERCISE_NOTE, SETUP, code, md

CELLS = [
    md(
        r"""
        # 6. The paper's experiments, small

        Krizhevsky, Sutskever and Hinton justify their design choices with a handful of experiments.
        Each is repeated here on a small network and generated data, in seconds on a laptop CPU:

        1. **ReLU vs tanh** (Figure 1): how much faster a network with ReLUs trains;
        2. **the update rule** (section 5): momentum and weight decay, which you write (exercise 6.1)
           and check against the optimiser;
        3. **data augmentation** (section 4.1): random crops and PCA colour noise, with the package's
           own augmentation code, on a training set small enough to memorise;
        4. **dropout as an ensemble** (section 4.2): the test-time "multiply by 0.5" rule against
           averaging many dropout networks;
        5. **the two towers' conv1 filters** (Figure 3).

        The network is `SmallConvNet` from `small_net.py` beside this notebook: three strided
        convolutions and a fully connected classifier for 32×32 images, about the size of the
        four-layer network of Figure 1. The data are notebook 5's coloured stripes (8 classes: four
        orientations, two colours), at 32×32.

        **A harder task.** Stripes are easy, which weakens every comparison. Set `DATA =
        "fashion-mnist"` in the next code cell (or `MINITORCH_NOTEBOOK_DATA=fashion-mnist` in the
        environment) to run experiments 1-3 on Fashion-MNIST instead: 28×28 grey photos of clothes in
        10 classes, from Debian's `dataset-fashion-mnist` package (`apt-get install
        dataset-fashion-mnist`, read by the package's own `minitorch_alex.data.fashion_mnist`), each
        image in all three channels and centred in a 32×32 frame of its own black background.
        Experiments 4 and 5 stay on stripes. What changes is said after each experiment; the
        notebook's cells check each claim on the data they ran on.
        """
    ),
    SETUP,
    code(
        """
        import functools
        import os

        from small_net import DATA_VARIABLE, SmallConvNet, data_set, evaluate, filter_grid, show, stripes

        DATA = os.environ.get(DATA_VARIABLE, "stripes")  # "stripes" (generated, offline: the default) or "fashion-mnist"
        data = data_set(DATA)
        print(f"data for experiments 1-3: {DATA}, {len(data.classes)} classes: {', '.join(data.classes)}")
        Net = functools.partial(SmallConvNet, num_classes=len(data.classes))  # SmallConvNet for DATA's classes

        listing(SmallConvNet)
        X_val, Y_val = data.sample(300, np.random.default_rng(1), size=32, noise=0.6, split="test")
        X_stripes, Y_stripes = stripes(300, np.random.default_rng(1), size=32, noise=0.6)  # experiments 4-5

        def train(net, steps, batch, lr, momentum=0.9, weight_decay=5e-4, validate=None, stop_below=None):
            # SGD on batch(step) -> (images, labels); returns the training error of every step's batch.
            # validate=(train images, labels, validation images, labels): also record every 20 steps
            # (step, training loss, accuracy, validation loss, accuracy), all in eval mode.
            # stop_below: stop as soon as the training error averaged over 10 steps is below it
            opt = mt.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
            errors, net.curve = [], []
            for step in range(steps):
                if validate is not None and step % 20 == 0:
                    net.curve.append((step, *evaluate(net, *validate[:2]), *evaluate(net, *validate[2:])))
                X, Y = batch(step)
                with np.errstate(over="ignore", invalid="ignore"):  # a run that blows up is reported, not warned about
                    logits = net(mt.tensor(X))
                    loss = F.cross_entropy(logits, Y)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                errors.append(float((logits.numpy().argmax(1) != Y).mean()))
                net.diverged = not np.isfinite(loss.item())  # the loss overflowed: the run cannot recover
                if net.diverged:
                    break
                if stop_below is not None and len(errors) >= 10 and np.mean(errors[-10:]) < stop_below:
                    break
            return np.array(errors)

        def fresh_batches(seed, noise=0.6, source=data):  # batches of 32 new training images of source
            rng = np.random.default_rng(seed)
            return lambda step: source.sample(32, rng, size=32, noise=noise)

        def smoothed(errors, width=10):
            return np.convolve(errors, np.ones(width) / width, mode="valid")
        """,
    ),
    md(
        r"""
        ## 1. ReLU vs tanh (Figure 1)

        The paper: "a four-layer convolutional neural network with ReLUs reaches a 25% training error
        rate on CIFAR-10 six times faster than an equivalent network with tanh neurons", each with the
        learning rate that made it fastest. tanh is not in the package, which makes it a good
        two-line `Function`: $y = \tanh x$, $dy/dx = 1 - y^2$, computed from the saved output.

        We count the steps until the training error, averaged over 10 steps, falls below 25%, for
        each activation over a grid of learning rates wide enough that the fastest rate is inside it,
        not at its edge (a rate at the edge says only that a better one may lie beyond; the cell
        asserts it), and for three seeds (the initial weights and the batches). Runs that cannot beat
        the fastest one so far are stopped when they reach its step count, so each grid costs little.
        """
    ),
    code(
        """
        class Tanh(mt.Function):
            def forward(self, x):
                self.y = np.tanh(x)
                return self.y

            def backward(self, gy):
                return (gy * (1 - self.y**2),)

        x = mt.tensor(np.linspace(-2, 2, 7), requires_grad=True)
        assert mt.gradcheck(lambda x: Tanh.apply(x), [x]).ok
        tanh = Tanh.apply  # called as tanh(x), like F.relu

        def steps_to_25(errors):
            below = np.flatnonzero(smoothed(errors) < 0.25)
            return int(below[0]) + 10 if len(below) else None

        SEEDS, CAP = (0, 1, 2), 120
        GRIDS = {"stripes": {"ReLU": (0.05, 0.1, 0.02, 0.2), "tanh": (0.2, 0.1, 0.05, 0.4)},  # the likely fastest first
                 "fashion-mnist": {"ReLU": (0.02, 0.01, 0.05, 0.005), "tanh": (0.02, 0.01, 0.05, 0.005)}}[DATA]
        fastest, curves, nets, start = {}, {}, {}, time.perf_counter()  # (name, seed) -> (lr, steps); seed 0's runs
        for seed in SEEDS:
            for name, activation in (("ReLU", F.relu), ("tanh", tanh)):
                best_lr, best, report = None, CAP, []
                for lr in GRIDS[name]:
                    mt.manual_seed(seed)
                    net = Net(activation)
                    errors = train(net, best, fresh_batches(seed), lr, stop_below=0.25)
                    steps = steps_to_25(errors)
                    if steps is not None and (best_lr is None or steps < best):
                        best_lr, best = lr, steps
                        if seed == 0:
                            curves[name], nets[name] = errors, net
                    report.append(f"lr {lr}: {steps if steps is not None else f'>{len(errors)}'}")
                fastest[name, seed] = (best_lr, best)
                grid = GRIDS[name]
                print(f"seed {seed} {name:4s} steps to 25%: {', '.join(sorted(report, key=lambda r: float(r.split()[1][:-1])))}"
                      f"  -> fastest lr {best_lr}")
                assert best_lr is not None and min(grid) < best_lr < max(grid), f"{name}: the fastest rate is at the grid's edge"
        ratios = [fastest["tanh", seed][1] / fastest["ReLU", seed][1] for seed in SEEDS]
        print(f"\\ntanh needs {min(ratios):.1f} to {max(ratios):.1f} times as many steps as ReLU over seeds {SEEDS} "
              f"(each at its fastest rate; {time.perf_counter() - start:.0f} s for all runs)")
        if DATA == "stripes":
            assert 1 < min(ratios) and max(ratios) < 6  # ReLU first on every seed, far from 6x
        else:
            assert min(ratios) < 1 and max(ratios) < 6  # tanh first on some seed: the order can reverse

        def saturated(net, x):  # the share of each conv layer's tanh outputs with |y| > 0.9 (slope < 0.19)
            h, shares = mt.tensor(x), []
            with mt.no_grad():
                for conv in (net.conv1, net.conv2, net.conv3):
                    h = tanh(conv(h))
                    shares.append(float((np.abs(h.numpy()) > 0.9).mean()))
            return np.round(shares, 2)

        mt.manual_seed(0)
        print(f"saturated tanh units (conv1, conv2, conv3), seed 0: {saturated(Net(tanh), X_val)} at the start, "
              f"{saturated(nets['tanh'], X_val)} at 25% error")

        fig, ax = plt.subplots(figsize=(6.5, 3.8))
        for name, style in (("ReLU", "-"), ("tanh", "--")):
            errors = curves[name]
            ax.plot(np.arange(10, len(errors) + 1), smoothed(errors), style, label=f"{name} (lr {fastest[name, 0][0]})")
        ax.axhline(0.25, color="gray", lw=0.8)
        ax.set_xlabel("step (batches of 32)")
        ax.set_ylabel("training error (10-step average)")
        ax.set_title("Figure 1, small: ReLU vs tanh (seed 0, each run stops at 25%)")
        ax.legend()
        plt.show()
        """
    ),
    md(
        r"""
        The ReLU network gets there first on every seed, as in the paper, but by the factor printed
        above, far from six. The mechanism the paper gives is saturation: where $|x|$ is large, tanh's
        slope $1 - y^2$ is nearly 0 and the gradient through the unit vanishes, while a ReLU's slope is
        1 wherever the unit is active, however large the input. The tanh units here do saturate (the
        shares printed above, at the start and once the network reaches 25%), yet the network still
        learns quickly, because this task does not need what saturation destroys: a saturated tanh
        is a sign function, and the sign of an oriented, coloured filter's response is enough to tell
        four orientations and two colours apart, so 25% error comes within a few dozen steps. The
        paper's network reached 25% on CIFAR-10, ten classes of real objects, only after several
        epochs, where the error has to keep falling through many small gradient steps, the steps
        that saturated units shrink. How far from 6× a network lands is a property of the task as much
        as of the activation: expect a factor near the one printed here on easy data and short runs,
        and a larger one only with harder data and longer runs than this notebook's two minutes allow.

        **On Fashion-MNIST** the order can reverse: tanh reaches 25% training error first on some seed
        (a ratio below 1 in the line above; the cell asserts it). Harder data alone does not bring
        the paper's gap back: 25% error on clothes is still the first few dozen steps, where the
        units have not saturated yet, while the paper's 25% on CIFAR-10 took several epochs.
        Figure 1 measures ReLU's advantage late in training, and a two-minute notebook measures the
        start.

        ## 2. The update rule: momentum and weight decay

        Section 5 of the paper trains with

        $$v \leftarrow 0.9\, v - 0.0005\,\varepsilon\, w - \varepsilon \left\langle \frac{\partial L}{\partial w} \right\rangle_{\text{batch}},
        \qquad w \leftarrow w + v,$$

        learning rate $\varepsilon$, momentum 0.9 and weight decay 0.0005; the paper notes that the
        weight decay is not only a regulariser: it reduced the model's *training* error.
        """
    ),
    EXERCISE_NOTE,
    md(
        r"""
        ### Exercise 6.1: the paper's update rule

        Write one step of the rule for a parameter `w`, its velocity `v` and its gradient `g` (NumPy
        arrays), returning the new `(w, v)`. The check runs it beside `mt.optim.SGD` for a few steps,
        and divides the learning rate by 10 half-way, as the paper's schedule does (it starts at 0.01
        and divides the rate by 10 whenever the validation error stops improving, three times in all).
        """
    ),
    code(
        '''
        def my_sgd_update(w, v, g, lr, momentum=0.9, weight_decay=5e-4):
            """One step of the paper's rule: returns the new (w, v)."""
            raise NotImplementedError  # your code here
        ''',
        "exercise",
    ),
    code(
        """
        # Self-check: step by step against the package's optimiser, with a gradient that changes every step.
        with check(my_sgd_update) as sgd_update:
            rng = np.random.default_rng(3)
            w = mt.tensor(rng.standard_normal(5), requires_grad=True)
            opt = mt.optim.SGD([w], lr=0.1, momentum=0.9, weight_decay=5e-4)
            w_mine, v_mine = w.numpy().copy(), np.zeros(5)
            for step, lr in enumerate((0.1, 0.1, 0.01, 0.01), start=1):
                g = rng.standard_normal(5)
                w.grad = mt.tensor(g)
                opt.param_groups[0]["lr"] = lr
                opt.step()
                w_mine, v_mine = sgd_update(w_mine, v_mine, g, lr, 0.9, 5e-4)
                gap = np.abs(np.asarray(w_mine) - w.numpy()).max()
                print(f"step {step} (lr {lr}): w = {w.numpy().round(6)}, yours - SGD's = {gap:.1e}")
                assert gap <= 1e-12 * np.abs(w.numpy()).max(), \\
                    f"step {step}, lr {lr}: yours differs from mt.optim.SGD by {gap:.1e} (the weight decay term? the learning rate inside v?)"
            passed(sgd_update, "the paper's update rule, step by step")
        """,
        "check",
    ),
    md(
        r"""
        PyTorch's SGD writes the same rule with the learning rate outside the velocity,
        $v \leftarrow 0.9\,v + g + 0.0005\,w$, $w \leftarrow w - \varepsilon v$. While $\varepsilon$ is
        constant the two produce the same steps (the velocities differ by the factor $-\varepsilon$);
        when the rate drops they part: the paper's velocity still carries steps taken at the old rate,
        PyTorch's rescales them at once. That is why the check drops the rate.
        """
    ),
    md(
        r"""
        ### The learning-rate schedule

        The paper used one learning rate for all layers, "adjusted manually throughout training. The
        heuristic which we followed was to divide the learning rate by 10 when the validation error
        rate stopped improving with the current learning rate. The learning rate was initialized at
        0.01 and reduced three times prior to termination." The package's
        `mt.optim.ReduceLROnPlateau` is that rule: call it once per epoch with the validation error,
        and it divides the optimiser's rate by 10 after `patience` epochs without improvement, at most
        `max_reductions` times. Fed a made-up sequence of validation errors that keeps levelling off:
        """
    ),
    code(
        """
        w = mt.tensor(np.zeros(1), requires_grad=True)
        opt = mt.optim.SGD([w], lr=0.01, momentum=0.9, weight_decay=5e-4)
        schedule = mt.optim.ReduceLROnPlateau(opt, factor=0.1, patience=1, max_reductions=3)
        errors = [0.60, 0.50, 0.45, 0.45, 0.46, 0.40, 0.38, 0.38, 0.39, 0.37, 0.37, 0.37, 0.36, 0.36, 0.36, 0.36]
        rates = []
        for epoch, error in enumerate(errors, start=1):
            reduced = schedule.step(error)
            rates.append(opt.param_groups[0]["lr"])
            print(f"epoch {epoch:2d}: validation error {error:.2f} -> lr {rates[-1]:.0e}{'  (divided by 10)' if reduced else ''}")
        assert np.isclose(rates[-1], 1e-5) and schedule.reductions == 3  # three reductions, then it stays
        """
    ),
    md(
        r"""
        Momentum averages the gradients of the last $1/(1 - 0.9) = 10$ steps or so, which damps the
        noise of small batches and, along directions where the gradients agree, makes the steps up
        to $1/(1-\mu) = 10$ times longer. So comparing momentum 0.9 with none **at the same learning
        rate** mostly compares step sizes. The fair comparison also runs plain SGD at the same
        *effective* rate $\varepsilon/(1-\mu)$: momentum 0.9 at 0.03 against none at 0.03 and at 0.3
        (and at 0.1, between the two), the same ReLU network, three seeds, steps to 25% training
        error (at most 100; "diverged": the loss overflowed and the run stopped):
        """
    ),
    code(
        """
        SETTINGS = (("momentum 0.9, lr 0.03", 0.03, 0.9), ("none, lr 0.03 (same lr)", 0.03, 0.0),
                    ("none, lr 0.3 (same lr/(1-μ))", 0.3, 0.0), ("none, lr 0.1", 0.1, 0.0))
        diverged = {}
        momentum_steps, momentum_curves = {}, {}
        for label, lr, mu in SETTINGS:
            for seed in SEEDS:
                mt.manual_seed(seed)
                net = Net()
                errors = train(net, 100, fresh_batches(seed), lr, momentum=mu, stop_below=0.25)
                momentum_steps[label, seed] = steps_to_25(errors) or np.inf  # inf: not within 100 steps
                diverged[label, seed] = net.diverged
                if seed == 0:
                    momentum_curves[label] = errors
            found = [momentum_steps[label, seed] if momentum_steps[label, seed] < np.inf else
                     "diverged" if diverged[label, seed] else ">100" for seed in SEEDS]
            print(f"{label:30s}: steps to 25% over seeds {SEEDS}: {', '.join(map(str, found))}")
        fig, ax = plt.subplots(figsize=(6.5, 3.5))
        for label, _, _ in SETTINGS:
            errors = momentum_curves[label]
            ax.plot(np.arange(10, len(errors) + 1), smoothed(errors), label=label)
        ax.axhline(0.25, color="gray", lw=0.8)
        ax.set_xlabel("step")
        ax.set_ylabel("training error (10-step average)")
        ax.set_title("SGD with and without momentum (seed 0, each run stops at 25%)")
        ax.legend(fontsize=8)
        plt.show()
        mom, same_lr, same_effective, between = ([momentum_steps[label, seed] for seed in SEEDS] for label, _, _ in SETTINGS)
        assert all(m < s for m, s in zip(mom, same_lr))  # faster than plain SGD at the same lr, on every seed
        assert all(m < s for m, s in zip(mom, same_effective))  # and at the same effective rate
        if DATA == "fashion-mnist":  # plain SGD fails at lr/(1-μ) and is about as fast as momentum at 0.1
            assert np.all(np.isinf(same_effective)) and any(diverged["none, lr 0.3 (same lr/(1-μ))", seed] for seed in SEEDS)
            assert all(abs(b - m) <= 0.25 * m for m, b in zip(mom, between))
        """
    ),
    md(
        r"""
        At the same learning rate the gap is large, and part of it is the step size alone: plain SGD
        at the tenfold rate gets closer on some seeds (compare the second and third lines). Momentum
        is still the fastest on every seed at the same effective rate (the cell asserts both), and
        that part is what it adds beyond a longer step: the average over about ten batches is a less
        noisy direction than one batch's gradient, so the long steps do not zig-zag across the
        batches' noise as plain SGD's do at 0.3.

        **On Fashion-MNIST** the picture changes: plain SGD at the effective rate 0.3 does not reach
        25% within 100 steps on any seed (its loss overflows on some), and at 0.1 it is about as
        fast as momentum (within a quarter of its step count on every seed; the cell asserts both). There what momentum adds is that its long effective
        step stays stable, being an average over batches, where plain SGD's single-batch steps of
        that length blow up; at a rate plain SGD can take, momentum gains little here.

        ## 3. Data augmentation (section 4.1)

        AlexNet has 60 million parameters and ImageNet 1.2 million training images, so it would
        overfit without "label-preserving transformations": at training time each image is a random
        224×224 crop of the 256×256 image, mirrored with probability ½, with PCA colour noise added:
        every pixel gets $[\mathbf p_1, \mathbf p_2, \mathbf p_3][\alpha_1\lambda_1, \alpha_2\lambda_2, \alpha_3\lambda_3]^\top$,
        where $\mathbf p_i, \lambda_i$ are the eigenvectors and eigenvalues of the RGB covariance of the
        training pixels and $\alpha_i \sim N(0, 0.1^2)$ is drawn once per image. The package's
        `minitorch_alex.data.augment` does this on uint8 images; here it is on the photo of notebook 2,
        with the statistics of that one photo. The colour shifts are meant to be subtle (with
        $\alpha$ of standard deviation 0.1, a few grey levels along the main colour axes): the
        network should learn that an object's identity does not depend on the illumination.
        """
    ),
    code(
        """
        from matplotlib import cbook
        from minitorch_alex.data.augment import center_crop, crop_to_chw, pca_shift, sample_train_params
        from minitorch_alex.data.stats import compute_stats

        photo = plt.imread(cbook.get_sample_data("grace_hopper.jpg"))[44:556, :512]  # (512, 512, 3) uint8
        photo = photo.reshape(256, 2, 256, 2, 3).mean(axis=(1, 3)).round().astype(np.uint8)[None]  # (1, 256, 256, 3)
        stats = compute_stats(photo)
        print("RGB eigenvalues (pixels in [0, 1]):", stats.eigvals.round(4))
        print("eigenvectors (columns):\\n", stats.eigvecs.round(3))
        rng = np.random.default_rng(4)
        p = sample_train_params(rng, 7, 256, 224)  # what train_augment draws: crop offsets, flips, PCA alphas
        shifts = pca_shift(p.alphas, stats.eigvals, stats.eigvecs)  # (7, 3) RGB shifts in grey levels
        augmented = crop_to_chw(np.repeat(photo, 7, axis=0), p.ys, p.xs, p.flips, 224, None, shifts)
        AMPLIFY = 10  # the shift is a few grey levels: shown again, ten times larger, in the second row
        amplified = crop_to_chw(np.repeat(photo, 7, axis=0), p.ys, p.xs, p.flips, 224, None, AMPLIFY * shifts)
        print("RGB shift of each draw (grey levels):\\n", shifts.round(1))

        fig, axes = plt.subplots(2, 8, figsize=(15, 4.6))
        for row, images in enumerate((augmented, amplified)):
            axes[row, 0].imshow(photo[0])
            axes[row, 0].set_title("original 256×256", fontsize=8)
            for i, (ax, image) in enumerate(zip(axes[row, 1:], images)):
                ax.imshow(np.clip(image.transpose(1, 2, 0), 0, 255).astype(np.uint8))
                title = f"crop at ({p.ys[i]}, {p.xs[i]}){', mirrored' if p.flips[i] else ''}"
                ax.set_title(title if row == 0 else f"RGB shift {shifts[i].round(0).astype(int)}, shown ×{AMPLIFY}", fontsize=7)
        for ax in axes.ravel():
            ax.axis("off")
        plt.show()
        """
    ),
    md(
        r"""
        Does it help? Take a training set of only **64** stripe images of 40×40, and train the same
        network on 32×32 crops of them for 120 steps: on the centre crops only, on random crops, and
        on random crops with PCA colour noise (so that each transformation's share shows). Mirroring is
        left out on purpose: it turns 45° stripes into 135° stripes, a different class. A
        transformation is only augmentation if it preserves the label. The validation set is 300
        other images, centre-cropped; each setting runs on two seeds (initial weights and batches).
        With Fashion-MNIST the 64 training images are the 28×28 clothes in a 40×40 frame of their
        background, so a 32×32 crop moves the garment by up to 4 pixels and cuts at most 2 from its
        edge (the 300 validation images come from its test set).
        """
    ),
    code(
        """
        # (N, 40, 40, 3) uint8, as a store holds images
        small, Y_small = data.sample(64, np.random.default_rng(5), size=40, noise=0.6, uint8=True)
        other, Y_other = data.sample(300, np.random.default_rng(6), size=40, noise=0.6, split="test", uint8=True)
        st = compute_stats(small)  # the training set's mean image and RGB PCA
        print("RGB eigenvalues of the 64 training images:", st.eigvals.round(4))
        SCALE = 1 / 90  # 0..255 mean-centred pixels -> roughly unit scale
        val = center_crop(other, st.mean, 32, scale=SCALE)

        def augmented_batches(augment, seed=7):
            rng = np.random.default_rng(seed)
            def batch(step):
                index = rng.integers(0, len(small), 32)
                if augment == "centre crops only":
                    return center_crop(small, st.mean, 32, scale=SCALE, index=index), Y_small[index]
                p = sample_train_params(rng, 32, 40, 32)  # crop offsets, flips (ignored), PCA alphas
                shifts = pca_shift(p.alphas, st.eigvals, st.eigvecs)
                if augment == "random crops":
                    shifts = np.zeros_like(shifts)  # the same draws, the colour noise left out
                no_flips = np.zeros(32, bool)
                return crop_to_chw(small, p.ys, p.xs, no_flips, 32, st.mean, shifts, SCALE, index=index), Y_small[index]
            return batch

        CONDITIONS, STEPS = ("centre crops only", "random crops", "crops + PCA colour"), 121  # curves to step 120
        train_set = center_crop(small, st.mean, 32, scale=SCALE)
        results = {}
        for augment in CONDITIONS:
            for seed in (0, 1):  # the initial weights and the batches
                mt.manual_seed(seed)
                net = Net()
                validate = (train_set, Y_small, val, Y_other) if seed == 0 else None  # curves of seed 0 only
                errors = train(net, STEPS, augmented_batches(augment, seed=7 + seed), 0.03, validate=validate)
                results[augment, seed] = (errors[-20:].mean(), *evaluate(net, val, Y_other), np.array(net.curve))
            train_error, val_loss, val_accuracy = (np.array([results[augment, s][i] for s in (0, 1)]) for i in range(3))
            print(f"{augment:18s}: training error {' / '.join(f'{e:.0%}' for e in train_error)}, validation loss "
                  f"{' / '.join(f'{v:.3f}' for v in val_loss)}, validation accuracy {' / '.join(f'{a:.1%}' for a in val_accuracy)}"
                  f"  (seeds 0 / 1)")

        fig, axes = plt.subplots(1, 3, figsize=(14, 3.5), sharey=True)
        for ax, augment in zip(axes, CONDITIONS):
            curve = results[augment, 0][3]  # step, training (loss, accuracy), validation (loss, accuracy)
            ax.semilogy(curve[:, 0], curve[:, 1], "o-", label="the 64 training images")
            ax.semilogy(curve[:, 0], curve[:, 3], "s-", label="validation, 300 new images")
            ax.set_title(augment)
            ax.set_xlabel("step")
            ax.legend(fontsize=8)
        axes[0].set_ylabel("cross-entropy loss")
        fig.suptitle("64 training images, with and without augmentation (seed 0)")
        fig.tight_layout()
        plt.show()
        accuracy = {a: np.array([results[a, s][2] for s in (0, 1)]) for a in CONDITIONS}
        val_loss = {a: np.array([results[a, s][1] for s in (0, 1)]) for a in CONDITIONS}
        for seed in (0, 1):
            assert results["centre crops only", seed][0] < 0.05  # the training images are learned
        pca_gain = accuracy["crops + PCA colour"] - accuracy["random crops"]
        print(f"what the PCA colour noise added to the crops: {' / '.join(f'{g:+.1%}' for g in pca_gain)} validation accuracy "
              f"(seeds 0 / 1; one validation image is {1 / len(Y_other):.1%})")
        if DATA == "stripes":
            assert np.all(accuracy["random crops"] > accuracy["centre crops only"] + 0.3)
            assert np.all(np.abs(pca_gain) < 0.02)  # nothing measurable, either way
        else:  # crops: a lower validation loss on both seeds, no better accuracy; PCA noise: nothing gained
            assert np.all(val_loss["random crops"] < val_loss["centre crops only"])
            assert np.all(accuracy["random crops"] < accuracy["centre crops only"] + 0.02)
            assert np.all(pca_gain < 0.02)
        no_aug = results["centre crops only", 0][3]
        assert no_aug[-1, 1] < 0.01 and no_aug[-1, 3] > 100 * no_aug[-1, 1]  # memorised: a wide gap
        """
    ),
    md(
        r"""
        Without augmentation the network memorises the 64 images (training error 0, training loss
        towards 0) and fails on new ones, its validation loss staying orders of magnitude above the
        training loss: it has learned these particular stripes, not the orientations. Random crops
        are, for stripes, shifts of phase, and they alone are enough for the same 64 images to
        generalise. The PCA colour noise adds nothing measurable on top of them (the last line: within
        a validation image or two, on both seeds; the cell asserts under 2%). That is what this data
        leaves it to do: the colour classes differ in hue (orange or blue), which a shift of a few
        grey levels along the photo's main colour axes cannot turn into the other class, and the
        validation images are drawn with the same colours and noise as the training ones, so there is
        no change of illumination to become robust to. On ImageNet the paper reports that without
        augmentation the network "suffers from substantial overfitting", and that the colour noise cut
        the top-1 error by over 1%: its photos are taken under many lights, and an object's identity
        must not depend on them.

        **On Fashion-MNIST** the crops do not pay off in accuracy within these 120 steps (the
        ablation's lines: no better than centre crops on either seed), though they do lower the
        validation loss: the network memorises the 64 centre crops and is confidently wrong on new
        clothes, while the shifted ones it has not fitted yet (its training error is still well
        above 0). The test garments are centred like the training ones, so invariance to a shift is
        not what the test asks for; what 64 images lack is variety of garments, which no crop
        supplies. The PCA noise can only change brightness here: grey images have one colour axis
        (the first eigenvalue is the only non-zero one), and it gained nothing either.

        ## 4. Dropout as an ensemble (section 4.2)

        With dropout every training step uses a different "thinned" network; at test time the paper
        uses all the units and multiplies their outputs by 0.5, "a reasonable approximation to taking the
        geometric mean of the predictive distributions produced by the exponentially-many dropout
        networks". Train a network with a 128-unit hidden layer and dropout, then compare that rule
        with actually averaging the predictions of $K$ random dropout networks (the network in training
        mode, under `no_grad`), on noisier stripes so that there are mistakes to disagree about:
        """
    ),
    code(
        """
        X_noisy, Y_noisy = stripes(1000, np.random.default_rng(8), size=32, noise=0.9)
        mt.manual_seed(0)
        net = SmallConvNet(hidden=128, dropout=0.5)
        train(net, 200, fresh_batches(9, noise=0.9, source=data_set("stripes")), 0.03)  # stripes, whatever DATA says
        net.eval()  # the rule: every unit, outputs times 0.5
        with mt.no_grad():
            rule = F.softmax(net(mt.tensor(X_noisy))).numpy()
        net.train()  # a new dropout mask on every call
        with mt.no_grad():
            members = np.stack([F.softmax(net(mt.tensor(X_noisy))).numpy() for _ in range(32)])
        print(f"x0.5 rule: accuracy {(rule.argmax(1) == Y_noisy).mean():.1%}")
        agreement = {}
        for k in (1, 4, 16, 32):
            arithmetic = members[:k].mean(0)
            with np.errstate(divide="ignore"):  # a probability that underflowed to 0: log 0 = -inf, its exp 0, as it should
                geometric = np.exp(np.log(members[:k]).mean(0))
            agreement[k] = (arithmetic.argmax(1) == rule.argmax(1)).mean()
            print(f"{k:2d} dropout networks: accuracy {(arithmetic.argmax(1) == Y_noisy).mean():.1%} (arithmetic mean), "
                  f"{(geometric.argmax(1) == Y_noisy).mean():.1%} (geometric mean); same answer as the rule on {agreement[k]:.0%} of the images")
        single = np.mean([(m.argmax(1) == Y_noisy).mean() for m in members])  # one network, on average
        print(f"one dropout network alone: accuracy {single:.1%} on average over the 32")
        assert single + 0.01 < (rule.argmax(1) == Y_noisy).mean() and single + 0.01 < (members.mean(0).argmax(1) == Y_noisy).mean()
        assert agreement[1] < agreement[32] and agreement[32] > 0.85
        """
    ),
    md(
        r"""
        One dropout network alone is noticeably worse than the rule; the average of more and more of
        them approaches the rule's answers, which cost a single forward pass. That is the sense in
        which dropout trains an ensemble of networks that share their weights, and the $\times 0.5$
        rule evaluates it cheaply.

        ## 5. The two towers' conv1 filters (Figure 3)

        In the paper the 48 conv1 filters of GPU 1 came out largely colour-agnostic and the 48 of GPU 2
        largely colour-specific, "independent of any particular random weight initialization". The
        towers can specialise because conv2 reads only its own tower's conv1 maps. The same network
        with `groups=2` in conv2 and conv3 has two such towers (conv1's filters 0-7 feed tower 1,
        8-15 tower 2). Measure each filter's **colourfulness**, the share of its energy outside the
        grey direction (0 for a filter equal in R, G and B; $\tfrac23$ on average for random filters):
        """
    ),
    code(
        """
        mt.manual_seed(0)
        towers = SmallConvNet(groups=2)
        train(towers, 200, fresh_batches(10, source=data_set("stripes")), 0.03)
        w = towers.conv1.weight.numpy()
        grey = w.mean(axis=1, keepdims=True)
        colourfulness = ((w - grey) ** 2).sum(axis=(1, 2, 3)) / (w**2).sum(axis=(1, 2, 3))
        print(f"accuracy {evaluate(towers, X_stripes, Y_stripes)[1]:.0%}")
        for t in (0, 1):
            print(f"tower {t + 1}: colourfulness {colourfulness[8 * t : 8 * t + 8].round(2)}, mean {colourfulness[8 * t : 8 * t + 8].mean():.2f}")

        fig, axes = plt.subplots(1, 2, figsize=(8, 2.6))
        for t, ax in enumerate(axes):
            ax.imshow(filter_grid(w[8 * t : 8 * t + 8], cols=8), interpolation="nearest")
            ax.set_title(f"tower {t + 1}: conv1 filters 5×5", fontsize=9)
            ax.axis("off")
        plt.show()
        assert abs(colourfulness[:8].mean() - colourfulness[8:].mean()) < 0.15
        """
    ),
    md(
        r"""
        Here the two towers do **not** specialise: both keep about the same share of colour. That is
        what this data asks for: half the classes are told apart by colour (orange or blue) and the
        other half by orientation, and each tower needs both, having no other way to the classifier
        until the fully connected layer. ImageNet's 1000 classes reward a division of labour between
        colour and fine luminance edges; the paper's Figure 3 is a property of that data as much as
        of the architecture. Notebook 5 shows the filters of the larger network, trained for longer.
        """
    ),
]
