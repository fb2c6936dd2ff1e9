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
# listed ops may contain it (tests/project/test_notebooks.py)
BACKEND_MARKERS = ("kernels", "self.fast", "self.cuda", "use_fast(", "use_cuda(", "cpu_kernels(", "cuda_kernels(")


def use_reference_ops():
    """Run every op on its NumPy reference implementation, process-wide (the notebook's kernel
    is the whole process)."""
    import minitorch_alex as mt

    mt.config.set(backend="reference")


def listing(obj):
    """Print ``obj``'s source."""
    print(textwrap.dedent(inspect.getsource(obj)))


def graph_of(tensor, names=None):
    """The autograd graph that ``tensor.backward()`` would walk, before it does (backward frees it):
    ``(nodes, edges)`` with ``nodes`` mapping an id to ``(kind, label)``, kind "tensor" (labelled
    with its name from ``names``, a dict name -> Tensor, and its shape) or "op" (its Function's class
    name), and ``edges`` the (from, to) pairs of the forward direction: input -> op -> output."""
    names = {id(t): n for n, t in (names or {}).items()}
    nodes, edges, stack, seen = {}, [], [tensor], set()
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        shape = "×".join(map(str, t.shape)) or "scalar"
        nodes[id(t)] = ("tensor", f"{names[id(t)]}: {shape}" if id(t) in names else shape)
        fn = t._node
        if fn is not None:
            if id(fn) not in nodes:
                nodes[id(fn)] = ("op", type(fn).__name__)
                for x in fn.inputs:
                    edges.append((id(x), id(fn)))
                    stack.append(x)
            edges.append((id(fn), id(t)))
    return nodes, edges


def draw_graph(tensor, names=None):
    """Draw ``graph_of(tensor, names)``, inputs on the left: with graphviz where the ``graphviz``
    package and its ``dot`` program are installed, else with matplotlib (tensors in square boxes,
    ops in round ones). Returns ``(nodes, edges)``."""
    import shutil

    nodes, edges = graph_of(tensor, names)
    try:
        import graphviz
    except ImportError:
        graphviz = None
    if graphviz is not None and shutil.which("dot"):
        from IPython.display import display

        g = graphviz.Digraph(graph_attr={"rankdir": "LR"})
        for k, (kind, label) in nodes.items():
            g.node(str(k), label, shape="box" if kind == "tensor" else "ellipse")
        for a, b in edges:
            g.edge(str(a), str(b))
        display(g)
        return nodes, edges

    import matplotlib.pyplot as plt

    inputs_of = {k: [a for a, b in edges if b == k] for k in nodes}
    depth = {}
    for k in reversed(list(nodes)):  # discovered from the output back, so inputs mostly come later
        pending = [k]
        while pending:  # the longest path from a leaf, without recursion
            n = pending[-1]
            missing = [p for p in inputs_of[n] if p not in depth]
            if missing:
                pending.extend(missing)
            else:
                depth[n] = 1 + max((depth[p] for p in inputs_of[n]), default=-1)
                pending.pop()
    columns = {}
    for k in nodes:
        columns.setdefault(depth[k], []).append(k)
    pos = {k: (x, (len(col) - 1) / 2 - i) for x, col in columns.items() for i, k in enumerate(col)}
    tallest = max(len(c) for c in columns.values())
    fig, ax = plt.subplots(figsize=(1.7 * len(columns) + 0.5, 0.9 * tallest + 0.6))
    for a, b in edges:
        ax.annotate("", xy=pos[b], xytext=pos[a], arrowprops=dict(arrowstyle="->", color="gray", shrinkA=22, shrinkB=22))
    for k, (kind, label) in nodes.items():
        style = dict(boxstyle="square", fc="white") if kind == "tensor" else dict(boxstyle="round", fc="lightyellow")
        ax.text(*pos[k], label, ha="center", va="center", fontsize=9, bbox=style)
    ax.set_xlim(-0.6, len(columns) - 0.4)
    ax.set_ylim(-tallest / 2, tallest / 2)
    ax.axis("off")
    plt.show()
    return nodes, edges


def draw_two_towers(crossing_bytes, forward_bytes):
    """Notebook 5's diagram of the two-tower AlexNet: each tower's layers, and a red arrow for each
    crossing between the towers labelled with ``crossing_bytes[reader]`` (bytes per image, both
    directions together); ``forward_bytes``: their total, in the title. Returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    rows = [  # (label, per-tower output, the crossing that feeds this row, if any)
        ("conv1 · LRN · pool1", "48×27×27", None), ("conv2 · LRN · pool2", "128×13×13", None),
        ("conv3", "192×13×13", "conv3"), ("conv4", "192×13×13", None), ("conv5 · pool5", "128×6×6", None),
        ("fc6", "2048", "fc6"), ("fc7", "2048", "fc7"), ("fc8", "1000 logits", "fc8"),
    ]
    fig, ax = plt.subplots(figsize=(8, 9.5))
    xs, box_w, box_h = (0.0, 4.0), 2.2, 0.55
    colours = ("#cfe2f3", "#fce5cd")
    ax.add_patch(FancyBboxPatch((xs[0] - box_w / 2, -box_h / 2), xs[1] - xs[0] + box_w, box_h,
                                boxstyle="round,pad=0.02", fc="#eeeeee", ec="k"))
    ax.text(sum(xs) / 2, 0, "input 3×224×224 (both GPUs get the whole image)", ha="center", va="center", fontsize=9)
    for i, (label, size, crossing) in enumerate(rows, start=1):
        y = -1.2 * i
        towers_here = (0,) if label == "fc8" else (0, 1)  # fc8 lives on the first device only
        for t in towers_here:
            x0 = xs[t]
            ax.add_patch(FancyBboxPatch((x0 - box_w / 2, y - box_h / 2), box_w, box_h,
                                        boxstyle="round,pad=0.02", fc=colours[t], ec="k"))
            ax.text(x0, y + 0.08, label, ha="center", va="center", fontsize=9)
            ax.text(x0, y - 0.15, size, ha="center", va="center", fontsize=8, color="#444444")
            ax.annotate("", xy=(x0, y + box_h / 2), xytext=(x0, y + 1.2 - box_h / 2),
                        arrowprops=dict(arrowstyle="->", color="k"))  # within the tower
        if crossing:
            for t in towers_here:  # from the other tower's previous row into this one
                ax.annotate("", xy=(xs[t] + (0.5 if t == 0 else -0.5), y + box_h / 2),
                            xytext=(xs[1 - t] + (-0.5 if t == 0 else 0.5), y + 1.2 - box_h / 2),
                            arrowprops=dict(arrowstyle="->", color="tab:red", lw=1.5))
            ways = "each way" if len(towers_here) == 2 else "one way"
            ax.text(sum(xs) / 2, y + 0.6, f"{crossing_bytes[crossing] / len(towers_here) / 1000:.1f} kB\n{ways}",
                    ha="center", va="center", fontsize=8, color="tab:red",
                    bbox=dict(fc="white", ec="none", pad=0.5))
    ax.text(xs[0], 1.0, "GPU 1", ha="center", fontsize=12, weight="bold")
    ax.text(xs[1], 1.0, "GPU 2", ha="center", fontsize=12, weight="bold")
    ax.set_xlim(-1.6, 5.6)
    ax.set_ylim(-1.2 * len(rows) - 0.6, 1.4)
    ax.axis("off")
    ax.set_title(f"AlexNet's two towers: {forward_bytes / 1000:.1f} kB per image cross forward "
                 f"(and as much back), measured", fontsize=10)
    return fig
