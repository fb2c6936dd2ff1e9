"""What every optimizer shares: parameter groups and per-parameter state, as PyTorch's
``torch.optim.Optimizer``.

``param_groups`` is a list of dicts, each with its ``params`` and its own hyper-parameters
(``lr``, ...; those a group does not give come from the optimizer's defaults)::

    opt = mt.optim.AdamW([{"params": body.parameters()},
                          {"params": head.parameters(), "lr": 1e-3, "weight_decay": 0.0}], lr=1e-4)
    opt.add_param_group({"params": new_layer.parameters()})

``state_dict()`` holds numbers and arrays only (no pickle): ``{"param_groups": [...hyper-parameters,
"params": [indices]...], "state": {name: [array or None per parameter]}}``, which ``mt.save`` writes.
"""
from __future__ import annotations

from ..autograd import no_grad
from ..tensor import Tensor

# what the schedules (lr_scheduler.py) keep in a group beside its hyper-parameters, as PyTorch's do
SCHEDULE_KEYS = {"initial_lr", "max_lr", "min_lr"}


class Optimizer:
    """Subclasses set ``state_names`` (per-parameter arrays, e.g. ("exp_avg", "exp_avg_sq")), check
    a group's hyper-parameters in ``check_group`` and update one parameter in ``update``."""

    state_names: tuple = ()

    def __init__(self, params, defaults):
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{name}: expected an iterable of parameters or of dicts, got one Tensor")
        params = list(params)
        if not params:
            raise ValueError(f"{name}: got an empty parameter list")
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}  # parameter -> {state name: array}, filled on its first update
        for group in params if isinstance(params[0], dict) else [{"params": params}]:
            self.add_param_group(group)

    @property
    def params(self):
        """Every parameter, group after group (the order of ``state_dict``'s indices)."""
        return [p for group in self.param_groups for p in group["params"]]

    def add_param_group(self, group):
        """Add ``group`` (a dict with ``params`` and any hyper-parameters to override)."""
        name = type(self).__name__
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{name}.add_param_group: expected a dict with 'params', got {type(group).__name__}")
        unknown = sorted(set(group) - set(self.defaults) - {"params"} - SCHEDULE_KEYS)
        if unknown:
            raise ValueError(f"{name}: unknown hyper-parameters {unknown}; expected some of {sorted(self.defaults)}")
        params = [group["params"]] if isinstance(group["params"], Tensor) else list(group["params"])
        if not params:
            raise ValueError(f"{name}.add_param_group: got a group without parameters")
        seen = {id(p) for p in self.params}
        if any(id(p) in seen for p in params) or len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: a parameter appears in more than one group (or twice in one)")
        group = {**self.defaults, **group, "params": params}
        self.check_group(group)
        self.param_groups.append(group)

    def check_group(self, group):  # pragma: no cover - overridden
        pass

    def zero_grad(self, set_to_none=True):
        """Drop every gradient (``set_to_none``, the default) or fill it with zeros."""
        for p in self.params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                with p.device.context():
                    p.grad.data[...] = 0

    @no_grad()
    def step(self):
        """Update every parameter that has a gradient."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                with p.device.context():  # the state and the update live on the parameter's device
                    state = self.state.get(p)
                    if state is None:
                        state = self.state[p] = self.init_state(p)
                    self.update(p, p.grad.data, state, group)

    def init_state(self, p):
        return {name: p.xp.zeros_like(p.data) for name in self.state_names}

    def update(self, p, g, state, group):  # pragma: no cover - overridden
        raise NotImplementedError

    # ----- saving ----------------------------------------------------------------------------------
    def state_dict(self):
        """Hyper-parameters per group (numbers) and per-parameter state (arrays; None where a
        parameter has no state yet). Parameters are named by their index in ``params``."""
        groups, start = [], 0
        for group in self.param_groups:
            count = len(group["params"])
            groups.append({**{k: v for k, v in group.items() if k != "params"},
                           "params": list(range(start, start + count))})
            start += count
        params = self.params
        names = self.state_names + self.extra_state_names()
        return {"param_groups": groups,
                "state": {name: [self.state.get(p, {}).get(name) for p in params] for name in names}}

    def extra_state_names(self):
        """Per-parameter state beyond arrays of the parameter's shape (e.g. Adam's step count)."""
        return ()

    def load_state_dict(self, state_dict):
        """Restore ``state_dict()``'s output; the groups must hold as many parameters as before,
        each state array the shape of its parameter."""
        name = type(self).__name__
        groups = state_dict["param_groups"]
        if [len(g["params"]) for g in groups] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError(f"{name}.load_state_dict: expected groups of {[len(g['params']) for g in self.param_groups]} "
                             f"parameters, got {[len(g['params']) for g in groups]}")
        params = self.params
        state = {}
        for key, values in state_dict["state"].items():
            if key not in self.state_names + self.extra_state_names():
                raise ValueError(f"{name}.load_state_dict: unknown state {key!r}")
            if len(values) != len(params):
                raise ValueError(f"{name}.load_state_dict: expected {len(params)} entries of {key!r}, got {len(values)}")
            for i, (value, p) in enumerate(zip(values, params)):
                if value is None:
                    continue
                if key in self.state_names and tuple(value.shape) != p.shape:
                    raise ValueError(f"{name}.load_state_dict: {key} {i} has shape {tuple(value.shape)}, expected {p.shape}")
                with p.device.context():
                    state.setdefault(p, {})[key] = (p.xp.asarray(value, dtype=p.dtype).copy()
                                                    if key in self.state_names else value)
        for mine, saved in zip(self.param_groups, groups):
            mine.update({k: v for k, v in saved.items() if k != "params"})
            self.check_group(mine)
        self.state = {p: s for p, s in state.items() if set(s) >= set(self.state_names)}
