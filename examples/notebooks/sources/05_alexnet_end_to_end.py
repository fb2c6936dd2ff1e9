"""The cells of 05_alexnet_end_to_end.ipynb: edit them here, then run ``python build_notebooks.py 05``."""
from cells import EXERCISE_NOTE, SETUP, code, md

CELLS = [
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
