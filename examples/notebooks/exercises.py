"""How the notebooks' exercise cells find their checks' subject.

Every exercise is a stub the student fills in::

    def my_im2col(x, kh, kw, stride=1):
        raise NotImplementedError  # your code here

and the self-check cell after it runs its asserts inside ``with check(my_im2col) as im2col_fn:``,
where ``im2col_fn`` (what ``resolve(my_im2col)`` returns) is

* the reference ``solutions.my_im2col`` when the environment has ``MINITORCH_SOLUTIONS=1``
  (that is how CI runs the notebooks: the checks then test the reference solutions);
* otherwise the student's function, except that while it still raises ``NotImplementedError``
  the reference answers in its place (so a fresh notebook runs from top to bottom);
* in a student edition, which has no ``solutions.py`` (``build_notebooks.py --student-edition``),
  the student's function alone: while it is still a stub the check prints that the exercise is
  still to do, ``✗ my_im2col is still a stub ...``, and ends there without an error, so the
  notebook still runs top to bottom (Jupyter's "Run All" stops at the first error) and lists
  the exercises left to do.

Anything else the student writes is checked as written: a wrong answer fails the assert, in
every edition.

The check ends with ``passed(fn, "what was shown")``, which prints the tick and says whose
answer earned it: the student's, or the reference standing in for an untouched stub (so a tick
never pretends that a stub was checked).
"""
import functools
import os

try:
    import solutions
except ModuleNotFoundError as e:  # a student edition: no reference answers beside the notebooks
    if e.name != "solutions":
        raise
    solutions = None

STUB_HINT = "✗ {name} is still a stub: write it in the cell above, run that cell, then re-run this check"


class StubNotWritten(Exception):
    """Raised through a check when the student's function is still a stub and no reference answer
    can stand in for it; ``check`` turns it into the hint."""

    def __init__(self, name):
        super().__init__(STUB_HINT.format(name=name))
        self.name = name


def solutions_forced():
    return os.environ.get("MINITORCH_SOLUTIONS") == "1"


def resolve(student_fn):
    """The function a self-check cell should test (see the module docstring)."""
    name = student_fn.__name__
    reference = getattr(solutions, name, None) if solutions is not None else None
    if solutions_forced():
        if reference is None:
            raise RuntimeError(f"MINITORCH_SOLUTIONS=1 asks for the reference {name}, but there is no "
                               f"solutions.py beside the notebooks (a student edition?)")
        print(f"MINITORCH_SOLUTIONS=1: checking the reference solutions.{name}")
        return reference

    @functools.wraps(student_fn)
    def student_or_reference(*args, **kwargs):
        try:
            return student_fn(*args, **kwargs)
        except NotImplementedError:
            if reference is None:
                raise StubNotWritten(name) from None
            if not student_or_reference.fell_back:
                print(f"{name} is still a stub: the reference answer stands in for it for now, so the "
                      f"notebook runs on (write yours above and re-run this cell)")
                student_or_reference.fell_back = True
            return reference(*args, **kwargs)

    student_or_reference.fell_back = False
    return student_or_reference


class check:
    """``with check(my_fn) as fn:`` runs a self-check on ``resolve(my_fn)``. A stub that nothing can
    stand in for (a student edition) ends the check with its hint printed, not an error; every
    other failure, a wrong answer's ``AssertionError`` included, is raised as usual."""

    def __init__(self, student_fn):
        self.fn = resolve(student_fn)

    def __enter__(self):
        return self.fn

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, StubNotWritten):
            print(exc)
            return True  # the hint, and the notebook goes on
        return False


def passed(checked_fn, message):
    """Print the check's tick for ``checked_fn`` (what ``resolve`` returned), saying whose answer it was."""
    name = checked_fn.__name__
    if solutions_forced():
        print(f"✓ {message} (the reference solutions.{name}, as MINITORCH_SOLUTIONS=1 asks)")
    elif checked_fn.fell_back:
        print(f"✓ {message}, but by the reference answer: {name} is still a stub, so nothing of yours "
              f"was checked yet")
    else:
        print(f"✓ {message}: your {name} passes")
