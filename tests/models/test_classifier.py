"""Classifier.from_checkpoint / predict and examples/predict.py, on checkpoints saved by minitorch_alex.checkpoint."""
import os
import subprocess
import sys

import numpy as np
import pytest
from paths import ROOT
from PIL import Image

import minitorch_alex as mt
import minitorch_alex.nn.functional as F
from minitorch_alex.checkpoint import save_checkpoint
from minitorch_alex.data.augment import center_crop, ten_crop

CLASSES = ["n01", "n02", "n03"]
NAMES = ["tench", "goldfish", "great white shark"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 3-class AlexNet checkpoint written by the trainer itself (``Trainer.save``: the mean image as
    ``data/mean``, classes, class names, input scale in the meta), on a split whose mean is known."""
    from minitorch_alex.data import StoreSplit
    from minitorch_alex.train import TrainConfig, Trainer

    mt.manual_seed(4)
    model = mt.models.alexnet(num_classes=3, init="kaiming")
    rng = np.random.default_rng(0)
    mean = rng.uniform(90, 150, (256, 256, 3)).astype(np.float32)
    split = StoreSplit(rng.integers(0, 256, (3, 256, 256, 3), dtype=np.uint8), np.arange(3), mean,
                       np.ones(3, np.float32), np.eye(3, dtype=np.float32), CLASSES, "train")
    out = tmp_path_factory.mktemp("ckpt")
    cfg = TrainConfig(epochs=1, batch_size=1, workers=0, out=str(out), input_scale=1 / 64, plots=False, progress=False)
    path = Trainer(cfg, split, split, CLASSES, model=model, class_names=NAMES).save("best.npz")
    images = rng.integers(0, 256, (2, 256, 256, 3), dtype=np.uint8)
    return model.eval(), path, mean, images


def reference_probs(model, batch):
    with mt.no_grad():
        return F.softmax(model(mt.tensor(batch)), axis=-1).numpy()


@pytest.mark.parametrize("crops", ["centre", "ten"])
def test_predictions_follow_the_validation_pipeline(trained, crops):
    model, path, mean, images = trained
    clf = mt.models.Classifier.from_checkpoint(path)
    assert clf.classes == CLASSES and clf.input_scale == 1 / 64
    for img in images:
        if crops == "centre":
            expected = reference_probs(model, center_crop(img[None], mean, 224, 1 / 64))[0]
        else:
            expected = reference_probs(model, ten_crop(img[None], mean, 224, 1 / 64)[0]).mean(axis=0)
        top = clf.predict(img, topk=2, ten_crop=crops == "ten")
        order = np.argsort(-expected)[:2]
        assert [name for name, _ in top] == [NAMES[i] for i in order]
        np.testing.assert_allclose([p for _, p in top], expected[order], rtol=1e-4)


def test_paths_and_pil_images_and_the_example_script(trained, tmp_path):
    _, path, _, images = trained
    clf = mt.models.Classifier.from_checkpoint(path)
    files = []
    for i, img in enumerate(images):
        files.append(str(tmp_path / f"img{i}.png"))
        Image.fromarray(img).save(files[-1])
    from_files = clf.predict(files, topk=3)
    assert [r[0][0] for r in from_files] == [clf.predict(Image.fromarray(img))[0][0] for img in images]
    assert abs(sum(p for _, p in from_files[0]) - 1.0) < 1e-5  # all three classes: probabilities sum to 1
    run = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "predict.py"), *files,
                          "--checkpoint", path, "--topk", "2"], check=False, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == files[0] and len(lines) == 2 * 3
    assert lines[1].strip().endswith(from_files[0][0][0]) and f"{100 * from_files[0][0][1]:6.2f}%" in lines[1]


def test_a_checkpoint_without_mean_asks_for_one(tmp_path):
    model = mt.models.alexnet(num_classes=2)
    path = str(tmp_path / "no_mean.npz")
    save_checkpoint(path, model, meta={"classes": ["a", "b"]})
    with pytest.raises(ValueError, match="holds no mean image; pass mean="):
        mt.models.Classifier.from_checkpoint(path)
    clf = mt.models.Classifier.from_checkpoint(path, mean=(120.0, 115.0, 100.0))
    assert len(clf.predict(np.zeros((300, 200, 3), np.uint8))) == 2  # any size: resized and cropped
    with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) uint8 image, got \(4, 4\) float64"):
        clf.predict(np.zeros((4, 4)))


def test_a_converted_torchvision_checkpoint_predicts_what_torch_does(tmp_path):
    torch = pytest.importorskip("torch")
    from torch_alexnet import TorchAlexNet

    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        from convert_torchvision import convert
    finally:
        del sys.path[:1]
    torch.manual_seed(1)
    net = TorchAlexNet(num_classes=5).eval()
    path = str(tmp_path / "tv.npz")
    convert(net.state_dict(), path, classes=list("abcde"))
    clf = mt.models.Classifier.from_checkpoint(path)
    img = np.random.default_rng(2).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    x = img[16:240, 16:240].astype(np.float32) / 255  # torchvision: centre 224 of 256, [0, 1], normalised
    x = (x - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    with torch.no_grad():
        expected = torch.softmax(net(torch.from_numpy(x.transpose(2, 0, 1)[None].copy())), -1)[0].numpy()
    np.testing.assert_allclose(clf.probabilities(img), expected, rtol=1e-4, atol=1e-6)


def test_a_two_tower_checkpoint_classifies_on_one_device(tmp_path):
    mt.manual_seed(8)
    split = mt.models.alexnet(num_classes=3, devices=("cpu:0", "cpu:1"), init="kaiming").eval()
    path = str(tmp_path / "two_tower.npz")
    save_checkpoint(path, split, meta={"classes": CLASSES, "mean": [120.0, 110.0, 100.0]})
    clf = mt.models.Classifier.from_checkpoint(path)
    assert isinstance(clf.model, mt.models.AlexNet)
    img = np.random.default_rng(3).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    expected = reference_probs(split, clf.preprocess(img))[0]
    np.testing.assert_allclose(clf.probabilities(img), expected, rtol=1e-4)
