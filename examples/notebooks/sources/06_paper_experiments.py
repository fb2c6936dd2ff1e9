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
        """
    ),
    SETUP,
    code(
        """
        from small_net import SmallConvNet, evaluate, filter_grid, show, stripes

        listing(SmallConvNet)
        X_val, Y_val = stripes(300, np.random.default_rng(1), size=32, noise=0.6)

        def train(net, steps, batch, lr, momentum=0.9, weight_decay=5e-4, validate=None):
            # SGD on batch(step) -> (images, labels); returns the training error of every step's batch.
            # validate=(train images, labels, validation images, labels): also record every 20 steps
            # (step, training loss, accuracy, validation loss, accuracy), all in eval mode
            opt = mt.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
            errors, net.curve = [], []
            for step in range(steps):
                if validate is not None and step % 20 == 0:
                    net.curve.append((step, *evaluate(net, *validate[:2]), *evaluate(net, *validate[2:])))
                X, Y = batch(step)
                logits = net(mt.tensor(X))
                loss = F.cross_entropy(logits, Y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                errors.append(float((logits.numpy().argmax(1) != Y).mean()))
            return np.array(errors)

        def fresh_batches(seed, noise=0.6):
            rng = np.random.default_rng(seed)
            return lambda step: stripes(32, rng, size=32, noise=noise)

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
        Each network is trained at three learning rates, on the same batches; we count the steps until
        the training error, averaged over 10 steps, falls below 25%.
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

        runs, start = {}, time.perf_counter()
        for name, activation in (("ReLU", F.relu), ("tanh", tanh)):
            for lr in (0.01, 0.03, 0.1):
                mt.manual_seed(0)
                runs[name, lr] = train(SmallConvNet(activation), 120, fresh_batches(0), lr)

        def steps_to_25(errors):
            below = np.flatnonzero(smoothed(errors) < 0.25)
            return int(below[0]) + 10 if len(below) else None

        best = {}
        for (name, lr), errors in runs.items():
            print(f"{name:4s} lr {lr:<5}: 25% training error after {steps_to_25(errors)} steps")
            if steps_to_25(errors) is not None and (name not in best or steps_to_25(errors) < steps_to_25(runs[best[name]])):
                best[name] = (name, lr)
        relu_steps, tanh_steps = steps_to_25(runs[best["ReLU"]]), steps_to_25(runs[best["tanh"]])
        print(f"fastest of each: ReLU {relu_steps} steps, tanh {tanh_steps} steps: {tanh_steps / relu_steps:.1f} times faster "
              f"({time.perf_counter() - start:.0f} s for six runs)")
        assert relu_steps < tanh_steps < 6 * relu_steps

        fig, ax = plt.subplots(figsize=(6.5, 3.8))
        for name, style in (("ReLU", "-"), ("tanh", "--")):
            ax.plot(np.arange(10, 121), smoothed(runs[best[name]]), style, label=f"{name} (lr {best[name][1]})")
        ax.axhline(0.25, color="gray", lw=0.8)
        ax.set_xlabel("step (batches of 32)")
        ax.set_ylabel("training error (10-step average)")
        ax.set_title("Figure 1, small: ReLU vs tanh")
        ax.legend()
        plt.show()
        """
    ),
    md(
        r"""
        The ReLU network gets there first, as in the paper, though by less than six times on this easy
        data. The reason the paper gives: tanh **saturates**. Where $|x|$ is large its slope $1 - y^2$
        is nearly 0 and the gradient through the unit vanishes; a ReLU's slope is 1 wherever the unit
        is active, however large the input.

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
        and drops the learning rate from 0.1 to 0.01 half-way, as the paper's schedule does.
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
                opt.lr = lr
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
        Momentum averages the gradients of the last $1/(1 - 0.9) = 10$ steps or so, which damps the
        noise of small batches and, along directions where the gradients agree, makes the steps up
        to 10 times longer. The same ReLU network and batches as above at learning rate 0.03, with
        and without momentum:
        """
    ),
    code(
        """
        mt.manual_seed(0)
        no_momentum = train(SmallConvNet(), 120, fresh_batches(0), 0.03, momentum=0.0)
        with_momentum = runs["ReLU", 0.03]
        print(f"steps to 25% training error: momentum 0.9: {steps_to_25(with_momentum)}, none: {steps_to_25(no_momentum)}")
        fig, ax = plt.subplots(figsize=(6.5, 3.5))
        ax.plot(np.arange(10, 121), smoothed(with_momentum), label="momentum 0.9")
        ax.plot(np.arange(10, 121), smoothed(no_momentum), label="no momentum")
        ax.set_xlabel("step")
        ax.set_ylabel("training error (10-step average)")
        ax.set_title("SGD at learning rate 0.03")
        ax.legend()
        plt.show()
        assert smoothed(with_momentum)[-1] < smoothed(no_momentum)[-1]
        """
    ),
    md(
        r"""
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
        from minitorch_alex.data.augment import center_crop, crop_to_chw, pca_shift, sample_train_params, train_augment
        from minitorch_alex.data.stats import compute_stats

        photo = plt.imread(cbook.get_sample_data("grace_hopper.jpg"))[44:556, :512]  # (512, 512, 3) uint8
        photo = photo.reshape(256, 2, 256, 2, 3).mean(axis=(1, 3)).round().astype(np.uint8)[None]  # (1, 256, 256, 3)
        stats = compute_stats(photo)
        print("RGB eigenvalues (pixels in [0, 1]):", stats.eigvals.round(4))
        print("eigenvectors (columns):\\n", stats.eigvecs.round(3))
        rng = np.random.default_rng(4)
        augmented = train_augment(np.repeat(photo, 7, axis=0), None, stats.eigvals, stats.eigvecs, crop=224, rng=rng)

        fig, axes = plt.subplots(1, 8, figsize=(15, 2.3))
        axes[0].imshow(photo[0])
        axes[0].set_title("original 256×256", fontsize=8)
        for ax, image in zip(axes[1:], augmented):
            ax.imshow(np.clip(image.transpose(1, 2, 0), 0, 255).astype(np.uint8))
        for ax in axes:
            ax.axis("off")
        plt.show()
        """
    ),
    md(
        r"""
        Does it help? Take a training set of only **64** stripe images of 40×40, and train the same
        network on 32×32 crops of them for 200 steps: once on the centre crops only, once with random
        crops and PCA colour noise. Mirroring is left out on purpose: it turns 45° stripes into 135°
        stripes, a different class. A transformation is only augmentation if it preserves the label.
        The validation set is 300 other images, centre-cropped.
        """
    ),
    code(
        """
        def to_uint8(images):  # (N, 3, S, S) around 0 -> (N, S, S, 3) uint8, as the store holds images
            return np.round(np.stack([show(im) for im in images]) * 255).astype(np.uint8)

        X_small, Y_small = stripes(64, np.random.default_rng(5), size=40, noise=0.6)
        X_other, Y_other = stripes(300, np.random.default_rng(6), size=40, noise=0.6)
        small, other = to_uint8(X_small), to_uint8(X_other)
        st = compute_stats(small)  # the training set's mean image and RGB PCA
        SCALE = 1 / 90  # 0..255 mean-centred pixels -> roughly unit scale
        val = center_crop(other, st.mean, 32, scale=SCALE)

        def augmented_batches(augment, seed=7):
            rng = np.random.default_rng(seed)
            def batch(step):
                index = rng.integers(0, len(small), 32)
                if not augment:
                    return center_crop(small, st.mean, 32, scale=SCALE, index=index), Y_small[index]
                p = sample_train_params(rng, 32, 40, 32)  # crop offsets, flips (ignored), PCA alphas
                shifts = pca_shift(p.alphas, st.eigvals, st.eigvecs)
                no_flips = np.zeros(32, bool)
                return crop_to_chw(small, p.ys, p.xs, no_flips, 32, st.mean, shifts, SCALE, index=index), Y_small[index]
            return batch

        results = {}
        for augment in (False, True):
            mt.manual_seed(0)
            net = SmallConvNet()
            train_set = center_crop(small, st.mean, 32, scale=SCALE)
            errors = train(net, 200, augmented_batches(augment), 0.03, validate=(train_set, Y_small, val, Y_other))
            results[augment] = (errors[-20:].mean(), *evaluate(net, val, Y_other), np.array(net.curve))
        for augment, (train_error, val_loss, val_accuracy, _) in results.items():
            print(f"{'crops + PCA colour' if augment else 'centre crops only':18s}: training error {train_error:.0%}, "
                  f"validation loss {val_loss:.3f}, validation accuracy {val_accuracy:.0%}")

        fig, axes = plt.subplots(1, 2, figsize=(11, 3.5), sharey=True)
        for ax, augment in zip(axes, (False, True)):
            curve = results[augment][3]  # step, training (loss, accuracy), validation (loss, accuracy)
            ax.semilogy(curve[:, 0], curve[:, 1], "o-", label="the 64 training images")
            ax.semilogy(curve[:, 0], curve[:, 3], "s-", label="validation, 300 new images")
            ax.set_title("crops + PCA colour" if augment else "centre crops only")
            ax.set_xlabel("step")
            ax.legend(fontsize=8)
        axes[0].set_ylabel("cross-entropy loss")
        fig.suptitle("64 training images, with and without augmentation")
        fig.tight_layout()
        plt.show()
        assert results[False][0] < 0.05 and results[True][2] > results[False][2] + 0.3
        no_aug = results[False][3]
        assert no_aug[-1, 1] < 0.01 and no_aug[-1, 3] > 100 * no_aug[-1, 1]  # memorised: a wide gap
        """
    ),
    md(
        r"""
        Without augmentation the network memorises the 64 images (training error 0, training loss
        towards 0) and fails on new ones, its validation loss staying orders of magnitude above the
        training loss: it has learned these particular stripes, not the orientations. Random crops are, for
        stripes, shifts of phase, and the colour noise varies the shades: with them the same 64 images
        are enough to generalise. On ImageNet the paper reports that without augmentation the network
        "suffers from substantial overfitting", and that the colour noise alone cut the top-1 error by
        over 1%.

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
        train(net, 200, fresh_batches(9, noise=0.9), 0.03)
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
        train(towers, 200, fresh_batches(10), 0.03)
        w = towers.conv1.weight.numpy()
        grey = w.mean(axis=1, keepdims=True)
        colourfulness = ((w - grey) ** 2).sum(axis=(1, 2, 3)) / (w**2).sum(axis=(1, 2, 3))
        print(f"accuracy {evaluate(towers, X_val, Y_val)[1]:.0%}")
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
