"""What every notebook's first cell imports besides the package: the backend pin and the listings.

``use_reference_ops()`` is the one place the notebooks choose the package's backend: they run
and print the readable NumPy reference ops of ``minitorch_alex/ops``.

``listing(obj)`` prints ``obj``'s source as the course reads it: the reference code only. Where
an op class still carries branches that hand the work to the numba or CUDA kernels (``if
self.fast: ...``, ``self.cuda = use_cuda(...)``), those statements are left out and a comment
says how many lines were; on reference-only ops it prints ``inspect.getsource(obj)`` unchanged.
"""
import ast
import inspect
import textwrap

# Source text that marks a statement as a backend branch, not reference code.
BACKEND_MARKERS = ("self.fast", "self.cuda", "use_fast(", "use_cuda(", "cpu_kernels(", "cuda_kernels(")


def use_reference_ops():
    """Run every op on its NumPy reference implementation, process-wide."""
    import minitorch_alex as mt

    if hasattr(mt, "config"):  # the settings object of the one-dispatch design (issue 13)
        mt.config.set(backend="reference")
    else:
        from minitorch_alex import backend

        backend.set_backend("reference")


def _backend_lines(source):
    """Line numbers (1-based) of the statements of ``source`` that are backend branches."""
    lines = source.splitlines()
    drop = set()
    for node in ast.walk(ast.parse(source)):
        for stmt in getattr(node, "body", []) if isinstance(node, (ast.FunctionDef, ast.If, ast.For, ast.With)) else []:
            text = "\n".join(lines[stmt.lineno - 1 : stmt.end_lineno])
            is_branch = isinstance(stmt, ast.If) and any(m in ast.get_source_segment(source, stmt.test) for m in BACKEND_MARKERS)
            is_flag = isinstance(stmt, ast.Assign) and any(m in text for m in BACKEND_MARKERS)
            if is_branch or is_flag:
                drop.update(range(stmt.lineno, stmt.end_lineno + 1))
    return drop


def reference_source(obj):
    """``obj``'s source without its backend branches, and the number of lines left out."""
    source = textwrap.dedent(inspect.getsource(obj))
    drop = _backend_lines(source)
    kept = [line for i, line in enumerate(source.splitlines(), start=1) if i not in drop]
    return "\n".join(kept) + "\n", len(drop)


def listing(obj):
    """Print ``obj``'s reference source (see the module docstring)."""
    source, dropped = reference_source(obj)
    if dropped:
        print(f"# {obj.__qualname__}: the NumPy reference only; {dropped} lines that hand the op to the "
              f"numba/CUDA kernels are left out")
    print(source)
