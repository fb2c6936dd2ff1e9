"""The CuPy path on a real GPU, against the NumPy reference on the CPU. Skipped without CuPy or a
CUDA device (CI has neither); run on a GPU machine with

    pip install -e ".[dev,gpu]" && python -m pytest -o addopts= -q tests/test_gpu.py tests/test_two_tower.py

Covers: the CUDA sources build through CuPy (NVRTC); every op forward and backward on CuPy
(CUDA kernels: backend 'fast'; CuPy running the reference: backend 'reference') against the
float64 NumPy reference on hypothesis shapes; float16 kernels; the TF32 switch; AlexNet training
steps on cuda:0 against the CPU; mixed precision on the GPU; the GPU input pipeline against the
CPU loader; and the two-tower tests on ("cuda:0", "cuda:0") and ("cuda:0", "cpu"). CuPy's
PerformanceWarning (raised e.g. when an array is used from another device) is an error here.
"""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import distinct_values

import minitorch_alex as mt
import minitorch_alex.nn.functional as F
from minitorch_alex import amp


def _cupy_with_gpu():
    try:
        import cupy

        return cupy if cupy.cuda.is_available() else None
    except Exception:  # not installed, or no driver
        return None


cp = _cupy_with_gpu()
pytestmark = [pytest.mark.skipif(cp is None, reason="needs CuPy and a CUDA GPU")]
if cp is not None:  # (the mark imports the class, so only where CuPy is there)
    pytestmark.append(pytest.mark.filterwarnings("error::cupy._util.PerformanceWarning"))
DEV = "cuda:0"
TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-4, atol=1e-5),
       np.float16: dict(rtol=3e-2, atol=3e-2)}


def test_performance_warnings_are_errors_here():
    with pytest.raises(cp._util.PerformanceWarning):
        warnings.warn("an implicit cross-device access", cp._util.PerformanceWarning)


def run(fn, arrays, gy, device, backend, dtype):
    """Output and input gradients (NumPy float64) of fn on ``device`` with ``backend``."""
    with mt.config.using(backend=backend):
        ts = [mt.tensor(np.asarray(a, dtype=dtype), requires_grad=True, device=device) for a in arrays]
        y = fn(*ts)
        assert y.device == mt.device(device) and y.dtype == np.dtype(dtype)
        y.backward(mt.tensor(np.asarray(gy, dtype=dtype), device=device))
        return y.numpy().astype(np.float64), [t.grad.numpy().astype(np.float64) for t in ts]


def check_against_cpu(fn, arrays, gy, dtype=np.float64, backends=("cuda", "reference")):
    y_ref, g_ref = run(fn, arrays, gy, "cpu", "reference", np.float64)
    for backend in backends:
        y, g = run(fn, arrays, gy, DEV, backend, dtype)
        np.testing.assert_allclose(y, y_ref, err_msg=f"{backend} forward", **TOL[dtype])
        for i, (a, b) in enumerate(zip(g, g_ref)):
            np.testing.assert_allclose(a, b, err_msg=f"{backend} grad of input {i}", **TOL[dtype])


def test_every_cuda_source_builds_through_cupy():
    import minitorch_alex_kernels.cuda as kc

    for name in kc.SOURCES:
        for kernel in kc.kernel_names(name):
            assert kc.module(name).get_function(kernel) is not None


dtypes = st.sampled_from([np.float64, np.float32, np.float16])


@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 3))
    cin, cout = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 4))
    k, s, p = draw(st.integers(1, 5)), draw(st.integers(1, 4)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, k - 2 * p), 13))
    return dict(n=draw(st.integers(1, 3)), cin=cin, cout=cout, h=h, k=k, s=s, p=p, groups=groups)


@settings(max_examples=25, deadline=None)
@given(case=conv_cases(), dtype=dtypes, seed=st.integers(0, 2**16))
def test_conv2d(case, dtype, seed):
    rng = np.random.default_rng(seed)
    c = case
    x = rng.standard_normal((c["n"], c["cin"], c["h"], c["h"]))
    w = rng.standard_normal((c["cout"], c["cin"] // c["groups"], c["k"], c["k"])) * 0.3
    b = rng.standard_normal(c["cout"])
    oh = (c["h"] + 2 * c["p"] - c["k"]) // c["s"] + 1
    gy = rng.standard_normal((c["n"], c["cout"], oh, oh))
    check_against_cpu(lambda x, w, b: F.conv2d(x, w, b, c["s"], c["p"], c["groups"]), [x, w, b], gy, dtype,
                      backends=("cuda",) if dtype == np.float16 else ("cuda", "reference"))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 4), h=st.integers(3, 12), k=st.integers(1, 3), s=st.integers(1, 3),
       dtype=st.sampled_from([np.float64, np.float32]), seed=st.integers(0, 2**16))
def test_max_pool2d(n, c, h, k, s, dtype, seed):
    rng = np.random.default_rng(seed)
    p = k // 2
    x = distinct_values(rng, (n, c, h, h))  # no ties: the winner is the same in every dtype
    oh = (h + 2 * p - k) // s + 1
    check_against_cpu(lambda x: F.max_pool2d(x, k, s, p), [x], rng.standard_normal((n, c, oh, oh)), dtype)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 3), cpg=st.integers(1, 8), groups=st.integers(1, 2), h=st.integers(1, 7),
       size=st.integers(1, 6), dtype=dtypes, seed=st.integers(0, 2**16))
