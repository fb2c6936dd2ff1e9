"""The repository's one linter, configured in ruff.toml (pycodestyle, pyflakes, import order,
one annotation style, bugbear): the README's test command runs it."""
import ast
import os
import shutil
import subprocess

import pytest
from paths import ROOT


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed (pip install -e '.[dev]')")
def test_ruff_finds_nothing():
    proc = subprocess.run(["ruff", "check", "--no-cache", "--output-format", "concise", ROOT],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


# ----- the import graph ----------------------------------------------------------------------------
# The package's modules and the kernels' (kernels/, imported as minitorch_alex_kernels), read from
# their source (nothing is imported). An edge A -> B: A imports B anywhere in its body (a deferred
# import inside a function too), or a module below B (importing it runs B's __init__ first).
FOLDERS = {"minitorch_alex": "minitorch_alex", "minitorch_alex_kernels": "kernels"}
# the one cycle allowed, as in minitorch and DeZero: Tensor's methods build ops, ops build Tensors
CORE = ("minitorch_alex.tensor", "minitorch_alex.autograd", "minitorch_alex.ops")


def _modules():
    found = {}
    for name, folder in FOLDERS.items():
        for here, _, files in os.walk(os.path.join(ROOT, folder)):
            for file in files:
                if file.endswith(".py"):
                    parts = os.path.relpath(os.path.join(here, file), os.path.join(ROOT, folder))[:-3].split(os.sep)
                    found[".".join([name, *parts[:-1]] if parts[-1] == "__init__" else [name, *parts])] = (
                        os.path.join(here, file))
    return found


def _imported(module, path, node):
    """The dotted names an import statement of ``module`` (its file ``path``) loads."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    if node.level:
        package = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1])
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module
    return [f"{base}.{alias.name}" for alias in node.names]  # a submodule, or a name of ``base``


def import_graph():
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _imported(module, path, node):
                    while target and target not in modules:  # a name inside a module: that module
                        target = target.rpartition(".")[0]
                    while target and target != module and not module.startswith(target + "."):
                        edges.add(target)  # the module, and the packages above it that are not ours
                        target = target.rpartition(".")[0]
        graph[module] = edges
    return graph


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycle_but_tensor_autograd_and_ops():
    def core(module):
        return any(module == p or module.startswith(p + ".") for p in CORE)

    others = [c for c in cycles(import_graph()) if not all(core(m) for m in c)]
    assert not others, "import cycles: " + "; ".join(" <-> ".join(c) for c in others)


def test_every_relative_import_names_a_module_that_exists():
    """``from .x import y`` inside the package or the kernels: x is one of their modules (a module
    moved and an import left behind fails here, not at run time)."""
    modules = _modules()
    for module, path in modules.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level and node.module:
                package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
                package = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1])
                assert f"{package}.{node.module}" in modules, f"{path}:{node.lineno}: no module {package}.{node.module}"


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_kernels_never_import_the_package_and_import_themselves_relatively():
    """kernels/ sees arrays and numbers only; and its own modules by relative imports: an absolute
    ``kernels`` could be another project of that name, and the folder's import name is setup.py's."""
    for module, path in _modules().items():
        if not module.startswith("minitorch_alex_kernels"):
            continue
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                bad = [n for n in names if n.split(".")[0] in ("minitorch_alex", "minitorch_alex_kernels", "kernels")]
                assert not bad, f"{path}:{node.lineno} imports {bad}"
