"""The global random generator (NumPy's ``Generator``), seeded with ``mt.manual_seed``.

Random numbers are drawn on the host and copied to the tensor's device, so a seed gives the
same numbers on every device. Dropout masks cross as bool (1 byte an element, not the 8 of the
float64 draws), from pinned host memory and asynchronously on the device's current stream.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np

from .device import CPU, place, transfer, upload_async

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the global generator (weights init, dropout masks); returns it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def default_generator() -> np.random.Generator:
    return _generator


def get_state() -> dict:
    """The global generator's state (JSON-serialisable), for checkpoints."""
    return _generator.bit_generator.state


def set_state(state: dict) -> None:
    """Restore a state from ``get_state`` so that a resumed run draws the same numbers."""
    global _generator
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    _generator = np.random.Generator(bit_generator)


@contextlib.contextmanager
def use_generator(generator: np.random.Generator):
    """Make ``generator`` the global one for a block, then put the previous one back (a training
    run draws from its own generator and leaves the caller's alone)."""
    global _generator
    previous, _generator = _generator, generator
    try:
        yield generator
    finally:
        _generator = previous


_batch_rows = None  # (start, stop, total) inside ``batch_rows``


@contextlib.contextmanager
def batch_rows(start: int, stop: int, total: int):
    """Inside this block, a batch of ``stop - start`` rows is rows ``start:stop`` of a batch of
    ``total`` (a data-parallel rank's share of the global batch): per-sample draws (dropout's
    keep-masks) are made for all ``total`` rows and only these rows are kept. Every rank then
    draws the same numbers, so its generator stays in step with the others' and with a single
    process's, and sample i gets the same mask on any number of ranks."""
    global _batch_rows
    if not 0 <= start <= stop <= total:
        raise ValueError(f"batch_rows: need 0 <= start <= stop <= total, got {start}, {stop}, {total}")
    previous, _batch_rows = _batch_rows, (start, stop, total)
    try:
        yield
    finally:
        _batch_rows = previous


def _on_device(array, device):
    return place(array, device) if device.type == "cpu" else transfer(array, CPU, device)


def keep_mask(shape, p, device=CPU, generator=None):
    """Dropout's bool keep-mask of ``shape`` on ``device``: True with probability 1 - p. The same
    draws as ``uniform(shape) >= p`` on every device (one seed, one mask), compared on the host;
    a GPU gets the bool mask through pinned memory, without blocking the host."""
    shape = tuple(shape)
    rows = _batch_rows
    if rows is not None and shape and shape[0] == rows[1] - rows[0] != rows[2]:
        keep = (generator or _generator).random((rows[2],) + shape[1:])[rows[0]:rows[1]] >= p
    else:
        keep = (generator or _generator).random(shape) >= p
    return place(keep, device) if device.type == "cpu" else upload_async(keep, device)


def uniform(shape, device=CPU, generator=None):
    """float64 samples of U[0, 1) of ``shape`` on ``device``."""
    return _on_device((generator or _generator).random(shape), device)


def normal(shape, mean=0.0, std=1.0, dtype=np.float32, device=CPU, generator=None, out=None):
    """N(mean, std^2) samples of ``shape`` as ``dtype`` on ``device``: the float64 draws of
    ``generator.normal(mean, std, size=shape)`` cast, without a float64 copy of the whole array."""
    generator = generator or _generator
    return _on_device(_drawn(shape, dtype, lambda n: generator.normal(mean, std, size=n), out), device)


def uniform_between(shape, low, high, dtype=np.float32, device=CPU, generator=None, out=None):
    """``low + (high - low) * u`` for float64 ``u`` of ``uniform(shape)``, cast to ``dtype``, without
    a float64 copy of the whole array."""
    generator = generator or _generator
    return _on_device(_drawn(shape, dtype, lambda n: low + (high - low) * generator.random(n), out), device)



def truncated_normal(shape, mean, std, a, b, dtype=np.float32, device=CPU, generator=None):
    """N(mean, std^2) samples restricted to [a, b]: values outside are drawn again until every one
    lies inside, which samples the truncated normal exactly. Each round keeps at least
    P(a <= X <= b) of the rest (95% for the bounds mean -+ 2 std), so a few rounds suffice."""
    if not a < b:
        raise ValueError(f"truncated normal: expected a < b, got a={a}, b={b}")
    if not std > 0:
        raise ValueError(f"truncated normal: expected std > 0, got {std}")
    inside = 0.5 * (math.erf((b - mean) / (std * math.sqrt(2))) - math.erf((a - mean) / (std * math.sqrt(2))))
    if inside < 1e-3:  # rejection would need > 1000 draws a value
        raise ValueError(f"truncated normal: expected [a, b] to hold at least 0.1% of N(mean, std^2), "
                         f"got {inside:.2g} for a={a}, b={b}, mean={mean}, std={std}")
    generator = generator or _generator
    values = generator.normal(mean, std, size=shape)
    outside = (values < a) | (values > b)
    while outside.any():
        values[outside] = generator.normal(mean, std, size=int(outside.sum()))
        outside = (values < a) | (values > b)
    return _on_device(values.astype(dtype), device)

_CHUNK = 1 << 20  # values per float64 draw: 8 MB of temporaries, whatever the array's size


def _drawn(shape, dtype, draw, out=None):
    """An array of ``shape`` and ``dtype`` filled in C order by ``draw(n)`` (n float64 values) in
    consecutive chunks, each cast as it lands. A Generator's stream does not depend on how it is
    cut up (``tests/test_memory.py`` pins this), so the values are those of one draw of the whole and
    one ``astype``; only the peak differs: fc6's float64 draws alone would be 302 MB."""
    want = (shape,) if isinstance(shape, int) else tuple(shape)
    fits = (isinstance(out, np.ndarray) and out.shape == want and out.dtype == dtype
            and out.flags.c_contiguous and out.flags.writeable)
    out = out if fits else np.empty(shape, dtype)  # ``out``: filled in place when it is such an array
    flat = out.reshape(-1)
    for start in range(0, flat.size, _CHUNK):
        flat[start:start + _CHUNK] = draw(min(_CHUNK, flat.size - start))
    return out
