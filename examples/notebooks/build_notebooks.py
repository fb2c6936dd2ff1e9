"""Write the course notebooks from their sources, execute them, save them with their outputs.

    python examples/notebooks/build_notebooks.py              # all notebooks
    python examples/notebooks/build_notebooks.py 02_im2col    # the ones whose name contains "02_im2col"
    python examples/notebooks/build_notebooks.py --no-execute # sources only, no outputs
    python examples/notebooks/build_notebooks.py --student-edition DIR  # what to hand out, in DIR
    python examples/notebooks/build_notebooks.py 05 06 --data fashion-mnist --out DIR  # executed on other data, in DIR

Each notebook NN_name.ipynb is generated from sources/NN_name.py, a module whose ``CELLS`` list
holds the cells (``md``/``code`` from sources/cells.py). Edit the cells there and re-run this
script, so the sources stay reviewable as Python and the committed outputs always come from one
top-to-bottom run. tests/project/test_notebooks.py checks that the committed notebooks' cells match
their sources. The committed notebooks run on their default data (the stripes: a DATA choice in
this process's environment is not passed on); ``--data NAME --out DIR`` executes them on another
data set (notebooks 5 and 6's switch) and writes them to DIR instead.
"""
import importlib.util
import os
import shutil
import sys
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "sources"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
DATA_VARIABLE = "MINITORCH_NOTEBOOK_DATA"  # notebooks 5 and 6's DATA switch reads it (small_net.DATA_VARIABLE)
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


def absolute_pythonpath(value):
    """``value`` (a PYTHONPATH) with each relative entry made absolute against this process's working
    directory: the kernel starts in the notebooks' folder, where ``PYTHONPATH=.`` would otherwise name
    that folder and the package would be imported from wherever else it is installed."""
    return os.pathsep.join(os.path.abspath(p) if p else p for p in value.split(os.pathsep))


def execute(nb, timeout=600, data=None):
    """Run ``nb`` in place in a fresh python3 kernel started in this folder, with the reference
    solutions (MINITORCH_SOLUTIONS=1), the inline matplotlib backend (so figures are saved) and
    one BLAS thread, as tests/project/test_notebooks.py runs them (the timings printed are single-core).
    ``data``: the data set notebooks 5 and 6 train on (their DATA switch); None: their default."""
    from nbclient import NotebookClient

    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", DATA_VARIABLE)}
    if data is not None:
        env[DATA_VARIABLE] = data
    env["MINITORCH_SOLUTIONS"] = "1"
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = absolute_pythonpath(env["PYTHONPATH"])
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


# What a student edition holds besides the notebooks: everything they import from this folder
# except solutions.py
STUDENT_FILES = ("course.py", "exercises.py", "small_net.py")


def student_edition(out_dir, wanted=()):
    """Write the notebooks to hand out into ``out_dir``: generated from their sources, no outputs,
    with the helper modules they import but not solutions.py. Without it every untouched exercise's
    check prints its "still a stub" hint and the notebook runs on (see exercises.py), so "Run All"
    goes top to bottom and lists what is left to do. Returns the notebooks' paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if (out_dir / "solutions.py").exists():
        raise SystemExit(f"{out_dir} holds a solutions.py: not a student edition, refusing to write there")
    for name in STUDENT_FILES:
        shutil.copyfile(HERE / name, out_dir / name)
    written = []
    for filename in NOTEBOOKS:
        if wanted and not any(w in filename for w in wanted):
            continue
        nbformat.write(build(filename), out_dir / filename)
        written.append(out_dir / filename)
    return written


def main(argv):
    if "--student-edition" in argv:
        i = argv.index("--student-edition")
        if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
            raise SystemExit("usage: build_notebooks.py --student-edition DIR [names]")
        out_dir, rest = argv[i + 1], argv[:i] + argv[i + 2:]
        for path in student_edition(out_dir, [a for a in rest if not a.startswith("--")]):
            print(f"wrote {path}")
        print(f"student edition in {out_dir}: no solutions.py, no outputs")
        return
    options = {}
    for flag in ("--data", "--out"):
        if flag in argv:
            i = argv.index(flag)
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                raise SystemExit(f"usage: build_notebooks.py [names] {flag} VALUE")
            options[flag], argv = argv[i + 1], argv[:i] + argv[i + 2:]
    data, out_dir = options.get("--data"), Path(options.get("--out", HERE))
    if data is not None and out_dir.resolve() == HERE:
        raise SystemExit(f"--data {data}: give --out DIR (expected another folder vs the committed notebooks' {HERE}, "
                         "which run on their default data)")
    run = "--no-execute" not in argv
    wanted = [a for a in argv if not a.startswith("--")]
    out_dir.mkdir(parents=True, exist_ok=True)
    for filename in NOTEBOOKS:
        if wanted and not any(w in filename for w in wanted):
            continue
        nb = build(filename)
        if run:
            start = time.perf_counter()
            execute(nb, data=data)
            print(f"{filename}: executed in {time.perf_counter() - start:.1f} s" + (f" on {data}" if data else ""))
        nbformat.write(nb, out_dir / filename)
        print(f"wrote {out_dir / filename}")


if __name__ == "__main__":
    main(sys.argv[1:])
