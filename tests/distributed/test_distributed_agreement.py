"""Ranks that disagree on what defines the run (issue 26, High #1): other data, epochs, seed or
classes per rank, launched in MPMD form (``mpiexec -n 1 ... : -n 1 ...``), end at start-up with
one line naming the rank and the first field that differs, before any training, instead of
hanging in a collective, failing in MPI or training silently."""
import os
import subprocess
import sys

import numpy as np
import pytest
from needs import needs_mpi
from paths import ROOT

from minitorch_alex.distributed.agreement import Disagreement, check_agreement
from minitorch_alex.train.parallel import DataParallel

SCRIPT = os.path.join(ROOT, "tests", "distributed", "dist_scripts", "cli_train.py")

FLAGS = ["--batch-size", "4", "--workers", "0", "--lr", "0.05", "--input-scale", "0.02", "--no-progress",
         "--no-plots", "--seed", "3", "--epochs", "1"]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    from hostile_helpers import SIZE, make_store

    from minitorch_alex.data import make_synthetic_imagefolder, prepare

    root = tmp_path_factory.mktemp("agree")
    other = make_synthetic_imagefolder(str(root / "d-src"), num_classes=3, train_per_class=8, val_per_class=2,
                                       size=SIZE, seed=1)  # the same classes and counts, other images
    return {"24": make_store(root / "a", classes=3, train=8, val=2),    # 24 training images
            "36": make_store(root / "b", classes=3, train=12, val=2),   # 36
            "4 classes": make_store(root / "c", classes=4, train=6, val=2),  # 24, but 4 classes
            "24 others": prepare(other, str(root / "d"), size=SIZE, progress=False)}


def run_mpmd(out, rank0, rank1, timeout=120):
    """Rank 0 and rank 1 of one job with their own flags; (status, output). A hang is a failure
    (TimeoutExpired), never a wait without end."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
               MINITORCH_ALEX_BACKEND="reference", OMP_NUM_THREADS="1")
    for var in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK"):
        env.pop(var, None)
    command = ["mpiexec"]
    for i, flags in enumerate((rank0, rank1)):
        command += ([":"] if i else []) + ["-n", "1", sys.executable, SCRIPT, "--out", str(out), *FLAGS, *flags]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    return proc.returncode, proc.stdout + proc.stderr


@needs_mpi
@pytest.mark.parametrize("case, rank0, rank1, status, field, values", [
    ("data", ["--data", "24"], ["--data", "36"], 1, "the store's training images", "rank 0's 24 vs 36"),
    ("epochs", ["--data", "24"], ["--data", "24", "--epochs", "2"], 2, "--epochs", "rank 0's 1 vs 2"),
    ("seed", ["--data", "24"], ["--data", "24", "--seed", "4"], 2, "--seed", "rank 0's 3 vs 4"),
    ("classes", ["--data", "24"], ["--data", "4 classes"], 1, "the store's classes", "rank 0's 3: "),
    ("images", ["--data", "24"], ["--data", "24 others"], 1, "the store's mean image and PCA", "rank 0's sha256 "),
])
def test_ranks_that_disagree_stop_before_training_with_one_line(stores, tmp_path, case, rank0, rank1, status,
                                                                field, values):
    def resolve(flags):
        return [stores.get(f, f) for f in flags]

    code, output = run_mpmd(tmp_path, resolve(rank0), resolve(rank1))
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert code == status and len(errors) == 1, output
    assert errors[0].startswith(f"error: rank 1 of 2 does not agree with rank 0 on {field} (expected {values}"), output
    assert "Traceback" not in output and "MPI_Abort" not in output
    assert not (tmp_path / "last.npz").exists() and not (tmp_path / "metrics.jsonl").exists()  # nothing trained


class _Gathering:
    """A fake world of ``len(rows)`` ranks: rank ``rank`` whose allgather returns every rank's row."""

    def __init__(self, fields_per_rank, rank=0):
        from minitorch_alex.distributed.agreement import _row

        self.size, self.rank, self.rows = len(fields_per_rank), rank, [_row(f) for f in fields_per_rank]

    def allgather(self, row):
        assert np.array_equal(row, self.rows[self.rank])
        return np.stack(self.rows)


def test_check_agreement_names_the_lowest_rank_and_the_first_field_that_differs():
    same = [("--epochs", 2), ("the store's classes", "3: [\"a\",\"b\",\"c\"]")]
    check_agreement(_Gathering([same, same, same]), same)  # all agree: nothing raised
    other = [("--epochs", 3), ("the store's classes", "2: [\"a\",\"b\"]")]
    for rank in range(3):  # every rank reaches the same verdict
        world = _Gathering([same, same, other, [("--epochs", 2), ("the store's classes", "x")]], rank)
        with pytest.raises(Disagreement, match=r"^rank 2 of 4 does not agree with rank 0 on --epochs \(expected "
                                               r"rank 0's 2 vs 3\)"):
            check_agreement(world, world_fields(world, [same, same, other]))
    long = [("the code", "x" * 100)]
    with pytest.raises(Disagreement, match=r"expected rank 0's x{48}\.\.\. vs y{48}\.\.\."):
        check_agreement(_Gathering([long, [("the code", "y" * 100)]]), long)


def world_fields(world, fields_per_rank):
    return fields_per_rank[world.rank] if world.rank < len(fields_per_rank) else fields_per_rank[0]


class _OutOfStep:
    """A fake world of 2 ranks whose other rank is elsewhere in the run (its tag ``other``)."""

    size, rank = 2, 0

    def __init__(self, other):
        self.other = other

    def allreduce_(self, array):
        array[-1] += self.other
        array[:-1] *= 2
        return array


def test_ranks_at_different_places_in_the_run_fail_instead_of_waiting():
    parallel = DataParallel(_OutOfStep(5), model=None)
    assert parallel.sum_over_ranks([1.0, 2.0], 5, "training step 5").tolist() == [2.0, 4.0]
    parallel.world = _OutOfStep(-1)  # the other rank has left the loop for validation
    with pytest.raises(RuntimeError, match=r"^rank 0 of 2 reached training step 5 while another rank was elsewhere"):
        parallel.sum_over_ranks([1.0, 2.0], 5, "training step 5")


def test_the_fields_of_a_run_name_what_the_ranks_must_share_and_leave_out_what_is_their_own(tmp_path):
    from minitorch_alex.data.dummy import dummy_store
    from minitorch_alex.train import options, ranks

    store = dummy_store(num_classes=3, train_size=8, val_size=4, size=16)

    def fields(*flags):
        args = options.build_parser().parse_args(["--dummy", "--out", str(tmp_path), "--batch-size", "4", *flags])
        explicit = options.explicit_flags(["--dummy", "--batch-size", "4", *flags])
        settings = options.resolve_settings(args, explicit, options.PAPER, None, None, print)
        devices = tuple(args.devices.split(",")) if args.devices else (args.device,)
        return dict(ranks.run_fields(args, options.make_config(args, settings, devices), store, None))

    base = fields()
    assert fields("--workers", "0", "--print-freq", "3", "--out", str(tmp_path / "elsewhere")) == base  # each rank's own
    for flags, name in ((["--epochs", "3"], "--epochs"), (["--seed", "5"], "--seed"), (["--bucket-mb", "1"], "--bucket-mb"),
                        (["--devices", "cpu:0,cpu:1"], "--device/--devices"), (["--evaluate"], "--evaluate")):
        other = fields(*flags)
        assert [k for k in base if other[k] != base[k]] == [name], flags
    assert list(base)[0] == "the code" and "the store's mean image and PCA" in base
