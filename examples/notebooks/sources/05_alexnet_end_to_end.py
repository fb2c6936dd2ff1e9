"""The cells of 05_alexnet_end_to_end.ipynb: edit them here, then run ``python build_notebooks.py 05``."""
from cells import EXERCISE_NOTE, SETUP, code, md

CELLS = [
    md(
        r"""
        # 5. AlexNet end to end

        The whole network: its shapes stage by stage, the loss it starts from, what its initialisation
        does to the input's signal (and what one SGD step then learns), the paper's split over two GPUs
        with the bytes that cross between them measured, and a scaled-down copy that overfits a small
        batch and, trained for a few seconds on a laptop CPU, learns conv1 filters (with training and
        validation curves).

        The scaled-down network trains on generated stripes unless the next cell says `DATA =
        "fashion-mnist"` (or the environment `MINITORCH_NOTEBOOK_DATA=fashion-mnist`): then on 28×28 grey
        photos of clothes in 10 classes from Debian's `dataset-fashion-mnist` package, read by the
        package's `minitorch_alex.data.fashion_mnist`. What changes with it is said where it does.
        """
    ),
    SETUP,
    code(
        """
        import os
        from small_net import DATA_VARIABLE, data_set

        DATA = os.environ.get(DATA_VARIABLE, "stripes")  # "stripes" (generated, offline: the default) or "fashion-mnist"
        data = data_set(DATA)  # what the scaled-down network trains on
        print(f"data for the scaled-down network: {DATA}, {len(data.classes)} classes")
        """
    ),
    EXERCISE_NOTE,
    md(
        r"""
        ### Exercise 5.1: AlexNet's shapes from the formulas

        Before the network prints them below: without running it, return a dict mapping `"conv1"`, `"pool1"`, `"conv2"`, `"pool2"`,
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
        # Self-check: this package's 224 input with padding 2, Caffe's 227 without, 224 without, and two sizes
        # no notebook prints (256 with padding 1, 199 without), so only the formulas pass.
        with check(my_alexnet_shapes) as shapes_fn:
            paper = {"conv1": (96, 55, 55), "pool1": (96, 27, 27), "conv2": (256, 27, 27), "pool2": (256, 13, 13),
                     "conv3": (384, 13, 13), "conv4": (384, 13, 13), "conv5": (256, 13, 13), "pool5": (256, 6, 6)}
            unpadded_224 = {"conv1": (96, 54, 54), "pool1": (96, 26, 26), "conv2": (256, 26, 26), "pool2": (256, 12, 12),
                            "conv3": (384, 12, 12), "conv4": (384, 12, 12), "conv5": (256, 12, 12), "pool5": (256, 5, 5)}
            padded_256 = {"conv1": (96, 62, 62), "pool1": (96, 30, 30), "conv2": (256, 30, 30), "pool2": (256, 14, 14),
                          "conv3": (384, 14, 14), "conv4": (384, 14, 14), "conv5": (256, 14, 14), "pool5": (256, 6, 6)}
            unpadded_199 = {"conv1": (96, 48, 48), "pool1": (96, 23, 23), "conv2": (256, 23, 23), "pool2": (256, 11, 11),
                            "conv3": (384, 11, 11), "conv4": (384, 11, 11), "conv5": (256, 11, 11), "pool5": (256, 5, 5)}
            cases = [((224, 2), paper), ((227, 0), paper), ((224, 0), unpadded_224), ((256, 1), padded_256), ((199, 0), unpadded_199)]
            for (size, padding), want in cases:
                got = {name: tuple(int(v) for v in shape) for name, shape in shapes_fn(size, padding).items()}
                assert got == want, f"size {size}, conv1 padding {padding}: got {got}"
            passed(shapes_fn, "reproduces the network's shapes")
        """,
        "check",
    ),
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

        `model.stages(x)` runs the network and yields `(name, output)` after each stage. The input is
        two 224×224 crops of the photo from notebook 2, at the paper's scale: raw pixel values (0 to
        255) with a mean taken off, so their standard deviation is about 70, not 1. The paper
        subtracts the *mean image* of the training set, the mean activity at each pixel and colour
        over all training images (the package's `minitorch_alex.data.compute_stats` returns it, and
        the trainer subtracts it). Two crops are no training set (their mean image would make one
        the negative of the other), so here each colour channel's mean over the crops stands in for
        it: the same scale, the same centring on average. (A third input, the same crops divided by
        that standard deviation, is used below.)
        """
    ),
    code(
        """
        from matplotlib import cbook

        PAPER_SHAPES = {"conv1": (96, 55, 55), "pool1": (96, 27, 27), "conv2": (256, 27, 27), "pool2": (256, 13, 13),
                        "conv3": (384, 13, 13), "conv4": (384, 13, 13), "conv5": (256, 13, 13), "pool5": (256, 6, 6),
                        "fc6": (4096,), "fc7": (4096,), "fc8": (1000,)}

        photo = plt.imread(cbook.get_sample_data("grace_hopper.jpg")).astype(np.float32)  # (600, 512, 3), 0..255
        photo = photo.reshape(300, 2, 256, 2, 3).mean(axis=(1, 3))  # 2x2 averages: 300x256
        crops = np.stack([photo[:224, :224], photo[76:, 32:]]).transpose(0, 3, 1, 2)  # two different 224x224 crops
        pixels = (crops - crops.mean(axis=(0, 2, 3), keepdims=True)).astype(np.float32)  # per-channel means: a stand-in for the mean image
        unit = pixels / pixels.std()  # the same images at unit scale
        print(f"pixel-scale input: std {pixels.std():.1f}; unit-scale input: std {unit.std():.1f}")

        x = mt.tensor(pixels)
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
        print(f"but the two images' logits differ by at most {np.abs(logits[0] - logits[1]).max():.4f} "
              f"against a logit spread of {sigma.mean():.2f}")
        assert np.all(np.abs(expected - np.log(C)) < 0.2)
        """
    ),
    md(
        r"""
        ## An initialisation lesson: does the output depend on the input?

        The last line above is a warning. Two different photos give nearly the same 1000 logits: at the
        paper's initialisation the network's output is mostly a function of its **biases**, not of its
        input. Follow the signal stage by stage, with two statistics per stage: the root mean square of
        the activations, and how much the two images differ there, $\overline{|h_0 - h_1|} / \overline{|h|}$
        (about 1 for unrelated images, 0 when the network has forgotten which image it saw). Three
        settings: the paper's $N(0, 0.01^2)$ weights (biases 1 in conv2, conv4, conv5, fc6, fc7) at
        pixel scale, the same at unit scale, and He initialisation, $N(0, 2/\text{fan-in})$ with zero
        biases (`init="kaiming"`), at unit scale.
        """
    ),
    code(
        """
        def signal(model, x):
            # per stage: (rms of the activations, mean |h0 - h1| / mean |h|), and the final logits
            stats = {}
            with mt.no_grad():
                for name, out in model.stages(mt.tensor(x)):
                    h = out.numpy().reshape(2, -1).astype(np.float64)
                    stats[name] = (np.sqrt(np.mean(h**2)), np.abs(h[0] - h[1]).mean() / np.abs(h).mean())
            return stats, h

        settings = {}
        for label, init, inputs in (("paper init, pixels", "paper", pixels), ("paper init, unit", "paper", unit),
                                    ("He init, unit", "kaiming", unit)):
            mt.manual_seed(0)
            net = model if init == "paper" else mt.models.alexnet(init="kaiming")
            net.eval()
            settings[label] = signal(net, inputs)
        he = net  # kept for the SGD step below

        print(f"{'stage':6s}" + "".join(f" | {label:^22s}" for label in settings))
        print(f"{'':6s}" + " | {:>9s} {:>12s}".format("rms", "difference") * len(settings))
        for name in PAPER_SHAPES:
            print(f"{name:6s}" + "".join(f" | {st[name][0]:9.3g} {st[name][1]:12.2g}" for st, _ in settings.values()))
        for label, (_, z) in settings.items():
            print(f"{label:20s}: max |z0 - z1| = {np.abs(z[0] - z[1]).max():.2g}, logit std {z.std():.3f}")
        diff = {label: st["fc8"][1] for label, (st, _) in settings.items()}
        assert diff["paper init, unit"] < 1e-2 < diff["He init, unit"] and diff["paper init, unit"] < diff["paper init, pixels"]
        """
    ),
    md(
        r"""
        How the paper's scheme loses the input: a weight of 0.01 over a fan-in of $n$ multiplies the
        signal's scale by about $0.01\sqrt{n}$ ($0.19$ for conv1's 363 inputs, $0.35$ for conv2's 1200),
        while the bias of 1 in conv2 adds a constant that does not shrink. At unit scale the image
        part is already down to a few percent of conv2's output, and every later layer passes the
        constant on and shrinks the rest: at fc8 the two photos differ by a few parts in $10^4$. The
        paper's pixel-scale input starts 70 times stronger and keeps more of it, but still only a
        percent or so at fc8. He initialisation chooses each layer's scale so that the activations'
        second moment stays constant through the ReLUs (half of a symmetric input survives a ReLU,
        hence the 2), and keeps the images distinguishable to the end.

        What does one SGD step (the paper's rule: momentum 0.9, weight decay 0.0005, learning rate
        0.01) learn from these two images? After the step, the probabilities of the two labels,
        for each image (the paper's initialisation stepped twice from the same start, on unit-scale
        and on pixel-scale input):
        """
    ),
    code(
        """
        def one_step(model, x, labels):
            opt = mt.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
            model.train()  # dropout on
            mt.manual_seed(1)
            start = time.perf_counter()
            loss = F.cross_entropy(model(mt.tensor(x)), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            seconds = time.perf_counter() - start
            model.eval()
            with mt.no_grad():
                p = F.softmax(model(mt.tensor(x))).numpy()
            return loss.item(), seconds, p[:, labels]

        after = {}
        initial = {name: array.copy() for name, array in model.state_dict().items()}  # to step again from the start
        loss, step_time, after["paper init, unit"] = one_step(model, unit, labels)
        print(f"one step with a batch of 2: {step_time:.1f} s (the paper's batch of 128: about {step_time * 64:.0f} s per step)")
        model.load_state_dict(initial)
        del initial
        _, _, after["paper init, pixels"] = one_step(model, pixels, labels)  # the paper's own input scale
        _, _, after["He init, unit"] = one_step(he, unit, labels)
        del model, he, net
        for label, p in after.items():
            print(f"{label:18s}: image 0 (label {labels[0]}): p({labels[0]}) = {p[0, 0]:.4f}, p({labels[1]}) = {p[0, 1]:.4f};  "
                  f"image 1 (label {labels[1]}): p({labels[0]}) = {p[1, 0]:.4f}, p({labels[1]}) = {p[1, 1]:.4f}")
        paper, paper_pixels, he_p = after["paper init, unit"], after["paper init, pixels"], after["He init, unit"]
        assert np.abs(paper[0] - paper[1]).max() < 0.01  # the same answer for both images
        assert np.abs(paper_pixels[0] - paper_pixels[1]).max() < 0.05  # nearly so at the paper's pixel scale too
        assert he_p[0, 0] > he_p[1, 0] and he_p[1, 1] > he_p[0, 1]  # each image's own label gained more
        """
    ),
    md(
        r"""
        At the paper's initialisation the step raises both labels to about 0.4 **for both images
        alike**, at unit scale and at the paper's own pixel scale (the two "paper init" lines): with outputs that ignore the input, the cheapest way down the loss is to learn the
        label frequencies (half 3s, half 7s) through the biases. That is not learning the images, and
        a loss that drops this fast on a first step is a sign to check, not a success. With He
        initialisation the step is modest, and it is not the same for both images: each image now
        gives its own label more probability than the other image gives it. The gradient can tell the
        images apart because the output depends on them. The paper's network did
        train from its initialisation (the input scale and the biases of 1 keep the ReLUs active), but
        the deeper networks after it needed He-style scaling or batch normalisation. The scaled-down
        network below uses He initialisation.

        ## The two towers

        The network did not fit on one 3 GB GTX 580, so the paper split every layer in half across two
        GPUs (Figure 2). Each GPU holds half the filters of each layer and the matching half of the
        activations, and the GPUs communicate only at some layers: **conv3, fc6 and fc7 read the
        outputs of both towers**, conv2, conv4 and conv5 read only their own tower's maps (hence
        `groups=2` in the one-device model), and in this package's `AlexNetTwoTower` **fc8 lives on the
        first device**, reading both towers' fc7, so the second tower's fc7 crosses one way only. In
        the backward pass the gradients of the same activations travel back.

        `AlexNetTwoTower` counts every byte that crosses (`model.traffic`), so we can measure it
        instead of computing it by hand. Both "devices" are CPU here (`cpu:0`, `cpu:1`); the copies
        and the counting are the same as between two GPUs.
        """
    ),
    code(
        """
        from minitorch_alex.models.two_tower import AlexNetTwoTower

        BYTES = np.dtype(np.float32).itemsize
        BATCH = 128
        towers = AlexNetTwoTower(devices=("cpu:0", "cpu:1"), init="kaiming")
        towers.traffic.reset()
        loss = F.cross_entropy(towers(mt.tensor(unit[:1])), labels[:1])  # one image
        forward_bytes = towers.traffic.forward_bytes
        loss.backward()
        backward_bytes = towers.traffic.backward_bytes
        print(f"one image: {forward_bytes:,d} B forward (both directions together), {backward_bytes:,d} B backward, "
              f"in {towers.traffic.copies} copies")
        del towers, loss

        # where those bytes come from: what each crossing carries, per image
        crossings = {  # reader: (what it reads from the other tower, its shape per tower, how many directions)
            "conv3": ("pool2", (128, 13, 13), 2), "fc6": ("pool5", (128, 6, 6), 2),
            "fc7": ("fc6", (2048,), 2), "fc8": ("fc7", (2048,), 1),
        }
        crossing_bytes = {reader: int(np.prod(shape)) * BYTES * ways for reader, (_, shape, ways) in crossings.items()}
        print(f"{'reader':6s} {'reads':16s} {'directions':>10s} {'bytes/image':>12s}")
        for reader, (source, shape, ways) in crossings.items():
            print(f"{reader:6s} {source + ' ' + 'x'.join(map(str, shape)):16s} {ways:>10d} {crossing_bytes[reader]:>12,d}")
        print(f"{'total':34s} {sum(crossing_bytes.values()):>12,d}")
        assert forward_bytes == backward_bytes == sum(crossing_bytes.values()) == 234_496

        per_batch = (forward_bytes + backward_bytes) * BATCH
        print(f"\\na batch of {BATCH}: {per_batch / 1e6:.1f} MB over the link (activations forward, gradients back)")
        print(f"at PCIe 2.0 x16's 8 GB/s per direction (in theory), about {per_batch / 2 / 8e9 * 1e3:.1f} ms per batch;")
        steps = 90 * 1.2e6 / BATCH
        print(f"the paper's 90 epochs in 5-6 days is {5 * 86400 / steps:.2f}-{6 * 86400 / steps:.2f} s per batch")
        print(f"splitting the data instead (each GPU a whole copy of the network) would exchange the weight "
              f"gradients: {60_965_224 * BYTES / 1e6:.0f} MB per GPU per batch")
        """
    ),
    md(
        r"""
        Splitting the **model** keeps the communication to the activations at four narrow points:
        pool5 and the fully connected layers are small even though fc6 and fc7 hold most of the
        weights, which never move. The diagram, with each red arrow labelled by the bytes it carries
        per image (measured above); the gradients travel back along the same arrows.
        """
    ),
    code(
        """
        from course import draw_two_towers  # the drawing code: course.py beside this notebook

        draw_two_towers(crossing_bytes, forward_bytes)
        plt.show()
        """
    ),
    md(
        r"""
        ## A scaled-down AlexNet

        Same layer pattern (11×11 stride-4 conv1, ReLU, LRN with `groups=2`, overlapping 3×3/2 max-pools,
        grouped conv2/4/5, three fully connected layers with dropout), with a quarter to a third of the
        convolutions' channels and 256-unit fully connected layers, for 64×64 inputs: conv1 gives
        15×15 maps, the pools 7×7, 3×3 and 1×1. It lives in `small_net.py` beside this notebook
        (notebook 6 uses it too):
        """
    ),
    code(
        """
        from small_net import MiniAlexNet, evaluate, filter_grid, show, stripes

        CLASSES = data.classes
        C = len(CLASSES)
        listing(MiniAlexNet)
        mt.manual_seed(0)
        print(f"MiniAlexNet for {C} classes: {MiniAlexNet(num_classes=C).num_parameters():,} parameters")
        """
    ),
    md(
        """
        The data: coloured stripes in four orientations and two colours (8 classes), with random
        frequency and phase and plenty of pixel noise, generated on the fly, so nothing to download;
        or, with `DATA = "fashion-mnist"`, the clothes enlarged to 56×56 (each pixel copied 2×2), centred
        in a 64×64 frame of their black background, in all three channels, drawn at random from the
        60,000 training images (validation and test images from the 10,000 test images). One of each class:
        """
    ),
    code(
        """
        listing(stripes if DATA == "stripes" else type(data).sample)
        images, labels = data.sample(64, np.random.default_rng(10))
        first = [int(np.flatnonzero(labels == c)[0]) for c in range(C)]  # one example of each class
        fig, axes = plt.subplots(1, C, figsize=(1.5 * C, 1.9))
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
        will fix it. The loss starts near $\ln C$ ($\ln 8 \approx 2.08$ for the stripes, $\ln 10 \approx 2.30$
        for Fashion-MNIST).
        """
    ),
    code(
        """
        rng = np.random.default_rng(0)
        mt.manual_seed(0)
        X, Y = data.sample(32, rng)  # a fixed batch
        net = MiniAlexNet(num_classes=C, dropout=0.0)
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
        ax.axhline(np.log(C), ls="--", color="gray", label=f"ln {C} (chance)")
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.set_title("MiniAlexNet memorising 32 images")
        ax.legend()
        plt.show()
        assert losses[-1] < (0.05 if DATA == "stripes" else 0.1) and accuracy == 1.0  # 32 clothes take longer
        """
    ),
    md(
        r"""
        ## conv1's filters before and after training

        Now a short real training run: 100 steps, each on a fresh batch of 32 images, dropout on, the
        paper's SGD settings, with the loss and accuracy on a fixed validation set of 128 other images
        measured every 20 steps (dropout off for those). Then each conv1 filter is shown as an 11×11
        colour image, scaled to its own range.
        """
    ),
    code(
        """
        rng = np.random.default_rng(1)
        mt.manual_seed(1)
        net = MiniAlexNet(num_classes=C, dropout=0.5)
        before = net.conv1.weight.numpy().copy()
        opt = mt.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        X_val, Y_val = data.sample(128, np.random.default_rng(98), split="test")

        losses, curve, start = [], [], time.perf_counter()
        for step in range(100):
            if step % 20 == 0:
                curve.append((step, *evaluate(net, X_val, Y_val)))
            X, Y = data.sample(32, rng)
            loss = F.cross_entropy(net(mt.tensor(X)), Y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        curve.append((100, *evaluate(net, X_val, Y_val)))
        after = net.conv1.weight.numpy().copy()
        X_test, Y_test = data.sample(512, np.random.default_rng(99), split="test")
        test_loss, test_accuracy = evaluate(net, X_test, Y_test)
        print(f"100 steps in {time.perf_counter() - start:.1f} s; mean loss of the last 20 steps {np.mean(losses[-20:]):.3f}; "
              f"accuracy on 512 new images {test_accuracy:.1%} (chance {1 / C:.1%})")

        steps, val_loss, val_accuracy = np.array(curve).T
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.5))
        ax1.plot(np.arange(1, len(losses) + 1), losses, lw=0.8, alpha=0.6, label="training batch (dropout on)")
        ax1.plot(steps, val_loss, "o-", label="validation, 128 images (dropout off)")
        ax1.axhline(np.log(C), ls="--", color="gray", label=f"ln {C} (chance)")
        ax1.set_xlabel("step")
        ax1.set_ylabel("cross-entropy loss")
        ax1.legend(fontsize=8)
        ax2.plot(steps, val_accuracy, "o-", color="tab:orange")
        ax2.axhline(1 / C, ls="--", color="gray")
        ax2.set_xlabel("step")
        ax2.set_ylabel("validation accuracy")
        ax2.set_ylim(0, 1.02)
        fig.suptitle(f"MiniAlexNet on fresh batches of {DATA}")
        plt.show()
        assert test_accuracy > 0.5 and val_loss[-1] < val_loss[0]
        """
    ),
    code(
        """
        fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
        for ax, w, title in zip(axes, (before, after, after - before), ("before: N(0, 0.01²) noise", "after 100 steps", "after − before")):
            ax.imshow(filter_grid(w), interpolation="nearest")
            ax.set_title(title)
            ax.axis("off")
        plt.show()
        change = after - before  # the share of each filter's change outside the grey direction (0: equal in R, G, B)
        colour = ((change - change.mean(axis=1, keepdims=True)) ** 2).sum(axis=(1, 2, 3)) / (change**2).sum(axis=(1, 2, 3))
        print(f"colourfulness of the change, mean over the {len(change)} filters: {colour.mean():.3f}")
        if DATA == "fashion-mnist":
            assert colour.mean() < 0.01  # grey: the three input channels are the same image
        """
    ),
    md(
        """
        The filters have become oriented colour edges: an orange or blue band beside a dark or
        opposite-coloured one, at the orientations of the data, with some initial noise still
        visible; the change alone (right) shows the learned structure cleanly. They are edges, not
        stripes, because an 11×11 filter spans at most about one period of stripes that repeat every
        11 to 21 pixels: a filter sees one light-dark transition at a time. On ImageNet, AlexNet's 96 conv1 filters became edge detectors at many
        orientations and frequencies plus colour blobs (Figure 3 of the paper), for the same reason:
        those are the patterns that the first layer can use to tell its data apart. With Fashion-MNIST the
        three input channels hold the same grey image, so each filter's gradient is the same in R, G and B
        and the change (right) is grey: its share outside the grey direction, printed, is under 1% (asserted).
        """
    ),
    md(
        r"""
        ## Test time: ten crops, and the top predictions (Figure 4)

        The paper trains on random 224×224 crops of 256×256 images, so at test time it "extracts five
        224×224 patches (the four corner patches and the center patch) as well as their horizontal
        reflections (hence ten patches in all), and averag[es] the predictions made by the network's
        softmax layer on the ten patches". The package's `minitorch_alex.data.augment.ten_crop` does
        this (`ten_crop_offsets` lists the patches). Here the trained network reads 64×64 patches of
        72×72 test images. For stripes, though, a mirror image is a different class (45° and 135°
        swap), so the reflections should hurt here: a check of whether a test-time transformation
        preserves the label, like the training-time one in notebook 6.
        """
    ),
    code(
        """
        from minitorch_alex.data.augment import ten_crop_offsets

        X_big, Y_big = data.sample(128, np.random.default_rng(100), size=72, split="test")
        offsets = ten_crop_offsets(72, 64)  # (y, x, mirrored): corners and centre, then the same mirrored
        net.eval()
        probabilities = []
        with mt.no_grad():
            for y, x, mirrored in offsets:
                patch = X_big[:, :, y : y + 64, x : x + 64]
                patch = np.ascontiguousarray(patch[..., ::-1] if mirrored else patch)
                probabilities.append(F.softmax(net(mt.tensor(patch))).numpy())
        P = np.stack(probabilities)  # (10 patches, N, classes)
        accuracy = {name: float((p.argmax(1) == Y_big).mean()) for name, p in (
            ("centre patch", P[4]), ("five patches (corners + centre)", P[:5].mean(0)),
            ("ten patches (+ reflections, the paper's)", P.mean(0)), ("the five reflections alone", P[5:].mean(0)))}
        for name, a in accuracy.items():
            print(f"{name:42s}: accuracy {a:.1%} on 128 test images")
        if DATA == "stripes":  # mirroring swaps 45° and 135°
            assert accuracy["the five reflections alone"] < accuracy["five patches (corners + centre)"] - 0.2
            assert accuracy["ten patches (+ reflections, the paper's)"] < accuracy["five patches (corners + centre)"]
        else:  # trained on centred, unmirrored clothes only: other patches cost accuracy
            assert accuracy["centre patch"] > accuracy["five patches (corners + centre)"]
            assert accuracy["the five reflections alone"] < min(accuracy["centre patch"], accuracy["five patches (corners + centre)"])
        """
    ),
    md(
        r"""
        Averaging the five unmirrored patches is the paper's test-time ensemble over positions; on
        stripes, which look alike everywhere, it has little to add to the centre patch (compare the
        first two lines). The reflections alone get the diagonal classes backwards, and averaging them
        in with the others costs accuracy rather than adding it. On ImageNet a mirrored dog is still
        a dog, and the ten-patch average was worth its tenfold cost.

        **On Fashion-MNIST** every patch but the centre one costs accuracy (the cell asserts that the
        centre patch beats the five-patch average, and the reflections alone lose to both): this network
        trained on centred, unmirrored images only, so a corner patch shows it the garment 4 pixels
        off-centre and a reflection a view it never saw. The paper trained on random crops and their
        mirror images: a test-time transformation helps only where training made the network indifferent to it.

        Figure 4 of the paper shows test images beside the network's five most probable labels. The
        same for six test images here, from the paper's ten-patch average, its mistakes first (the
        true label's bar in red). On stripes, a diagonal image's five reflections vote for its mirror
        class and the five others for its own, so the average splits between the two and a hair decides.
        """
    ),
    code(
        """
        ten = P.mean(0)
        wrong = np.flatnonzero(ten.argmax(1) != Y_big)
        chosen = np.concatenate([wrong[:3], np.setdiff1d(np.arange(12), wrong)])[:6]  # three mistakes, then others
        fig, axes = plt.subplots(2, 6, figsize=(15, 4.8), gridspec_kw={"height_ratios": [3, 2]})
        for j, i in enumerate(chosen):
            axes[0, j].imshow(show(X_big[i, :, 4:68, 4:68]))  # the centre patch
            axes[0, j].set_title(CLASSES[Y_big[i]], fontsize=9), axes[0, j].axis("off")
            top = np.argsort(ten[i])[::-1][:5]
            axes[1, j].barh(range(5), ten[i, top], color=["tab:red" if t == Y_big[i] else "tab:blue" for t in top])
            axes[1, j].set_yticks(range(5), [CLASSES[t] for t in top], fontsize=7)
            axes[1, j].set(xlim=(0, 1), ylim=(4.5, -0.5))  # the most probable on top
        fig.suptitle("Figure 4, small: test images and their five most probable classes"), fig.tight_layout()
        plt.show()
        print(f"{len(wrong)} of 128 test images misclassified by the ten-patch average"
              + (f", {np.isin(Y_big[wrong] % 4, (1, 3)).sum()} of them diagonal (45° or 135°)" if DATA == "stripes" else ""))
        """
    ),
]
