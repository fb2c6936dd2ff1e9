"""Sections of benchmarks/RESULTS.md that a script rewrites on each run."""
from __future__ import annotations

import os


def replace_section(path, heading, end, text):
    """Put ``text`` (which runs from ``heading`` to ``end``) in place of the same block of ``path``,
    or at its end; what follows ``end`` (a reading written by hand) stays. Written atomically."""
    with open(path, encoding="utf-8") as f:
        old = f.read()
    start, stop = old.find(heading), old.find(end)
    if start < 0 or stop < start:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        new = old[:start] + text + old[stop + len(end) + 1:]
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(new)
    os.replace(tmp, path)


RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")


def add_out_argument(parser):
    """The ``--out`` of a script that rewrites its section of benchmarks/RESULTS.md ('-': print only)."""
    parser.add_argument("--out", default=RESULTS, help="'-': print only")


def publish(out, heading, end, text):
    """Print a script's section and, unless ``out`` is '-', put it into the file ``out``."""
    print("\n" + text)
    if out != "-":
        replace_section(out, heading, end, text)
        print(f"updated {out}")
