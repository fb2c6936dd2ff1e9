"""Every CUDA source compiles with NVRTC, through CuPy, exactly as ``cupy.RawModule`` builds it
(``kernels.cuda.module``), for sm_80 (A100) and sm_90 (H100/H200), and the binary defines every
kernel the wrappers launch. No GPU and no nvcc are needed: CuPy and the NVRTC and CUDA-runtime
wheels (headers) install and compile on any Linux machine (``pip install -e ".[nvrtc]"``).
Skipped, with the reason, where those wheels are absent.

The options are CuPy 14's own: ``assemble_cupy_compiler_options`` (bundled CCCL first, CuPy's
and the CUDA wheel's include directories, the C++ standard), then what
``_compile_with_cache_cuda`` and ``_compile_using_nvrtc_no_warning`` add (``-ftz=true``, the
architecture as ``-arch=sm_XX`` so NVRTC emits a cubin, ``--device-as-default-execution-space``).
The loader's RawModule passes no name expressions (the entry points are ``extern "C"``).
"""
import re

import pytest

import minitorch_alex_kernels.cuda as kc

ARCHS = ("80", "90")
cupy = pytest.importorskip("cupy", reason="CuPy is not installed (pip install -e \".[nvrtc]\")")


def _nvrtc():
    from cupy._core import core
    from cupy.cuda import compiler

    try:
        version = compiler._get_nvrtc_version()
        base = core.assemble_cupy_compiler_options(tuple(kc.OPTIONS))
    except Exception as exc:  # the NVRTC library or the CUDA headers are missing
        pytest.skip(f"NVRTC is not usable here: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    return compiler, version, base


@pytest.fixture(scope="module")
def cubins():
    compiler, version, base = _nvrtc()
    extra = ("-ftz=true",)
    pch = ("--pch",) if getattr(compiler, "_use_pch", False) and version >= (12, 8) else ()
    out = {}
    for name in kc.SOURCES:
        for arch in ARCHS:
            options = base + extra + (f"-arch=sm_{arch}", "--device-as-default-execution-space") + pch
            prog = compiler._NVRTCProgram(kc.source(name), "", (), (), name_expressions=None, method="cubin")
            binary, _mapping = prog.compile(options)
            out[name, arch] = binary
    return out


def launched_kernels():
    """(source, kernel) of every ``function("<source>", "<kernel>", dtype)`` call in the wrappers."""
    import glob
    import os

    found = set()
    for path in glob.glob(os.path.join(kc.HERE, "*.py")):
        with open(path, encoding="utf-8") as f:
            found |= set(re.findall(r'function\("(\w+)", "(\w+)"', f.read()))
    return found


def test_every_source_compiles_for_sm80_and_sm90(cubins):
    assert set(cubins) == {(n, a) for n in kc.SOURCES for a in ARCHS}
    assert all(isinstance(b, bytes) and b[:4] == b"\x7fELF" for b in cubins.values())  # cubins are ELF files


def test_every_kernel_the_wrappers_launch_is_in_every_binary(cubins):
    launched = launched_kernels()
    assert {s for s, _ in launched} == set(kc.SOURCES)
    for (name, arch), binary in cubins.items():
        defined = kc.kernel_names(name)
        for source, kernel in launched:
            if source != name:
                continue
            suffixes = ("f32", "f64") if name == "sgd" else tuple(kc.SUFFIX.values())
            for s in suffixes:
                assert f"{kernel}_{s}" in defined
                assert f"{kernel}_{s}".encode() + b"\0" in binary, f"{kernel}_{s} missing from {name}.cu for sm_{arch}"
