import importlib.util
import os

from minitorch_alex.data import open_store

CLI = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "prepare_data.py")


def _load_cli():
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
