"""The checker that holds the suite's fake CuPys to the installed CuPy, and the NCCL fakes
(tests/fake_nccl.py) held to it; each other fake is held to CuPy beside its own tests
(test_gpu_streams, test_gpu_bench, test_cuda_unavailable, test_cuda_gemm, test_gpu_augment).
Every fake CuPy in the suite is held to the installed CuPy (the dev extra brings the CPU-usable
cupy-cuda13x wheel and libnccl): the same paths, parameter names, order and kinds, every
parameter CuPy requires, the same constants, and the types that need no GPU to produce (the
NCCL unique id). When CuPy changes a call we fake, a test here fails on the CPU. The checker's
own tests come first: it must catch the drifts it exists for."""
import inspect
import types

import cupy_api
import fake_nccl
import pytest

cupy = pytest.importorskip("cupy", reason="the dev extra installs cupy-cuda13x (pip install -e '.[dev]')")


def _nccl():
    nccl = fake_nccl.real_nccl()
    if nccl is None:
        pytest.fail("cupy.cuda.nccl does not load: the dev extra installs nvidia-nccl-cu13")
    return nccl


# -- the checker catches what it is for -----------------------------------------------------------

def test_the_checker_reads_cythons_embedded_signatures():
    sig = cupy_api.real_signature(cupy.cuda.runtime.memcpyPeerAsync)
    assert list(sig.parameters) == ["dst", "dstDevice", "src", "srcDevice", "size", "stream"]
    sig = cupy_api.real_signature(cupy.RawModule)
    assert sig.parameters["path"].kind is inspect.Parameter.KEYWORD_ONLY
    assert sig.parameters["backend"].default == "nvrtc" and sig.parameters["options"].default == ()
    assert list(cupy_api.real_signature(cupy.ndarray).parameters)[:2] == ["shape", "dtype"]


@pytest.mark.parametrize("fake, why", [
    (lambda dst, dst_dev, src, src_dev, n, stream: None, "positional parameters"),   # other names
    (lambda dst, dstDevice, src, srcDevice, size: None, "requires"),                  # one missing
    (lambda dst, dstDevice, src, srcDevice, size, stream, extra: None, "positional parameters"),
])
def test_the_checker_catches_a_drifted_memcpy(fake, why):
    runtime = types.SimpleNamespace(memcpyPeerAsync=fake)
    problems = cupy_api.fake_vs_real(types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime)), cupy)
    assert len(problems) == 1 and why in problems[0] and "cupy.cuda.runtime.memcpyPeerAsync" in problems[0]


def test_the_checker_catches_wrong_paths_defaults_and_constants():
    class Stream:  # positional non_blocking: Stream(True) would be Stream(null=True) in CuPy
        def __init__(self, non_blocking=False):
            pass

    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(
        Stream=Stream, RawModule=object, Event=lambda *, disable_timing=True: None))
    problems = cupy_api.fake_vs_real(fake, cupy)
    assert any("cupy.cuda.Stream" in p and "positional" in p for p in problems)
    assert any("cupy.cuda.RawModule: CuPy has no such attribute" in p for p in problems)  # it is cupy.RawModule
    assert any("default disable_timing=True" in p for p in problems)
    nccl = _nccl()
    assert cupy_api.fake_vs_real(type("N", (), {"NCCL_SUM": 1}), nccl, path="nccl") == [
        "nccl.NCCL_SUM: the fake's value 1, CuPy's is 0"]


# -- the suite's fakes ----------------------------------------------------------------------------

def test_the_nccl_fake_follows_cupy_14():
    nccl = _nccl()
    fake = fake_nccl
    assert cupy_api.fake_vs_real(fake.FakeNccl, nccl, bookkeeping={"group", "log"}, path="nccl") == []
    assert cupy_api.fake_vs_real(fake.FakeNcclCommunicator, nccl.NcclCommunicator, path="NcclCommunicator") == []
    # what needs no GPU is compared for real: the id's type and length, and what the constructor takes
    real_id, fake_id = nccl.get_unique_id(), fake.FakeNccl(None, None).get_unique_id()
    assert (type(fake_id), len(fake_id)) == (type(real_id), len(real_id)) == (bytes, 128)
    for bad in (tuple(real_id), bytes(127)):
        with pytest.raises((TypeError, ValueError)) as real_error:
            nccl.NcclCommunicator(1, bad, 0)
        with pytest.raises(real_error.type):
            fake.FakeNcclCommunicator({"uids": [None]}, [], 1, bad, 0)


def test_the_nccl_tests_cupy_fake_follows_cupy():
    fake = fake_nccl.fake_cupy([])
    assert cupy_api.fake_vs_real(fake, cupy, bookkeeping={"devices"}) == []
    assert cupy_api.fake_vs_real(fake_nccl.FakeStream, cupy.cuda.Stream, {"log", "name"}, "Stream") == []
    assert cupy_api.fake_vs_real(fake_nccl.FakeEvent, cupy.cuda.Event, {"log"}, "Event") == []


