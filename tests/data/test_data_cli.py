import importlib.util
import os
import sys

from minitorch_alex.data import open_store

CLI = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "prepare_data.py")


def _load_cli():
    """examples/prepare_data.py as a module (its folder on sys.path, for its ``_script`` helper:
    run alone, this file failed with "No module named '_script'")."""
    examples = os.path.dirname(os.path.abspath(CLI))
    if examples not in sys.path:
        sys.path.insert(0, examples)
    spec = importlib.util.spec_from_file_location("prepare_data_cli", CLI)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_builds_a_synthetic_store(tmp_path, capsys):
    cli = _load_cli()
    out = tmp_path / "store"
    cli.main(["--layout", "synthetic", "--size", "16", "--num-classes", "3", "--train-per-class", "2",
              "--val-per-class", "1", str(tmp_path / "src"), str(out)])
    assert "store ready" in capsys.readouterr().out
    store = open_store(out)
    assert store.train.images.shape == (6, 16, 16, 3) and len(store.val) == 3
    assert store.manifest["layout"] == "synthetic"


def test_cli_draws_no_progress_bar_fragments_into_a_redirected_log(tmp_path, capsys):
    """Bars only on a terminal: under capture (as in `prepare_data.py ... 2> log`) tqdm's \\r
    fragments filled the log."""
    cli = _load_cli()
    cli.main(["--layout", "synthetic", "--size", "16", "--num-classes", "2", "--train-per-class", "2",
              "--val-per-class", "1", str(tmp_path / "src"), str(tmp_path / "store")])
    captured = capsys.readouterr()
    assert "store ready" in captured.out and "\r" not in captured.out + captured.err, captured.err
