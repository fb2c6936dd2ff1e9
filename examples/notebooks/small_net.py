"""The scaled-down AlexNet and the data that notebooks 5 and 6 train, in one place.

``MiniAlexNet``: AlexNet's layer pattern (11x11 stride-4 conv1, LRN with ``groups=2``, overlapping
3x3/2 max-pools, grouped conv2/4/5, three fully connected layers with dropout) with a quarter to a
third of the channels, for 64x64 inputs. ``stripes``: coloured stripes in four orientations and
two colours (8 classes) with random frequency, phase and pixel noise, generated on the fly.
``data_set(name)``: the images a notebook trains on, chosen by its ``DATA`` switch: the stripes
(the default, offline) or Fashion-MNIST (Debian's ``dataset-fashion-mnist``, read by the package's
own ``minitorch_alex.data.fashion_mnist``), behind one ``sample`` method.
"""
import numpy as np

import minitorch_alex as mt
import minitorch_alex.nn.functional as F
from minitorch_alex import nn
from minitorch_alex.nn import init

ANGLES = np.deg2rad([0, 45, 90, 135])  # the direction the stripes' brightness varies along
COLOURS = np.array([[1.0, 0.35, 0.0], [0.0, 0.45, 1.0]])  # orange, blue
CLASSES = [f"{colour} {angle}°" for colour in ("orange", "blue") for angle in (0, 45, 90, 135)]


class MiniAlexNet(nn.Module):
    """(N, 3, 64, 64) -> (N, num_classes) logits; conv1 gives 15x15 maps, the pools 7x7, 3x3, 1x1."""

    def __init__(self, num_classes=8, widths=(32, 64, 96, 96, 64), hidden=256, dropout=0.5, activation=F.relu):
        super().__init__()
        c1, c2, c3, c4, c5 = widths
        self.conv1 = nn.Conv2d(3, c1, 11, stride=4, padding=2)
        self.conv2 = nn.Conv2d(c1, c2, 5, padding=2, groups=2)  # tower 0 reads conv1's first half only
        self.conv3 = nn.Conv2d(c2, c3, 3, padding=1)  # the towers meet
        self.conv4 = nn.Conv2d(c3, c4, 3, padding=1, groups=2)
        self.conv5 = nn.Conv2d(c4, c5, 3, padding=1, groups=2)
        self.fc6, self.fc7, self.fc8 = nn.Linear(c5, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, num_classes)
        self.lrn = nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0, groups=2)
        self.drop = nn.Dropout(dropout)
        self.act = activation
        # He initialisation, N(0, 2/fan_in), keeps the signal's scale through the ReLUs, so the output
        # depends on the input from the first step (notebook 5's initialisation lesson). conv1 keeps
        # the paper's 0.01, so its filters start as faint noise and what they learn stands out.
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                init.constant_(p, 0.0)
            else:
                std = 0.01 if name.startswith("conv1") else np.sqrt(2.0 / np.prod(p.shape[1:]))
                init.normal_(p, 0.0, std)

    def forward(self, x):
        act = self.act
        x = F.max_pool2d(self.lrn(act(self.conv1(x))), 3, 2)
        x = F.max_pool2d(self.lrn(act(self.conv2(x))), 3, 2)
        x = act(self.conv5(act(self.conv4(act(self.conv3(x))))))
        x = F.flatten(F.max_pool2d(x, 3, 2), 1)
        x = act(self.fc6(x))
        x = act(self.fc7(self.drop(x)))
        return self.fc8(self.drop(x))


def stripes(n, rng, size=64, noise=0.3):
    """n images (n, 3, size, size) float32 around 0, and their labels (n,) in 0..7; ``noise`` is the
    standard deviation of the Gaussian pixel noise (the stripes' amplitude is about 1)."""
    labels = rng.integers(0, len(CLASSES), n)
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = np.empty((n, 3, size, size), np.float32)
    for i, label in enumerate(labels):
        theta = ANGLES[label % 4] + rng.normal(0, 0.1)
        phase = 2 * np.pi * rng.uniform(3, 6) * (xx * np.cos(theta) + yy * np.sin(theta)) + rng.uniform(0, 2 * np.pi)
        images[i] = COLOURS[label // 4][:, None, None] * np.sin(phase) + rng.normal(0, noise, (3, size, size))
    return images, labels


class SmallConvNet(nn.Module):
    """Three strided convolutions and one or two fully connected layers, for 32x32 inputs: the size of
    the four-layer network of the paper's Figure 1. ``groups=2`` splits conv2 and conv3 into two
    towers that meet only at the first fully connected layer; ``hidden`` > 0 adds a hidden layer
    with dropout ``dropout`` before the classifier."""

    def __init__(self, activation=F.relu, num_classes=8, groups=1, hidden=0, dropout=0.5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 5, stride=2, padding=2)  # 32 -> 16
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1, groups=groups)  # 16 -> 8
        self.conv3 = nn.Conv2d(32, 32, 3, stride=2, padding=1, groups=groups)  # 8 -> 4
        self.fc1 = nn.Linear(32 * 4 * 4, hidden or num_classes)
        self.fc2 = nn.Linear(hidden, num_classes) if hidden else None
        self.drop = nn.Dropout(dropout, inverted=False)  # the paper's: outputs times 1 - p at test time
        self.act = activation
        for name, p in self.named_parameters():  # He initialisation, zero biases
            if name.endswith("bias"):
                init.constant_(p, 0.0)
            else:
                init.normal_(p, 0.0, np.sqrt(2.0 / np.prod(p.shape[1:])))

    def forward(self, x):
        act = self.act
        x = F.flatten(act(self.conv3(act(self.conv2(act(self.conv1(x)))))), 1)
        x = self.fc1(x)
        return self.fc2(self.drop(act(x))) if self.fc2 is not None else x


