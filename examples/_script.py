"""What every example script does before its own imports (one home for it).

    import _script
    _script.import_package()        # then: import minitorch_alex as mt, ...

``find_package`` puts this source checkout on ``sys.path`` when the package is not installed;
``import_package`` also imports it, turning a bad ``MINITORCH_ALEX_*`` variable
(``config.EnvironmentSettingError``, raised at import) into one line and exit status 2 instead
of an import-time traceback.
"""
import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_package() -> None:
    if importlib.util.find_spec("minitorch_alex") is None:  # a source checkout that was not installed
        sys.path.insert(0, ROOT)


def import_package() -> None:
    find_package()
    try:
        import minitorch_alex  # noqa: F401, PLC0415
    except ValueError as exc:
        if type(exc).__name__ != "EnvironmentSettingError":
            raise
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
