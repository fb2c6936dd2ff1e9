"""Mixed precision: 16-bit weights and activations for the forward and backward passes, float32
master weights for the update, and dynamic loss scaling (Micikevicius et al., "Mixed Precision
Training", 2018).

    import minitorch_alex as mt
    from minitorch_alex import amp

    model = mt.models.alexnet(devices="cuda:0")
    mp = amp.MixedPrecision(model, dtype="float16")     # model now float16; float32 masters kept
    opt = mt.optim.SGD(mp.parameters(), lr=0.01, momentum=0.9)   # the optimizer updates the masters
    for x, y in batches:
        loss = F.cross_entropy(mp.forward(x), y)          # float16 network, float32 logits and loss
        mp.backward(loss)                                 # (loss * scale).backward()
        mp.step(opt)                                      # unscale, skip if inf/NaN, update, copy back

Why each piece:

* **float32 master weights.** An update lr * grad is often below float16's resolution relative
  to the weight (2^-11): added to a float16 weight it would round away. The optimizer therefore
  updates float32 copies, and the model gets their float16 rounding after each step.
* **Loss scaling.** Small gradients underflow float16 (below 6e-8 they are 0). The loss is
  multiplied by ``scale`` before backward, so every gradient is too, and divided again (in
  float32) before the update. Too large a scale overflows to inf: then the step is *skipped*
  and the scale halved; after ``growth_interval`` good steps in a row it is doubled. bfloat16
  has float32's exponent range, so it needs no scaling (off by default for it).
* **float32 loss.** ``forward`` casts the logits to float32, so softmax and cross-entropy (sums
  over classes, exp and log) run in float32.

Everything here is written against the array module of the tensors, so it runs (and is tested,
``tests/test_amp.py``) on the CPU with NumPy float16, and on a GPU with CuPy, where the 16-bit
ops run the CUDA kernels and cuBLAS's half-precision GEMMs (tensor cores).
"""
from __future__ import annotations

import numpy as np

from .autograd import no_grad
from .device import device_of_array, get_array_module
from .nn.module import Parameter, check_state_dict
from .tensor import Tensor

HALF_DTYPES = ("float16", "bfloat16")


def half_dtype(name) -> np.dtype:
    """np.dtype of 'float16' or 'bfloat16' (bfloat16 comes from the ml_dtypes package, which
    NumPy and CuPy both understand)."""
    name = np.dtype(name).name if not isinstance(name, str) else name
    if name == "float16":
        return np.dtype(np.float16)
    if name == "bfloat16":
        try:
            import ml_dtypes  # noqa: PLC0415 (optional)
        except ImportError as exc:
            raise RuntimeError("mixed precision with bfloat16 needs the ml_dtypes package (pip install ml_dtypes); "
                               "float16 needs nothing extra") from exc
        return np.dtype(ml_dtypes.bfloat16)
    raise ValueError(f"mixed precision dtype must be one of {HALF_DTYPES}, got {name!r}")


def all_finite(arrays) -> bool:
    """True when no array holds an inf or NaN. One device-to-host transfer per device, not one
    per array: each device combines its arrays' answers first, inside its own context (arrays
    of two GPUs are never stacked together)."""
    by_device = {}
    for a in arrays:
        if a is not None:
            by_device.setdefault(device_of_array(a), []).append(a)
    for device, group in by_device.items():
        with device.context():
            xp = get_array_module(group[0])
            if not bool(xp.stack([xp.isfinite(a).all() for a in group]).all()):
                return False
    return True


def check_supported(dtype, device) -> None:
    """Refuse bfloat16 on CUDA devices, with the reason: CuPy has bfloat16 only from 14.0 and
    only with ml_dtypes and NumPy >= 2.1.2, and this CUDA path has not run it on a GPU yet, so
    mixed precision on a GPU is float16 (README, "GPU")."""
    if np.dtype(dtype).name == "bfloat16" and getattr(device, "type", None) == "cuda":
        raise ValueError(f"mixed precision with bfloat16 is not supported on {device}: use dtype='float16' "
                         "(bfloat16 runs on cpu devices)")


class LossScaler:
    """Dynamic loss scale: halve on overflow (the step is skipped), double after
    ``growth_interval`` overflow-free steps in a row, never below ``min_scale``."""

    def __init__(self, init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000,
                 min_scale=1.0, enabled=True):
        if init_scale <= 0 or growth_factor < 1 or not 0 < backoff_factor < 1 or growth_interval < 1:
            raise ValueError("LossScaler: expected init_scale > 0, growth_factor >= 1, 0 < backoff_factor < 1, "
                             f"growth_interval >= 1; got {init_scale}, {growth_factor}, {backoff_factor}, {growth_interval}")
        self.scale = float(init_scale) if enabled else 1.0
        self.growth_factor, self.backoff_factor = float(growth_factor), float(backoff_factor)
        self.growth_interval, self.min_scale, self.enabled = int(growth_interval), float(min_scale), bool(enabled)
        self.good_steps = 0  # overflow-free steps since the last change of scale
        self.skipped = 0  # steps skipped so far

    def update(self, found_inf: bool) -> None:
        """Adjust the scale after a step that did (True) or did not overflow."""
        if found_inf:
            self.skipped += 1
            self.good_steps = 0
            if self.enabled:
                self.scale = max(self.scale * self.backoff_factor, self.min_scale)
            return
        self.good_steps += 1
        if self.enabled and self.good_steps >= self.growth_interval:
            self.scale *= self.growth_factor
            self.good_steps = 0

    def state_dict(self) -> dict:
        return {"scale": self.scale, "good_steps": self.good_steps, "skipped": self.skipped}

    def load_state_dict(self, state) -> None:
        self.scale, self.good_steps = float(state["scale"]), int(state["good_steps"])
        self.skipped = int(state.get("skipped", 0))


