"""Holding the tests' fakes of CuPy to the installed CuPy's real call signatures.

A fake written from memory of an older CuPy keeps the suite green while the real call crashes
(the NCCL unique id: a tuple of ints before CuPy 14, ``bytes`` since). So every fake CuPy in the
tests is walked here against the real module: each public callable of the fake must exist at the
same path in CuPy, take parameters CuPy takes (same names, same order, same kind), and require
every parameter CuPy requires. The CPU-only wheel imports without a GPU; CuPy's Cython functions
carry their signatures in the first line of their docstrings (``embedsignature``), which is
parsed here where ``inspect.signature`` has none.

    problems = fake_vs_real(fake_cupy, cupy, bookkeeping={"log"})   # [] when the fake follows CuPy
"""
from __future__ import annotations

import ast
import inspect
import types


class OneDevice:
    """``cupy.cuda.Device(device=None)`` (cupy/cuda/device.pyx) for fakes of a single GPU on host
    memory: a context manager that changes nothing."""

    def __init__(self, device=None):
        self.id = 0 if device is None else device

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class _Expression(str):
    """A default the docstring gives as a name (``dtype=float``): a default, its value unknown here."""


def _split_top_level(text: str) -> list[str]:
    """``"int a, tuple b=(1, 2)"`` -> ``["int a", "tuple b=(1, 2)"]``: commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _docstring_signature(obj) -> inspect.Signature | None:
    """The signature Cython embeds as the docstring's first line, e.g.
    ``memcpyPeerAsync(intptr_t dst, int dstDevice, ...)`` or ``Device(device=None)``; C types dropped."""
    doc = (getattr(obj, "__doc__", None) or "").lstrip()
    name = getattr(obj, "__name__", None)
    start = doc.find("(")
    if start < 0 or (name and name not in doc[:start] and "__init__" not in doc[:start]):
        return None
    depth, end = 0, None
    for i in range(start, len(doc)):
        depth += doc[i] == "("
        depth -= doc[i] == ")"
        if depth == 0:
            end = i
            break
    if end is None:
        return None
    params, kind = [], inspect.Parameter.POSITIONAL_OR_KEYWORD
    for part in _split_top_level(doc[start + 1:end].replace("\n", " ")):
        if part == "*":
            kind = inspect.Parameter.KEYWORD_ONLY
            continue
        if part == "/":
            params = [p.replace(kind=inspect.Parameter.POSITIONAL_ONLY) for p in params]
            continue
        left, eq, default_text = part.partition("=")
        pname = left.split()[-1].replace("\\", "")  # Sphinx-escaped \\*args
        this_kind = kind
        if pname.startswith("**"):
            pname, this_kind = pname[2:], inspect.Parameter.VAR_KEYWORD
        elif pname.startswith("*"):
            pname, this_kind = pname[1:], inspect.Parameter.VAR_POSITIONAL
            kind = inspect.Parameter.KEYWORD_ONLY  # what follows *args is keyword-only
        default = inspect.Parameter.empty
        if eq:
            try:
                default = ast.literal_eval(default_text.strip())
            except (ValueError, SyntaxError):  # e.g. dtype=float, allocator=_malloc: not compared
                default = _Expression(default_text.strip())
        params.append(inspect.Parameter(pname, this_kind, default=default))
    return inspect.Signature(params)


def real_signature(obj) -> inspect.Signature | None:
    """``inspect.signature``, else the docstring's (CuPy's Cython builtins), else None. Where
    ``inspect`` sees only ``*args`` (``cupy.ndarray``), the docstring's, if it has one, is the truth."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return _docstring_signature(obj)
    if any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in sig.parameters.values()):
        return _docstring_signature(obj) or sig
    return sig


def _drop_self(sig: inspect.Signature, is_method: bool) -> list[inspect.Parameter]:
    params = list(sig.parameters.values())
    if is_method and params and params[0].name == "self":
        params = params[1:]
    return params


