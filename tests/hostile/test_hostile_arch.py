"""Messages that say what to do (issue 26, Low #13): AlexNet on a store too small for its crops
is refused before training (no empty metrics.jsonl), naming the store size it needs; --resume
with another --arch names both architectures."""
import os

import pytest
from hostile_helpers import assert_one_line_error, make_store, run_cli, small, store, train_args  # noqa: F401


@pytest.mark.parametrize("arch, message", [
    ("alexnet", "--arch alexnet needs crops of 223 to 254 px, cut from images of 255 to 290 px (expected a store of "
                "255 to 290 px, the paper's 256, vs 16-px images, giving 14-px crops): pack the data again at 256 px"),
    ("alexnet-torchvision", "--arch alexnet-torchvision needs crops of >= 63 px, cut from images of >= 72 px (expected "
                            "a store of >= 72 px, the paper's 256, vs 16-px images, giving 14-px crops)"),
])
def test_alexnet_on_a_store_too_small_is_refused_before_training(store, tmp_path, capsys, arch, message):
    out = tmp_path / "run"
    status, _, err, _ = run_cli(train_args(store, out, "--arch", arch), capsys)  # the real networks, not small_net
    assert status == 1
    assert_one_line_error(err, message)
    assert not (out / "metrics.jsonl").exists() and not (out / "last.npz").exists()


def test_resume_with_another_arch_names_both(store, tmp_path, capsys, small):
    out = tmp_path / "run"
    status, _, err, _ = run_cli(train_args(store, out), capsys)
    assert status == 0, err
    before = (out / "last.npz").read_bytes()
    status, _, err, _ = run_cli(train_args(store, out, "--epochs", "2", "--resume", "--arch", "alexnet-torchvision"),
                                capsys)
    assert status == 2
    assert_one_line_error(err, "--arch: cannot change on --resume (expected the checkpoint's alexnet vs "
                               "alexnet-torchvision)")
    assert (out / "last.npz").read_bytes() == before and os.path.exists(out / "metrics.jsonl")
