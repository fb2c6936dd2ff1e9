"""The autograd engine: define-by-run graphs of ``Function`` nodes, walked backwards in
topological order.

Every differentiable op is a subclass of ``Function`` with two methods that work on raw arrays
(NumPy or CuPy), never on Tensors:

* ``forward(self, *arrays, **params) -> array | tuple of arrays``; it may save what backward
  needs on ``self`` (e.g. ``self.x = x``).
* ``backward(self, *grad_outputs) -> tuple`` with one gradient array (or ``None``) per input,
  each of the input's shape.

``Function.apply`` first asks ``minitorch_alex.dispatch`` which implementation runs this call
(for the hot ops, a numba or CUDA class with the same two methods may replace the reference's
own); the answer is kept on the node (``node.backend``: 'reference', 'numba' or 'cuda';
``node.impl``: the instance, when not the node itself), so backward calls the same code. Before
forward the implementation's ``needs_input_grad`` is set (all False when no graph is recorded,
so it may skip saving state). Then forward runs and, when gradients are wanted, the node is
recorded: the output tensors point to the node, the node points to its input tensors.
``backward`` then visits the nodes from the loss towards the leaves. The order is computed
iteratively (no recursion), so graphs of any depth work, and each node's saved arrays are
dropped as soon as its backward has run, so intermediate buffers are freed during the backward
pass.
"""
from __future__ import annotations

import contextlib
import threading

from .dispatch import select

_state = threading.local()  # per thread, so two towers may run in two threads


def is_grad_enabled() -> bool:
    return getattr(_state, "grad_enabled", True)


def set_grad_enabled(mode: bool) -> None:
    _state.grad_enabled = bool(mode)


class no_grad(contextlib.ContextDecorator):
    """Context manager / decorator: ops inside record no graph (for evaluation and updates)."""

    def __enter__(self):
        self._prev = is_grad_enabled()
        set_grad_enabled(False)
        return self

    def __exit__(self, *exc):
        set_grad_enabled(self._prev)
        return False


class enable_grad(no_grad):
    """The opposite of ``no_grad``: record graphs inside, even within a ``no_grad`` block."""

    def __enter__(self):
        self._prev = is_grad_enabled()
        set_grad_enabled(True)
        return self


class Function:
    """Base class of differentiable ops. See the module docstring for the contract."""

    inputs: tuple = ()
    needs_input_grad: tuple = ()
    same_dtype = True  # all tensor inputs must share one dtype (no silent promotion)
    fresh_grads = False  # backward returns new arrays, one per input: a leaf may keep its own as .grad uncopied

    def forward(self, *arrays, **params):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, *grad_outputs):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on Tensors (Python scalars are promoted); return Tensor(s)."""
        from .tensor import Tensor, check_same_device, check_same_dtype  # Tensor and the engine refer to each other

        tensors = tuple(x if isinstance(x, Tensor) else None for x in inputs)
        ref = next((t for t in tensors if t is not None), None)
        if ref is None:
            raise TypeError(f"{cls.__name__}: expected at least one Tensor input")
        tensors = tuple(
            t if t is not None else Tensor._scalar_like(x, ref, cls.__name__) for t, x in zip(tensors, inputs)
        )
        device = check_same_device(tensors, cls.__name__)
        if cls.same_dtype:
            check_same_dtype(tensors, cls.__name__)

        arrays = tuple(t.data for t in tensors)
        fn = cls()
        backend, impl = select(cls, arrays, params)  # the one decision; backward uses the same impl
        fn.backend = backend
        if impl is None:
            impl = fn
        else:
            fn.impl = impl
        requires_grad = is_grad_enabled() and any(t.requires_grad for t in tensors)
        impl.needs_input_grad = tuple(requires_grad and t.requires_grad for t in tensors)
        with device.context():  # launch under the operands' device, whichever one is current
            outputs = impl.forward(*arrays, **params)
        multiple = isinstance(outputs, tuple)
        outputs = outputs if multiple else (outputs,)
        device = fn.output_device(device)

        results = tuple(Tensor._wrap(y, device, requires_grad) for y in outputs)
        if requires_grad:
            fn.inputs = tensors
            fn.needs_input_grad = impl.needs_input_grad
            fn.output_meta = tuple((y.shape, y.dtype) for y in outputs)
            fn.output_xp = device.xp  # for zero gradients of unused outputs (graphs may span devices)
            for i, r in enumerate(results):
                r._node, r._index = fn, i
        else:  # nothing will call backward: forget what forward saved right away
            fn.__dict__.clear()
        return results if multiple else results[0]

    def output_device(self, input_device):
        """Device of the outputs: the inputs' device, except for copies across devices."""
        return input_device

    def release(self):
        """Drop saved arrays and input references once backward has used them."""
        self.__dict__.clear()


