"""The CuPy path on a real GPU, against the NumPy reference on the CPU. Skipped without CuPy or a
CUDA device (CI has neither); run on a GPU machine with

    pip install -e ".[dev,gpu]" && python -m pytest -o addopts= -q tests/gpu/test_gpu.py tests/models/test_two_tower.py

Covers: the CUDA sources build through CuPy (NVRTC); every op of tests/op_specs.py forward and
backward on CuPy (CUDA kernels: backend 'cuda'; CuPy running the reference: backend 'reference')
against the float64 NumPy reference on its hypothesis cases and examples; float16 kernels; the
TF32 switch; AlexNet training steps on cuda:0 against the CPU; mixed precision on the GPU; the
GPU input pipeline against the CPU loader. The two-tower tests on ("cuda:0", "cuda:0") and
("cuda:0", "cpu") are in tests/models/test_two_tower.py. CuPy's PerformanceWarning (raised e.g.
when an array is used from another device) is an error here and there.
"""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from op_specs import BY_NAME, SPECS, Case, after_call, array_dtype, hot, tensors, upstream

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


def run(spec, case, gy, device, backend, dtype):
    """Output and per input its gradient (a state input's value after the call; NumPy float64) of
    ``spec`` on ``case`` in ``dtype`` on ``device`` with ``backend``."""
    with mt.config.using(backend=backend):
        ts = tensors(case, dtype, device, spec.state)
        y = spec.run(ts, case.params)
        assert y.device == mt.device(device) and y.dtype == np.dtype(dtype)
        y.backward(mt.tensor(np.asarray(gy, dtype=dtype), device=device))
        after = [after_call(t, i, spec.state) for i, t in enumerate(ts)]
        return y.numpy().astype(np.float64), [a.astype(np.float64) if a is not None else None for a in after]


def check_against_cpu(spec, case, dtype, backend, seed=0):
    """``spec`` on cuda:0 under ``backend`` in ``dtype`` against the float64 reference on the CPU on
    the same (rounded) values. A fused ReLU op below float64 is held to relu(unfused reference),
    differentiated where its own output is positive (a value rounded across zero flips the mask)."""
    rounded = Case([a.astype(array_dtype(dtype, i, spec.state)).astype(np.float64) if a is not None else None
                    for i, a in enumerate(case.arrays)], case.params, case.meta)
    gy = upstream(spec, rounded, dtype, seed)
    y, g = run(spec, rounded, gy, DEV, backend, dtype)
    own_mask = spec.fused_relu_of is not None and dtype != np.float64
    reference = BY_NAME[spec.fused_relu_of] if own_mask else spec
    gy_ref = gy.astype(np.float64) * (y > 0) if own_mask else gy
    y_ref, g_ref = run(reference, rounded, gy_ref, "cpu", "reference", np.float64)
    if own_mask:
        y_ref = np.maximum(y_ref, 0)
    np.testing.assert_allclose(y, y_ref, err_msg=f"{backend} forward", **TOL[dtype])
    for i, (a, b) in enumerate(zip(g, g_ref)):
        if b is not None:
            np.testing.assert_allclose(a, b, err_msg=f"{backend} grad of input {i}", **TOL[dtype])


# every op of the specs in every dtype: CUDA kernels (backend 'cuda', the ops with a CUDA form) and
# CuPy running the reference code (not in float16 where the reference sums in half precision)
GPU_CASES = [pytest.param(spec, backend, dtype, id=f"{spec.name}-{backend}-{np.dtype(dtype).name}")
             for spec in SPECS for dtype in (np.float64, np.float32, np.float16) for backend in ("cuda", "reference")
             if (backend == "cuda" and hot(spec)) or (backend == "reference" and (dtype != np.float16 or spec.reference_float16))]


@settings(max_examples=25, deadline=None)
@pytest.mark.parametrize("spec, backend, dtype", GPU_CASES)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_op_on_gpu_equals_the_cpu(spec, backend, dtype, data, seed):
    check_against_cpu(spec, data.draw(spec.cases), dtype, backend, seed)


@pytest.mark.parametrize("spec, backend, dtype", [c for c in GPU_CASES if c.values[0].examples])
def test_op_examples_on_gpu_equal_the_cpu(spec, backend, dtype):
    for i, case in enumerate(spec.examples):
        check_against_cpu(spec, case, dtype, backend, seed=i)


def test_every_cuda_source_builds_through_cupy():
    import minitorch_alex_kernels.cuda as kc

    for name in kc.SOURCES:
        for kernel in kc.kernel_names(name):
            assert kc.module(name).get_function(kernel) is not None


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
    from minitorch_alex.data import StoreLoader, StoreSplit
    from minitorch_alex.data.gpu_augment import GPUAugmenter

    images = rng.integers(0, 256, (11, 32, 32, 3), dtype=np.uint8)
    eigvals, eigvecs = np.linalg.eigh(np.cov(images.reshape(-1, 3).T / 255.0))
    split = StoreSplit(images=images, labels=rng.integers(0, 5, 11), mean=images.mean(0).astype(np.float32),
                       eigvals=eigvals.astype(np.float32), eigvecs=eigvecs.astype(np.float32))
    cpu = StoreLoader(split, batch_size=4, train=True, seed=3, crop=28, workers=0)
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