def test_local_response_norm(n, cpg, groups, h, size, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, cpg * groups, h, h)) * 3
    check_against_cpu(lambda x: F.local_response_norm(x, size, 1e-2, 0.75, 2.0, groups), [x],
                      rng.standard_normal(x.shape), dtype,
                      backends=("cuda",) if dtype == np.float16 else ("cuda", "reference"))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_relu_dropout_linear_and_loss(dtype, rng):
    x = distinct_values(rng, (6, 10))
    check_against_cpu(F.relu, [x], rng.standard_normal(x.shape), dtype)
    mask = rng.random(x.shape) < 0.5
    check_against_cpu(lambda x: F.dropout(x, 0.5, mask=mask), [x], rng.standard_normal(x.shape), dtype)
    w, b = rng.standard_normal((4, 10)) * 0.3, rng.standard_normal(4)
    check_against_cpu(F.linear, [x, w, b], rng.standard_normal((6, 4)), dtype)
    if dtype != np.float16:
        check_against_cpu(lambda x: F.cross_entropy(x, [1, 2, 3, 0, 9, 5]).reshape(1), [x], np.ones(1), dtype)
        check_against_cpu(lambda x: F.log_softmax(x), [x], rng.standard_normal(x.shape), dtype)


def test_dropout_draws_the_same_mask_as_the_cpu(rng):
    x = rng.standard_normal((8, 64)).astype(np.float32)
    mt.manual_seed(5)
    cpu = F.dropout(mt.tensor(x), 0.5).numpy()
    mt.manual_seed(5)
    gpu = F.dropout(mt.tensor(x, device=DEV), 0.5).numpy()
    np.testing.assert_array_equal(gpu, cpu)


def test_sgd_kernel_matches_the_cpu_update(rng):
    for dtype in (np.float32, np.float64):
        w, g = rng.standard_normal(1000).astype(dtype), rng.standard_normal(1000).astype(dtype)
        results = []
        for device in ("cpu", DEV):
            p = mt.nn.Parameter(w, device=device)
            opt = mt.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=5e-4)
            for _ in range(3):
                p.grad = mt.tensor(g, device=device)
                opt.step()
            results.append(p.numpy())
        np.testing.assert_allclose(results[1], results[0], **TOL[dtype])


def test_tf32_switch_changes_float32_gemm_precision(rng):
    """mt.config.tf32, the one switch, reaches the kernels' GEMMs through the dispatch."""
    import minitorch_alex_kernels.cuda as kc

    a, b = (rng.standard_normal((512, 512)).astype(np.float32) for _ in range(2))
    exact = a.astype(np.float64) @ b.astype(np.float64).T
    x, w = mt.tensor(a, device=DEV), mt.tensor(b, device=DEV)
    errors = {}
    try:
        for tf32 in (False, True):
            with mt.config.using(backend="cuda", tf32=tf32):
                errors[tf32] = np.abs(F.linear(x, w).numpy() - exact).max()
    finally:
        kc.set_tf32(False)
    assert errors[False] < 1e-3 < errors[True], errors  # TF32 keeps 10 mantissa bits: errors ~1e-2 on sums of 512


def alexnet_steps(device, dtype, steps=3, seed=0, batch=None):
    mt.manual_seed(seed)
    model = mt.models.alexnet(num_classes=10, dtype=dtype, devices=device)
    opt = mt.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x, y = batch
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(mt.tensor(x.astype(dtype), device=device)), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, {k: (v if isinstance(v, np.ndarray) else cp.asnumpy(v)) for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def image_batch():
    rng = np.random.default_rng(0)
    return rng.standard_normal((4, 3, 224, 224)) * 50, np.array([1, 7, 3, 3])


def test_alexnet_training_steps_on_gpu_equal_the_cpu(image_batch):
    cpu_losses, cpu_state = alexnet_steps("cpu", np.float64, batch=image_batch)
    gpu_losses, gpu_state = alexnet_steps(DEV, np.float64, batch=image_batch)  # same seed: same weights, same dropout
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-9)
    for name, value in cpu_state.items():
        np.testing.assert_allclose(gpu_state[name], value, rtol=1e-7, atol=1e-12, err_msg=name)


