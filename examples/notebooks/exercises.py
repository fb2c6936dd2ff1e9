"""How the notebooks' exercise cells find their checks' subject.

Every exercise is a stub the student fills in::

    def my_im2col(x, kh, kw, stride=1):
        raise NotImplementedError  # your code here

and the self-check cell after it calls ``resolve(my_im2col)``, which returns

* the reference ``solutions.my_im2col`` when the environment has ``MINITORCH_SOLUTIONS=1``
  (that is how CI runs the notebooks: the checks then test the reference solutions);
* otherwise the student's function, except that while it still raises ``NotImplementedError``
  the reference answers in its place (so a fresh notebook runs from top to bottom).

Anything else the student writes is checked as written: a wrong answer fails the assert.

The check cell ends with ``passed(fn, "what was shown")``, which prints the tick and says whose
answer earned it: the student's, or the reference standing in for an untouched stub (so a tick
never pretends that a stub was checked).
"""
import functools
import os

import solutions


def solutions_forced():
    return os.environ.get("MINITORCH_SOLUTIONS") == "1"


def resolve(student_fn):
    """The function a self-check cell should test (see the module docstring)."""
    name = student_fn.__name__
    reference = getattr(solutions, name)
    if solutions_forced():
        print(f"MINITORCH_SOLUTIONS=1: checking the reference solutions.{name}")
        return reference

    @functools.wraps(student_fn)
    def student_or_reference(*args, **kwargs):
        try:
            return student_fn(*args, **kwargs)
        except NotImplementedError:
            if not student_or_reference.fell_back:
                print(f"{name} is still a stub: using solutions.{name} for now (write yours above and re-run)")
                student_or_reference.fell_back = True
            return reference(*args, **kwargs)

    student_or_reference.fell_back = False
    return student_or_reference


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
