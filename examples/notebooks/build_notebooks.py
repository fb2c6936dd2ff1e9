"""Write the course notebooks from their sources, execute them, save them with their outputs.

    python examples/notebooks/build_notebooks.py              # all notebooks
    python examples/notebooks/build_notebooks.py 02_im2col    # the ones whose name contains "02_im2col"
    python examples/notebooks/build_notebooks.py --no-execute # sources only, no outputs

Each notebook NN_name.ipynb is generated from sources/NN_name.py, a module whose ``CELLS`` list
holds the cells (``md``/``code`` from sources/cells.py). Edit the cells there and re-run this
script, so the sources stay reviewable as Python and the committed outputs always come from one
top-to-bottom run. tests/test_notebooks.py checks that the committed notebooks' cells match
their sources.
"""
import importlib.util
import os
import sys
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "sources"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
NOTEBOOKS = tuple(f"{p.stem}.ipynb" for p in sorted(SOURCES.glob("[0-9][0-9]_*.py")))


def cells_of(filename):
    """The CELLS list of ``filename``'s source module (kind, source, tags), loaded from its path
    (the module names start with a digit, so they are not imported by name)."""
    stem = Path(filename).stem
    spec = importlib.util.spec_from_file_location(f"notebook_source_{stem}", SOURCES / f"{stem}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(SOURCES))  # for `from cells import ...`
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SOURCES))
    return module.CELLS


def build(filename):
    """The notebook ``filename`` without outputs, as an nbformat NotebookNode."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    stem = filename.split("_")[0]
    for i, (kind, source, tags) in enumerate(cells_of(filename)):
        cell = nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
        cell.id = f"nb{stem}-{i:02d}"  # stable ids keep regenerated notebooks' diffs small
        if tags:
            cell.metadata["tags"] = list(tags)
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def execute(nb, timeout=600):
    """Run ``nb`` in place in a fresh python3 kernel started in this folder, with the reference
    solutions (MINITORCH_SOLUTIONS=1), the inline matplotlib backend (so figures are saved) and
    one BLAS thread, as tests/test_notebooks.py runs them (the timings printed are single-core)."""
    from nbclient import NotebookClient

    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["MINITORCH_SOLUTIONS"] = "1"
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(nb, kernel_name="python3", timeout=timeout, record_timing=False,
                       resources={"metadata": {"path": str(HERE)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def main(argv):
    run = "--no-execute" not in argv
    wanted = [a for a in argv if not a.startswith("--")]
    for filename in NOTEBOOKS:
        if wanted and not any(w in filename for w in wanted):
            continue
        nb = build(filename)
        if run:
            start = time.perf_counter()
            execute(nb)
            print(f"{filename}: executed in {time.perf_counter() - start:.1f} s")
        nbformat.write(nb, HERE / filename)
        print(f"wrote {HERE / filename}")


if __name__ == "__main__":
    main(sys.argv[1:])
