"""The vocabulary the notebooks' sources (one module per notebook, beside this file) are written in.

A source module defines ``CELLS``, a list of ``md(...)`` and ``code(...)`` cells; ``build_notebooks.py``
turns it into the .ipynb. Code cells carry tags for the tests: "setup" (imports a self-check needs),
"exercise" (a stub the student fills in; its reference answer is the function of the same name in
solutions.py) and "check" (the self-check of the exercise defined in the cell before it).
"""
from textwrap import dedent


def md(text):
    return ("markdown", dedent(text).strip(), ())


def code(text, *tags):
    return ("code", dedent(text).strip(), tags)


SETUP = code(
    """
    import time

    import numpy as np
    import matplotlib.pyplot as plt

    import minitorch_alex as mt
    import minitorch_alex.nn.functional as F
    from course import listing, use_reference_ops  # listing(obj): an op's NumPy reference source
    from exercises import check, passed  # the glue between exercise stubs and solutions.py

    use_reference_ops()  # run the readable NumPy reference ops, the code these notebooks print

    np.set_printoptions(precision=4, suppress=True, linewidth=110)
    """,
    "setup",
)

EXERCISE_NOTE = md(
    """
    **How the exercises work.** Each exercise is a function stub, `raise NotImplementedError  # your code here`.
    Replace the body with your code and run the self-check cell below it: its `assert`s fail until
    your function is right. While the stub is untouched, the check falls back to the reference answer
    in `solutions.py` when that file is beside the notebook (it says so), or, in a student edition
    without it, prints `✗ ... is still a stub` and stops there; either way the notebook runs top to
    bottom. CI sets `MINITORCH_SOLUTIONS=1` to run the checks on the reference answers.
    """
)
