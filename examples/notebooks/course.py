"""What every notebook's first cell imports besides the package: the backend pin and the listings.

``use_reference_ops()`` is the one place the notebooks choose the package's backend: they run
and print the readable NumPy reference ops of ``minitorch_alex/ops``.

``listing(obj)`` prints ``obj``'s source as the course reads it. The op classes of
``minitorch_alex/ops`` hold the reference code only (the numba and CUDA implementations live in
``kernels/cpu`` and ``kernels/cuda``, chosen by ``minitorch_alex/dispatch.py``), so this is
``inspect.getsource(obj)`` unchanged.
"""
import inspect
import textwrap

# Source text that would mark a statement as a backend branch, not reference code: none of the
# listed ops may contain it (tests/test_notebooks.py)
BACKEND_MARKERS = ("kernels", "self.fast", "self.cuda", "use_fast(", "use_cuda(", "cpu_kernels(", "cuda_kernels(")


def use_reference_ops():
    """Run every op on its NumPy reference implementation, process-wide (the notebook's kernel
    is the whole process)."""
    import minitorch_alex as mt

    mt.config.set(backend="reference")


def listing(obj):
    """Print ``obj``'s source."""
    print(textwrap.dedent(inspect.getsource(obj)))