class MixedPrecision:
    """Runs ``model`` in 16 bits and keeps float32 master copies of its parameters.

    On construction the model's parameters are cast in place to ``dtype`` (float16 or bfloat16)
    and float32 copies of their *original* values are made: build the optimizer on
    ``mp.parameters()``. ``scaler``: a ``LossScaler`` (default: dynamic for float16, disabled for
    bfloat16).
    """

    def __init__(self, model, dtype="float16", scaler=None, master_dtype=np.float32):
        self.model, self.dtype, self.master_dtype = model, half_dtype(dtype), np.dtype(master_dtype)
        self.model_params = list(model.parameters())
        if not self.model_params:
            raise ValueError("MixedPrecision: the model has no parameters")
        self.master = []
        for p in self.model_params:
            check_supported(self.dtype, p.device)
            if p.dtype.kind != "f" or p.dtype.itemsize < 4:
                raise TypeError(f"MixedPrecision: expected a float32/float64 model, got a {p.dtype} parameter")
        for p in self.model_params:
            with p.device.context():  # the casts run (and allocate) on the parameter's device
                self.master.append(Parameter(p.data.astype(self.master_dtype), device=p.device))
                p.data = p.data.astype(self.dtype)
            p.grad = None
        self.scaler = scaler if scaler is not None else LossScaler(enabled=self.dtype == np.float16)

    def parameters(self):
        """The float32 master parameters, in the model's order: what the optimizer updates."""
        return iter(self.master)

    def forward(self, x, *args, **kwargs):
        """The model on ``x`` cast to the 16-bit dtype; the output comes back as float32."""
        x = x if isinstance(x, Tensor) else Tensor(x)
        return self.model(x.to(self.dtype), *args, **kwargs).to(self.master_dtype)

    __call__ = forward

    def backward(self, loss):
        """Backward from ``loss * scale`` (the gradients of the 16-bit parameters are scaled).

        A scale too large for float16 overflows to inf here by design (``step`` then skips the
        update and lowers the scale), so NumPy's overflow warnings are silenced for this call."""
        with np.errstate(over="ignore", invalid="ignore"):
            (loss * self.scaler.scale if self.scaler.scale != 1.0 else loss).backward()

    @no_grad()
    def unscale_grads(self) -> bool:
        """Set each master's gradient to its model parameter's gradient in float32, divided by
        the scale; returns True when every one is finite.

        On a GPU (float32 masters) each gradient is one fused kernel (cast, scale and the inf/NaN
        test: ``kernels.cuda.unscale``) setting a flag per device, and the flags are read once:
        for AlexNet's 16 parameters 16 launches and one read, where cast, multiply, isfinite and
        all were ~4 launches per parameter. Elsewhere NumPy's ops, then ``all_finite``."""
        inv = 1.0 / self.scaler.scale
        flags = {}  # device -> int32 flag on it, set by the fused kernel when a value is not finite
        host = []
        for m, p in zip(self.master, self.model_params):
            if p.grad is None:
                m.grad = None
                continue
            with p.device.context():
                if p.device.type == "cuda" and self.master_dtype == np.float32:
                    from minitorch_alex_kernels.cuda import unscale  # noqa: PLC0415 (the CUDA path only)

                    flag = flags.get(p.device)
                    if flag is None:
                        flag = flags[p.device] = p.xp.zeros(1, np.int32)
                    g = unscale(p.grad.data, inv, flag)
                else:
                    g = p.grad.data.astype(self.master_dtype)
                    if inv != 1.0:
                        with np.errstate(invalid="ignore"):  # inf * inv stays inf; NaN stays NaN
                            g *= self.master_dtype.type(inv)
                    host.append(g)
            m.grad = Tensor._wrap(g, m.device)
        for device, flag in flags.items():
            with device.context():
                if int(flag[0]):  # the one read of this device
                    return False
        return all_finite(host)

    @no_grad()
    def step(self, optimizer) -> bool:
        """Unscale, then either update the masters and copy them into the model (returns True)
        or, if a gradient overflowed, skip the update (returns False); the scale is adjusted
        either way, and every gradient cleared."""
        finite = self.unscale_grads()
        self.scaler.update(not finite)
        if finite:
            optimizer.step()
            self.copy_master_to_model()
        for p in self.model_params + self.master:
            p.grad = None
        return finite

    @no_grad()
    def copy_master_to_model(self):
        for m, p in zip(self.master, self.model_params):
            with p.device.context():
                p.data = m.data.astype(self.dtype)

    def master_state_dict(self):
        """The model's state dict with the float32 master values (what a checkpoint should keep)."""
        names = [name for name, _ in self.model.named_parameters()]
        return {name: m.data for name, m in zip(names, self.master)}

    # A checkpoint of a mixed-precision run holds the float32 masters under the model's names, so
    # it loads into a float32 model as it is, and back into a MixedPrecision wrapper.
    state_dict = master_state_dict

    @no_grad()
    def load_state_dict(self, state):
        """Load float32 (or float64) values into the masters and their 16-bit copies into the model."""
        names = [name for name, _ in self.model.named_parameters()]
        check_state_dict("MixedPrecision", {name: m.shape for name, m in zip(names, self.master)}, state)
        for name, m in zip(names, self.master):
            value = state[name]
            with m.device.context():
                m.data = get_array_module(m.data).asarray(value, dtype=self.master_dtype)
        self.copy_master_to_model()
