"""The settings of minitorch_alex, in one object: ``mt.config``.

    import minitorch_alex as mt

    mt.config.backend                        # 'auto' unless MINITORCH_ALEX_BACKEND says otherwise
    with mt.config.using(backend="reference"):   # this thread, this block only (like no_grad)
        ...
    mt.config.set(tf32=True)                 # the process-wide default, for every thread

Fields:

* ``backend``: which implementation runs the hot ops (``minitorch_alex.dispatch``):
  'auto' (numba kernels for NumPy float32/float64 arrays, CUDA kernels for CuPy
  float16/bfloat16/float32/float64 arrays, the reference otherwise), 'reference' (the readable
  code of ``minitorch_alex/ops``, everywhere), 'numba' or 'cuda' (that backend for the arrays it
  takes, the reference for the others).
* ``tf32``: float32 GEMMs of the CUDA kernels may use TF32 tensor cores (inputs rounded to a
  10-bit mantissa, float32 accumulation; GPUs of compute capability >= 8.0). Off by default, as
  in PyTorch since 1.12. CPU results never change.
* ``retain_freed_memory``: training runs keep freed memory in the process instead of handing it
  back to the OS after every step (``kernels/cpu/memory.py`` says why). glibc's malloc settings
  are process-wide by nature, so this field has no per-thread value: ``set`` applies it at once,
  and ``Trainer.fit`` and ``benchmarks/bench_cpu.py`` call ``apply_retain_freed_memory()``.
  Nothing is applied at import.

Environment variables give the start values only: MINITORCH_ALEX_BACKEND
(auto|reference|numba|cuda; 'fast', the old name of 'auto', is accepted), MINITORCH_ALEX_TF32
(0|1) and MINITORCH_ALEX_RETAIN_MEMORY (0|1, default 1).

``using`` overrides are per thread: a thread started inside a ``using`` block sees the
process-wide values, as with ``no_grad``.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import threading
import warnings

BACKENDS = ("auto", "reference", "numba", "cuda")
_ENV = {"backend": "MINITORCH_ALEX_BACKEND", "tf32": "MINITORCH_ALEX_TF32",
        "retain_freed_memory": "MINITORCH_ALEX_RETAIN_MEMORY"}
_PROCESS_ONLY = ("retain_freed_memory",)


_numba_available = None


def numba_available() -> bool:
    """True when numba and the kernels (``minitorch_alex_kernels``) can be imported (checked once, without
    importing numba, which takes a while)."""
    global _numba_available
    if _numba_available is None:
        _numba_available = all(importlib.util.find_spec(m) is not None for m in ("numba", "minitorch_alex_kernels"))
    return _numba_available


def _check(name, value):
    if name == "backend":
        if value not in BACKENDS:
            raise ValueError(f"unknown backend {value!r}: expected one of {BACKENDS}")
        if value == "numba" and not numba_available():
            raise RuntimeError("the 'numba' backend needs numba and the kernels package (pip install -e . installs both)")
        return value
    if name in ("tf32", "retain_freed_memory"):
        if not isinstance(value, bool):
            raise TypeError(f"mt.config: {name} must be True or False, got {value!r}")
        return value
    raise AttributeError(f"mt.config has no setting {name!r}: expected one of {tuple(_ENV)}")


class EnvironmentSettingError(ValueError):
    """A MINITORCH_ALEX_* environment variable holds a value it cannot take (raised at import;
    the example scripts turn it into one line, ``error: ...``, and exit status 2)."""


def _flag(name, default):
    var = _ENV[name]
    text = os.environ.get(var, "").strip()
    if not text:
        return default
    if text not in ("0", "1"):
        raise EnvironmentSettingError(f"{var}={text!r}: expected 0 or 1")
    return text == "1"


def _start_backend():
    var = _ENV["backend"]
    name = os.environ.get(var, "").strip().lower() or "auto"
    name = "auto" if name == "fast" else name
    if name not in BACKENDS:
        raise EnvironmentSettingError(f"{var}={name!r}: expected one of {BACKENDS}")
    if name == "numba" and not numba_available():
        warnings.warn(f"{var}=numba but numba is not installed; using 'auto'", stacklevel=2)
        return "auto"
    return name


class _Overrides(threading.local):
    values = None  # this thread's ``using`` overrides (a dict), None outside any ``using`` block


def _setting(name, doc):
    def get(self):  # read on every hot op call: kept to two lookups
        overrides = self._local.values
        if overrides is not None and name in overrides:
            return overrides[name]
        return self._defaults[name]

    return property(get, doc=doc)


class Config:
    """The settings object (``mt.config``); see the module docstring."""

    backend = _setting("backend", "'auto', 'reference', 'numba' or 'cuda': which implementation runs the hot ops")
    tf32 = _setting("tf32", "float32 GEMMs of the CUDA kernels on TF32 tensor cores")
    retain_freed_memory = _setting("retain_freed_memory", "training runs keep freed memory (process-wide)")

    def __init__(self):
        values = {"backend": _start_backend(), "tf32": _flag("tf32", False),
                  "retain_freed_memory": _flag("retain_freed_memory", True)}
        object.__setattr__(self, "_defaults", values)
        object.__setattr__(self, "_local", _Overrides())
        object.__setattr__(self, "_lock", threading.Lock())

    def __getattr__(self, name):  # only called for names that are neither settings nor methods
        raise AttributeError(f"mt.config has no setting {name!r}: expected one of {tuple(_ENV)}")

    def __setattr__(self, name, value):
        raise AttributeError(f"mt.config.{name} is read-only: use mt.config.set({name}=...) for the process "
                             f"or `with mt.config.using({name}=...)` for a block")

    def as_dict(self) -> dict:
        """The values this thread sees now."""
        return {name: getattr(self, name) for name in _ENV}

    def set(self, **values) -> dict:
        """Change the process-wide values (every thread without a ``using`` override); returns the
        previous ones, so ``mt.config.set(**previous)`` undoes it."""
        checked = {name: _check(name, value) for name, value in values.items()}
        with self._lock:
            previous = {name: self._defaults[name] for name in checked}
            self._defaults.update(checked)
        if "retain_freed_memory" in checked:
            _apply_malloc(checked["retain_freed_memory"])
        return previous

    @contextlib.contextmanager
    def using(self, **values):
        """Override settings for a block in this thread; restored on exit, even after an exception."""
        for name in values:
            if name in _PROCESS_ONLY:
                raise ValueError(f"mt.config.using: {name} is process-wide (malloc's settings); "
                                 f"use mt.config.set({name}=...)")
        checked = {name: _check(name, value) for name, value in values.items()}
        previous = self._local.values
        self._local.values = {**(previous or {}), **checked}
        try:
            yield self
        finally:
            self._local.values = previous

    def apply_retain_freed_memory(self) -> bool:
        """Apply ``retain_freed_memory`` to malloc now (training entry points call this); True
        when freed memory is being kept."""
        return _apply_malloc(self.retain_freed_memory)

    def __repr__(self):
        return "mt.config(" + ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items()) + ")"


def _apply_malloc(enabled):
    try:
        from minitorch_alex_kernels.cpu.memory import retain_freed_memory
    except ImportError:  # no kernels package: malloc is left as it is
        return False
    return retain_freed_memory(enabled)


config = Config()
