"""The repository's ``kernels/`` folder under its import name, ``minitorch_alex_kernels``, for a
source checkout that was not installed (``PYTHONPATH=.``, as the GPU machine runs the tests).

``setup.py`` installs ``kernels/`` as the package ``minitorch_alex_kernels`` (a top-level
``kernels`` is another project on the package index) and leaves this file out. Here, on the
first ``import minitorch_alex_kernels``, this module puts the ``kernels/`` package beside it in
its own place in ``sys.modules``, so ``minitorch_alex_kernels.cpu`` and the rest resolve inside
that folder. It is loaded by path and never as ``kernels``: a foreign ``kernels`` on ``sys.path``
is never imported. Like ``kernels/``, this file imports nothing of ``minitorch_alex`` or NumPy
(``kernels.blas_core`` must run before NumPy loads).
"""
import importlib.util
import os
import sys

_FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernels")
_spec = importlib.util.spec_from_file_location(__name__, os.path.join(_FOLDER, "__init__.py"),
                                               submodule_search_locations=[_FOLDER])
_package = importlib.util.module_from_spec(_spec)
sys.modules[__name__] = _package  # the import statement returns what sys.modules holds under the name
_spec.loader.exec_module(_package)
