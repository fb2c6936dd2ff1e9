"""The CUDA launch path without a GPU: kernels are fetched once per (source, name, dtype), the
grid-stride loops and element totals are 64-bit, and 32-bit dimension arguments are checked."""
import re

import numpy as np
import pytest

import minitorch_alex_kernels.cuda as kc
from minitorch_alex_kernels.cuda import _launch


def test_kernels_are_cached_per_source_name_and_dtype(monkeypatch):
    fetched = []

    class Module:
        def get_function(self, name):
            fetched.append(name)
            return object()

    monkeypatch.setattr(kc, "module", lambda name: Module())
    monkeypatch.setattr(kc, "_kernels", {})
    a = kc.function("lrn", "lrn_forward", np.float32)
    assert kc.function("lrn", "lrn_forward", np.dtype("float32")) is a
    kc.function("lrn", "lrn_forward", np.float16)
    kc.function("lrn", "lrn_backward", np.float32)
    assert fetched == ["lrn_forward_f32", "lrn_forward_f16", "lrn_backward_f32"]


def test_grid_stride_loops_and_totals_are_64_bit():
    header = open(f"{kc.HERE}/common.cuh", encoding="utf-8").read()
    device_loop = header[header.index("#else"):header.index("#endif")]
    joined = re.sub(r"\\\n\s*", " ", device_loop)  # the macro's continuation lines, as the preprocessor joins them
    loop = re.search(r"#define GRID_LOOP\(i, n\)(.*)", joined).group(1)
    assert "long long i =" in loop and "i += (long long)blockDim.x * gridDim.x" in loop
    for name in kc.SOURCES:
        text = kc.source(name)
        assert not re.search(r"\bint (total|size)\b", text), f"{name}.cu keeps an element count in 32 bits"


def test_dimension_arguments_beyond_32_bits_are_refused_in_one_line():
    with pytest.raises(ValueError, match=r"^CUDA kernels take dimensions as 32-bit ints: expected 0 <= value <= "
                                         r"2147483647, got 2147483648 \(split the batch\)$"):
        _launch.i32(5, 2**31)
    assert _launch.blocks(2**40) == _launch.MAX_BLOCKS  # any total: the loop strides over the rest