def show(image):
    """(3, H, W) around 0 -> (H, W, 3) in [0, 1], for imshow."""
    return np.clip(image.transpose(1, 2, 0) * 0.35 + 0.5, 0, 1)


def filter_grid(w, cols=8):
    """(O, 3, k, k) filters -> one RGB image, each filter min-max scaled on its own, 1-pixel white gaps."""
    o, _, k, _ = w.shape
    rows = -(-o // cols)
    grid = np.ones((rows * (k + 1) + 1, cols * (k + 1) + 1, 3))
    for i, f in enumerate(w):
        f = f.transpose(1, 2, 0)
        f = (f - f.min()) / (f.max() - f.min() + 1e-12)
        r, c = divmod(i, cols)
        grid[1 + r * (k + 1) : 1 + r * (k + 1) + k, 1 + c * (k + 1) : 1 + c * (k + 1) + k] = f
    return grid


def evaluate(net, x, y):
    """(loss, accuracy) of ``net`` on arrays x (N, 3, 64, 64), y (N,), in eval mode (dropout off)."""
    was_training = net.training
    net.eval()
    with mt.no_grad():
        logits = net(mt.tensor(x))
    net.train(was_training)
    return F.cross_entropy(logits, y).item(), float((logits.numpy().argmax(1) == y).mean())


# what a notebook's DATA switch may name; the environment variable the tests set to choose one
DATA_SETS = ("stripes", "fashion-mnist")
DATA_VARIABLE = "MINITORCH_NOTEBOOK_DATA"


def data_set(name):
    """The images notebooks 5 and 6 train on: ``Stripes()`` or ``FashionMNIST()``, by ``name``."""
    if name not in DATA_SETS:
        raise ValueError(f"DATA must name a data set (expected one of {', '.join(DATA_SETS)} vs {name!r})")
    return Stripes() if name == "stripes" else FashionMNIST()


class Stripes:
    """``stripes`` behind the ``sample`` method every data set has; its 8 classes in ``classes``."""

    name, classes = "stripes", CLASSES

    def sample(self, n, rng, size=64, noise=0.3, split="train", uint8=False):
        """n new images (n, 3, size, size) float32 around 0 and their labels (n,): every draw is
        generated afresh, so ``split`` changes nothing. ``uint8``: the images as a store holds them,
        (n, size, size, 3) uint8 (``show``'s mapping to 0..255)."""
        images, labels = stripes(n, rng, size=size, noise=noise)
        if uint8:
            images = np.round(np.stack([show(im) for im in images]) * 255).astype(np.uint8)
        return images, labels


class FashionMNIST:
    """Fashion-MNIST (60,000 training and 10,000 test images of 28x28 grey clothes, 10 classes), read
    once from the files of Debian's ``dataset-fashion-mnist`` (``root``: their folder, by default
    the package's) with the package's reader."""

    name = "fashion-mnist"

    def __init__(self, root=None):
        from minitorch_alex.data.fashion_mnist import CLASSES as NAMES
        from minitorch_alex.data.fashion_mnist import load_fashion_mnist

        data = load_fashion_mnist(root)
        self.classes = [{"t-shirt_top": "t-shirt/top"}.get(c, c.replace("_", " ")) for c in NAMES]
        self.splits = {"train": data["train"], "test": data["val"]}
        train = data["train"][0]
        self.mean, self.std = float(train.mean()), float(train.std())  # of the training pixels, 0..255

    def sample(self, n, rng, size=64, noise=None, split="train", uint8=False):
        """n images drawn at random without replacement from ``split`` ("train" or "test") and their
        labels (n,): (n, 3, size, size) float32, the grey image in all three channels, standardised
        by the training pixels' mean and standard deviation. Each image is enlarged by the largest
        whole factor that fits ``size`` (pixel copies: 2x for 64) and centred on its own background
        (a 28-px image in a 32-px frame has 2 px of it on each side). ``noise`` is the stripes'
        parameter and is ignored. ``uint8``: the framed 0..255 pixels instead, (n, size, size, 3), as a
        store holds images."""
        images, labels = self.splits[split]
        index = rng.choice(len(images), n, replace=False)
        k = size // 28
        if k < 1:
            raise ValueError(f"size must be at least 28 (expected >= 28 vs {size})")
        big = images[index].repeat(k, axis=1).repeat(k, axis=2)
        lo = (size - 28 * k) // 2
        frame = np.zeros((n, size, size), np.uint8)  # 0: the images' own black background
        frame[:, lo:lo + 28 * k, lo:lo + 28 * k] = big
        if uint8:
            return np.repeat(frame[..., None], 3, axis=3), labels[index]
        x = (frame.astype(np.float32) - self.mean) / self.std
        return np.ascontiguousarray(np.repeat(x[:, None], 3, axis=1)), labels[index]