def test_alexnet_float32_tf32_and_mixed_precision_follow_float64(image_batch):
    ref, _ = alexnet_steps("cpu", np.float64, batch=image_batch)
    fp32, _ = alexnet_steps(DEV, np.float32, batch=image_batch)
    np.testing.assert_allclose(fp32, ref, rtol=1e-4)
    with mt.config.using(tf32=True):
        tf32, _ = alexnet_steps(DEV, np.float32, batch=image_batch)
    np.testing.assert_allclose(tf32, ref, rtol=2e-2)
    mt.manual_seed(0)
    model = mt.models.alexnet(num_classes=10, devices=DEV)
    mp = amp.MixedPrecision(model, "float16")
    opt = mt.optim.SGD(mp.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x, y = image_batch
    losses = []
    for _ in range(3):
        loss = F.cross_entropy(mp.forward(mt.tensor(x.astype(np.float32), device=DEV)), y)
        mp.backward(loss)
        losses.append(loss.item())
        mp.step(opt)
    assert {p.dtype for p in model.parameters()} == {np.dtype(np.float16)}
    assert mp.scaler.skipped <= 1  # at most one overflow while the scale settles
    np.testing.assert_allclose(losses[0], ref[0], rtol=2e-2)  # same weights, float16 forward


def test_gpu_augmenter_gives_the_cpu_loaders_batches(rng):
    from minitorch_alex.data import DataLoader, StoreSplit
    from minitorch_alex.data.gpu_augment import GPUAugmenter

    images = rng.integers(0, 256, (11, 32, 32, 3), dtype=np.uint8)
    eigvals, eigvecs = np.linalg.eigh(np.cov(images.reshape(-1, 3).T / 255.0))
    split = StoreSplit(images=images, labels=rng.integers(0, 5, 11), mean=images.mean(0).astype(np.float32),
                       eigvals=eigvals.astype(np.float32), eigvecs=eigvecs.astype(np.float32))
    cpu = DataLoader(split, batch_size=4, train=True, seed=3, crop=28, workers=0)
    cpu.set_epoch(1)
    gpu = GPUAugmenter(split, batch_size=4, crop=28, device=DEV, seed=3)
    count = 0
    for (xc, yc), (xg, yg) in zip(cpu, gpu.batches(epoch=1)):
        xc = xc.numpy() if hasattr(xc, "numpy") else np.asarray(xc)
        yc = yc.numpy() if hasattr(yc, "numpy") else np.asarray(yc)
        np.testing.assert_array_equal(cp.asnumpy(xg), xc)
        np.testing.assert_array_equal(cp.asnumpy(yg), yc)
        count += 1
    assert count == 3 == len(gpu)


# ----- the two-tower model on GPU pairs (tests/test_two_tower.py parametrizes them too) --------------
GPU_PAIRS = [("cuda:0", "cuda:0"), ("cuda:0", "cpu")]


@pytest.fixture(scope="module")
def two_tower_batch():
    import test_two_tower as tt

    rng = np.random.default_rng(0)
    return rng.standard_normal((tt.N, 3, 224, 224)), np.array([1, 7])


@pytest.mark.parametrize("devices", GPU_PAIRS)
def test_two_tower_same_logits_loss_and_gradients(devices, two_tower_batch):
    import test_two_tower as tt

    tt.test_same_logits_loss_and_gradients_as_grouped_model(devices, two_tower_batch)


@pytest.mark.parametrize("devices", GPU_PAIRS)
def test_two_tower_same_parameters_after_sgd_steps(devices, two_tower_batch):
    import test_two_tower as tt

    x, y = two_tower_batch
    single, split = tt.make_pair(devices)
    tt.sgd_steps_on_both(single, split, x, y)
    after = split.state_dict()
    for name, value in single.state_dict().items():
        np.testing.assert_allclose(after[name], value, rtol=1e-10, atol=1e-14, err_msg=name)


def test_two_tower_traffic_on_a_mixed_pair(two_tower_batch):
    import test_two_tower as tt

    x, y = two_tower_batch
    _, split = tt.make_pair(("cuda:0", "cpu"))
    split.traffic.reset()
    loss = F.cross_entropy(split(mt.tensor(x)), y)
    expected = tt.N * 8 * (2 * 128 * 13 * 13 + 2 * 128 * 6 * 6 + 2 * 2048 + 2048)
    assert split.traffic.forward_bytes == expected
    loss.backward()
    assert split.traffic.backward_bytes == expected


def test_tf32_reaches_the_convolution_gemms(rng):
    # the convolution's GEMMs are 2-D cuBLAS calls that honour the compute type (the old 3-D
    # batched call passed the data type as the compute type: TF32 never reached a convolution)
    import minitorch_alex_kernels.cuda as kc

    x = rng.standard_normal((2, 64, 16, 16)).astype(np.float32)
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    with mt.config.using(backend="reference"):
        exact = F.conv2d(mt.tensor(x.astype(np.float64)), mt.tensor(w.astype(np.float64)), None, 1, 1).numpy()
    errors = {}
    try:
        for tf32 in (False, True):
            y = kc.Conv2d(tf32=tf32).forward(cp.asarray(x), cp.asarray(w), stride=(1, 1), padding=(1, 1), groups=1)
            errors[tf32] = np.abs(cp.asnumpy(y) - exact).max()
    finally:
        kc.set_tf32(False)
    assert errors[False] < 1e-3 < errors[True], errors  # 576-term sums: ~1e-5 in float32, ~1e-2 in TF32


def test_bfloat16_mixed_precision_is_refused_on_the_gpu():
    model = mt.models.alexnet(num_classes=10, devices=DEV)
    with pytest.raises(ValueError, match="^mixed precision with bfloat16 is not supported on cuda:0"):
        amp.MixedPrecision(model, "bfloat16")
