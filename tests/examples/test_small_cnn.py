"""examples/small_cnn.py: the same lines build and train the network in minitorch_alex and in
PyTorch; from the same initial weights and batches the first steps agree in float64 (rtol 1e-8):
losses, weights, AdamW's state through the warm-up into the cosine, batch norm's running statistics."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from paths import ROOT  # noqa: E402

import minitorch_alex as mt

sys.path.insert(0, os.path.join(ROOT, "examples"))
import small_cnn  # noqa: E402


def test_the_first_steps_are_pytorchs_in_float64():
    mt.manual_seed(0)
    ours = small_cnn.make_model(mt.nn).to(dtype=np.float64)
    theirs = small_cnn.make_model(torch.nn).double()
    theirs.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in ours.state_dict().items()})
    for model in (ours, theirs):  # dropout's masks come from each framework's generator: off for the comparison
        model[11].p = 0.0
    steps = 6
    mine, yours = small_cnn.make_training(mt, ours, steps, warmup=3), small_cnn.make_training(torch, theirs, steps, warmup=3)
    rng = np.random.default_rng(0)
    for step in range(steps):
        x, y = rng.standard_normal((16, 1, 28, 28)), rng.integers(0, 10, 16)
        a = small_cnn.train_step(mt, ours, *mine, mt.tensor(x), mt.tensor(y))
        b = small_cnn.train_step(torch, theirs, *yours, torch.tensor(x), torch.tensor(y))
        assert a.item() == pytest.approx(b.item(), rel=1e-8), f"loss at step {step}"
        assert mine[0].param_groups[0]["lr"] == pytest.approx(yours[0].param_groups[0]["lr"], rel=1e-12)
    theirs_state = theirs.state_dict()
    for name, value in ours.state_dict().items():
        np.testing.assert_allclose(np.asarray(value), theirs_state[name].numpy(), rtol=1e-8, atol=1e-12, err_msg=name)


def test_the_example_runs_as_a_user_types_it():
    run = subprocess.run([sys.executable, "examples/small_cnn.py", "--synthetic", "--epochs", "1", "--limit", "600",
                          "--batch-size", "64"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    assert "epoch 1/1: training loss" in run.stdout and "test accuracy" in run.stdout