def compare_signatures(fake_sig: inspect.Signature, real_sig: inspect.Signature, is_method=False) -> str | None:
    """None if a call the fake accepts is one CuPy accepts with the same meaning, else why not."""
    fake = _drop_self(fake_sig, is_method)
    real = _drop_self(real_sig, is_method)
    if any(p.kind in _VARIADIC for p in fake) and len(fake) == sum(p.kind in _VARIADIC for p in fake):
        return None  # (*args, **kwargs): a fake that forbids or records any call
    real_by_name = {p.name: p for p in real}
    real_positional = [p.name for p in real if p.kind in _POSITIONAL]
    fake_positional = [p.name for p in fake if p.kind in _POSITIONAL]
    real_star_args = any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in real)  # e.g. cupy.matmul(*args, out=None)
    if not real_star_args and fake_positional != real_positional[:len(fake_positional)]:
        return f"positional parameters {fake_positional}, CuPy's are {real_positional}"
    for p in fake:
        if p.kind in _VARIADIC or (real_star_args and p.kind in _POSITIONAL):
            continue
        if p.name not in real_by_name and not any(r.kind == inspect.Parameter.VAR_KEYWORD for r in real):
            return f"parameter {p.name!r} that CuPy does not take (CuPy: {real_sig})"
    fake_names = {p.name for p in fake}
    fake_varargs = any(p.kind in _VARIADIC for p in fake)
    for r in real:
        required = r.default is inspect.Parameter.empty and r.kind not in _VARIADIC
        if required and r.name not in fake_names and not fake_varargs:
            return f"no parameter {r.name!r}, which CuPy requires (CuPy: {real_sig})"
        if r.name in fake_names and r.default is not inspect.Parameter.empty:
            given = fake_sig.parameters[r.name].default
            if given is not inspect.Parameter.empty and not isinstance(r.default, _Expression) and given != r.default:
                return f"default {r.name}={given!r}, CuPy's is {r.default!r}"
    return None


def _members(obj):
    """The public attributes of a fake: a namespace's or module's values, a class's own dict."""
    if isinstance(obj, type):
        items = {}
        for klass in reversed(obj.__mro__[:-1]):
            if klass.__module__.split(".")[0] not in ("numpy", "builtins"):  # the fake's own, not what it extends
                items.update(vars(klass))
        return {k: v for k, v in items.items() if not k.startswith("_")}
    if isinstance(obj, (types.SimpleNamespace, types.ModuleType)):
        return {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    return {}


def fake_vs_real(fake, real, bookkeeping=(), path="cupy") -> list[str]:
    """Every difference between ``fake`` (a namespace, class or module standing in for ``real``)
    and ``real``, recursively; ``bookkeeping`` names the fake's own attributes (logs, counters)."""
    problems = []
    for name, value in sorted(_members(fake).items()):
        where = f"{path}.{name}"
        if name in bookkeeping:
            continue
        if not hasattr(real, name):
            problems.append(f"{where}: CuPy has no such attribute")
            continue
        real_value = getattr(real, name)
        if isinstance(value, (types.SimpleNamespace, types.ModuleType)):
            problems += fake_vs_real(value, real_value, bookkeeping, where)
            continue
        if not callable(value) or isinstance(value, (staticmethod, classmethod)):
            if isinstance(value, (int, str)) and isinstance(real_value, (int, str)) and value != real_value:
                problems.append(f"{where}: the fake's value {value!r}, CuPy's is {real_value!r}")
            continue  # a data attribute: present (and a constant: equal) is what matters
        is_method = isinstance(fake, type) and inspect.isfunction(value)
        real_sig = real_signature(real_value)
        if real_sig is None:
            problems.append(f"{where}: CuPy's signature could not be read")
            continue
        init = value.__init__ if isinstance(value, type) else value
        try:
            fake_sig = inspect.signature(init)
        except (TypeError, ValueError):
            continue
        is_fake_method = is_method or (isinstance(value, type) and init is not object.__init__)
        if isinstance(value, type) and init is object.__init__:
            fake_sig = inspect.Signature([])
        why = compare_signatures(fake_sig, real_sig, is_method=is_fake_method)
        if why:
            problems.append(f"{where}: the fake has {why}")
        if isinstance(value, type):
            problems += fake_vs_real(value, real_value, bookkeeping, where)
    return problems


def installed_cupy():
    """The installed CuPy, which a fake is held to (the dev extra brings the CPU-usable
    cupy-cuda13x wheel), or the test is skipped saying so."""
    import pytest

    return pytest.importorskip("cupy", reason="the dev extra installs cupy-cuda13x (pip install -e '.[dev]')")