_FREED = ("backward: the graph was already freed by an earlier backward; "
          "pass retain_graph=True to the first backward to go through it twice")


def _topological_order(root_node):
    """Nodes reachable from ``root_node``, each after every node that consumes its outputs."""
    order, visited = [], {id(root_node)}
    stack = [(root_node, iter(root_node.inputs))]
    while stack:  # iterative depth-first search, post-order
        node, inputs = stack[-1]
        for t in inputs:
            child = t._node
            if child is not None and id(child) not in visited:
                visited.add(id(child))
                stack.append((child, iter(child.inputs)))
                break
        else:
            stack.pop()
            order.append(node)
    order.reverse()
    return order


def _accumulate(current, new):
    return new if current is None else current + new


def backward(tensor, grad=None, retain_graph=False):
    """Compute d(tensor)/d(leaf) for every leaf that requires grad and add it to ``leaf.grad``."""
    from .tensor import Tensor

    if not tensor.requires_grad:
        raise RuntimeError("backward: this tensor does not require grad and has no graph (was it made under no_grad?)")
    xp = tensor.xp
    if grad is None:
        if tensor.size != 1:
            raise RuntimeError(f"backward: grad can be implied only for a single-element tensor, got shape {tensor.shape}")
        with tensor.device.context():  # allocated on the root's device, not the current one
            grad = xp.ones(tensor.shape, dtype=tensor.dtype)
    else:
        with tensor.device.context():
            grad = grad.data if isinstance(grad, Tensor) else xp.asarray(grad, dtype=tensor.dtype)
        if grad.shape != tensor.shape:
            raise ValueError(f"backward: grad must have the tensor's shape {tensor.shape}, got {grad.shape}")

    if tensor._node is None:  # a leaf: its gradient is the given one
        tensor._add_grad(grad)
        return

    if not tensor._node.__dict__:
        raise RuntimeError(_FREED)
    pending = {id(tensor._node): [None] * len(tensor._node.output_meta)}
    pending[id(tensor._node)][tensor._index] = grad
    for node in _topological_order(tensor._node):
        grads_out = pending.pop(id(node), None)
        if grads_out is None:  # no path from the root through this node's outputs
            continue
        if not node.__dict__:
            raise RuntimeError(_FREED)
        device = node.inputs[0].device
        impl = node.__dict__.get("impl", node)  # the implementation that ran forward (dispatch.select)
        with device.context():  # as in apply: the node's kernels run on its inputs' device
            # an output that did not reach the root (e.g. one part of a split) gets a zero gradient
            # (multi-output nodes keep their inputs' device, so it is allocated there)
            grads_out = [
                g if g is not None else node.output_xp.zeros(shape, dtype=dtype)
                for g, (shape, dtype) in zip(grads_out, node.output_meta)
            ]
            grads_in = impl.backward(*grads_out)
        if not isinstance(grads_in, tuple):
            grads_in = (grads_in,)
        for x, g, needed in zip(node.inputs, grads_in, node.needs_input_grad):
            if g is None or not needed:
                continue
            if g.shape != x.shape:
                raise RuntimeError(f"{type(node).__name__}.backward returned a gradient of shape {g.shape} for an input of shape {x.shape}")
            if x._node is None or x._retains_grad:
                x._add_grad(g, owned=node.fresh_grads and x._node is None)
            if x._node is not None:
                slots = pending.setdefault(id(x._node), [None] * len(x._node.output_meta))
                with x.device.context():  # the sum runs on the gradient's device
                    slots[x._index] = _accumulate(slots[x._index], g)
        if not retain_graph:
            node.release()


def grad_fn_name(tensor):
    """Name of the op that produced ``tensor`` (``None`` for leaves); handy in reprs."""
    return None if tensor._node is None else type(tensor._node).__name__
