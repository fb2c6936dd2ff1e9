"""Data parallel through the training CLI: ``mpiexec -n 2 python examples/train_imagenet.py`` (here
tests/distributed/dist_scripts/cli_train.py: the CLI with a small float64 network in AlexNet's place) against
one plain process, resuming on 2 ranks and across rank counts, distributed validation, faults,
and the pieces the trainer uses (the sharded StoreLoader, per-sample draws of the global batch)."""
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from needs import needs_mpi, needs_numba
from paths import ROOT

from minitorch_alex import random as mt_random
from minitorch_alex.data.loader import StoreLoader, shard_bounds
from minitorch_alex.train import ranks as train_ranks
from minitorch_alex.train.options import UsageError

SCRIPT = os.path.join(ROOT, "tests", "distributed", "dist_scripts", "cli_train.py")
sys.path.insert(0, os.path.join(ROOT, "tests", "distributed", "dist_scripts"))
import common  # noqa: E402

pytestmark = pytest.mark.usefixtures("reference_backend")

# 21 training images in batches of 4: 5 full batches and one of 1 row, which rank 1 has no part of
FLAGS = ["--batch-size", "4", "--workers", "1", "--lr", "0.05", "--input-scale", "0.02", "--no-progress",
         "--no-plots", "--seed", "3"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from hostile_helpers import make_store

    return make_store(tmp_path_factory.mktemp("dp") / "store", classes=3, train=7, val=5)


def run(n, store, out, *flags, env=None, timeout=120):
    """The CLI on ``n`` ranks (``n`` = 0: one plain process, no mpiexec) on ``store``; (status, output,
    seconds)."""
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
                    MINITORCH_ALEX_BACKEND="reference", OMP_NUM_THREADS="1", **(env or {}))
    for var in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK"):
        full_env.pop(var, None)
    data = [] if store is None else ["--data", str(store)]  # None: the flags name the data
    command = [sys.executable, SCRIPT, *data, "--out", str(out), *FLAGS, *flags]
    if n:
        command = ["mpiexec", "-n", str(n), *command]
    start = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=ROOT)
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start


def weights(out):
    with np.load(os.path.join(out, "last.npz")) as f:
        return {k: f[k] for k in f.files if k.startswith(("model/", "optim/"))}


def report(out, rank=0):
    with open(os.path.join(out, f"rank{rank}.json")) as f:
        return json.load(f)


def assert_same_run(out, reference, ranks):
    """``out`` (trained on ``ranks`` ranks) holds the single process's weights and velocities
    (float64, rtol 1e-10), its metric rows, and every rank the same generator state."""
    ours, theirs = weights(out), weights(reference)
    assert ours.keys() == theirs.keys()
    for name, value in theirs.items():
        np.testing.assert_allclose(ours[name], value, rtol=1e-10, atol=1e-14, err_msg=name)
    single = report(reference)
    for r in range(ranks):
        rep = report(out, r)
        assert rep["size"] == ranks and rep["rng"] == single["rng"] and rep["step"] == single["step"]
        assert len(rep["rows"]) == len(single["rows"])
        for row, one in zip(rep["rows"], single["rows"]):
            for key in ("train_loss", "train_top1_err", "train_top5_err", "val_loss", "val_top1_err", "val_top5_err"):
                assert row[key] == pytest.approx(one[key], rel=1e-10, abs=1e-12), key


@pytest.fixture(scope="module")
def single_runs(store, tmp_path_factory):
    """The 1-process reference runs (2 epochs), with dropout off and on."""
    outs = {}
    for dropout in ("0", "0.5"):
        out = tmp_path_factory.mktemp(f"single-{dropout}")
        code, output, _ = run(0, store, out, "--epochs", "2", "--dropout", dropout)
        assert code == 0, output
        outs[dropout] = out
    return outs


# -- whole runs on 2 ranks ---------------------------------------------------------------------

@needs_mpi
@pytest.mark.parametrize("dropout", ["0", "0.5"])
def test_two_ranks_train_as_one_process(store, single_runs, tmp_path, dropout):
    code, output, _ = run(2, store, tmp_path, "--epochs", "2", "--dropout", dropout)
    assert code == 0, output
    assert "data parallel on 2 ranks of 2 images" in output
    assert output.count("final validation top-1 accuracy") == 1  # rank 0 alone prints
    assert not os.path.exists(tmp_path / ".tmp-last.npz")
    # with dropout too: each rank keeps its rows of the global batch's masks
    assert_same_run(tmp_path, single_runs[dropout], 2)
    assert all(row["sync_seconds"] > 0 for row in report(tmp_path)["rows"])  # the time waiting for gradients


@needs_mpi
def test_resume_mid_epoch_on_two_ranks_and_across_rank_counts(store, single_runs, tmp_path):
    reference = single_runs["0.5"]
    # a SIGKILL of rank 1 at step 5 (epoch 1, batch 5): the last checkpoint is step 4's, mid-epoch
    first = tmp_path / "killed"
    code, output, seconds = run(2, store, first, "--epochs", "2", "--save-every", "4",
                                env={"FAIL_RANK": "1", "FAIL_STEP": "5", "FAIL_HOW": "kill"})
    assert code != 0 and seconds < 60, output
    with np.load(first / "last.npz") as f:
        meta = json.loads(str(f["meta"]))
    assert (meta["epoch"], meta["batch"], meta["step"], meta["world_size"]) == (0, 4, 4, 2)
    for name, ranks in (("two", 2), ("one", 0)):  # the same 2 ranks again, and a single process
        out = tmp_path / name
        shutil.copytree(first, out)
        code, output, _ = run(ranks, store, out, "--epochs", "2", "--dropout", "0.5", "--resume")
        assert code == 0, output
        assert "resumed from" in output and output.count("resumed from") == 1
        assert_same_run(out, reference, max(ranks, 1))
    # and a single process's checkpoint, after epoch 1, finished on 2 ranks
    one = tmp_path / "from-one"
    code, output, _ = run(0, store, one, "--epochs", "1", "--dropout", "0.5")
    assert code == 0, output
    code, output, _ = run(2, store, one, "--epochs", "2", "--resume")
    assert code == 0, output
    assert_same_run(one, reference, 2)


@needs_mpi
def test_three_ranks_pack_a_folder_once_and_train_as_one_process(tmp_path):
    from hostile_helpers import make_tree

    tree = make_tree(tmp_path / "tree", classes=3, train=7, val=2)  # 21 images: batches of 6, 6, 6 and 3
    flags = ["--data", tree, "--data-dir", str(tmp_path / "data"), "--epochs", "1", "--batch-size", "6"]
    code, output, _ = run(3, None, tmp_path / "three", *flags, timeout=300)
    assert code == 0, output
    assert output.count("data: packing") == 1 and "data parallel on 3 ranks of 2 images" in output
    code, output, _ = run(0, None, tmp_path / "one", *flags)  # finds the packed store
    assert code == 0 and "packed earlier" in output, output
    assert_same_run(tmp_path / "three", tmp_path / "one", 3)


@needs_mpi
def test_distributed_evaluation_counts_each_image_once(store, single_runs, tmp_path):
    checkpoint = str(single_runs["0"] / "last.npz")
    results = []
    for ranks in (0, 2):
        code, output, _ = run(ranks, store, tmp_path / str(ranks), "--evaluate", "--resume", checkpoint)
        assert code == 0, output
        lines = [line for line in output.splitlines() if line.startswith("validation (")]
        assert len(lines) == 1, output
        results.append(lines[0])
    assert "centre crop, 15 images" in results[0]
    assert results[0] == results[1]


@needs_mpi
@pytest.mark.parametrize("how", ["raise", "kill"])
def test_a_failing_rank_ends_the_cli_run(store, tmp_path, how):
    code, output, seconds = run(2, store, tmp_path, "--epochs", "2",
                                env={"FAIL_RANK": "1", "FAIL_STEP": "3", "FAIL_HOW": how}, timeout=60)
    assert code != 0, output
    assert seconds < 30, f"the job took {seconds:.0f} s to end"
    if how == "raise":
        assert "error: rank 1 of 2 failed: No space left on device (injected)" in output, output
        assert "Traceback" not in output
    else:
        assert "signal 9" in output, output
    assert not os.path.exists(tmp_path / "rank0.json")  # rank 0 did not carry on alone


@needs_mpi
def test_a_diverged_loss_stops_every_rank_at_the_same_step_with_one_line(store, tmp_path):
    code, output, seconds = run(2, store, tmp_path, "--epochs", "1", "--lr", "1e30", "--weight-decay", "0", timeout=60)
    assert code == 1 and seconds < 30, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: the loss became "), output
    assert "no checkpoint was written before it" in errors[0]
    assert "MPI_Abort" not in output  # the ranks stopped together and left normally


@needs_mpi
def test_a_batch_the_ranks_do_not_divide_is_one_line(store, tmp_path):
    code, output, _ = run(2, store, tmp_path, "--epochs", "1", "--batch-size", "5")
    assert code == 2, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert errors == ["error: --batch-size: does not split over 2 ranks (expected a multiple of 2 vs 5): the batch "
                      "is the global one, each rank takes batch / ranks"], output
    assert not os.path.exists(tmp_path / "last.npz")


# -- the pieces, in one process --------------------------------------------------------------------

@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("workers", [0, 1])
@pytest.mark.parametrize("train, ten_crop", [(True, False), (False, False), (False, True)])
def test_the_sharded_loader_yields_each_ranks_rows_of_the_one_rank_batches(world_size, workers, train, ten_crop):
    split = common.make_split(13, 3)
    batch = 6 if world_size != 3 else 9  # 13 = 6 + 6 + 1 (ranks 1.. get no row of the last) or 9 + 4

    def batches(rank, size):
        with StoreLoader(split, batch, train=train, seed=4, crop=common.CROP, ten_crop=ten_crop, workers=workers,
                        rank=rank, world_size=size) as loader:
            loader.set_epoch(1)
            return [(x.copy(), y.copy()) for x, y in loader]

    whole = batches(0, 1)
    shards = [batches(r, world_size) for r in range(world_size)]
    assert all(len(s) == len(whole) for s in shards)  # every rank takes part in every step
    for b, (images, labels) in enumerate(whole):
        for r in range(world_size):
            start, stop = shard_bounds(len(labels), world_size, r)
            assert np.array_equal(shards[r][b][0], images[start:stop])  # the same crops, flips, PCA shifts
            assert np.array_equal(shards[r][b][1], labels[start:stop])
    assert len(shards[-1][-1][1]) == (0 if world_size == 2 else 1)


def test_batch_rows_draws_the_global_batch_masks():
    shape = (3, 5)
    whole = np.random.default_rng(1).random((8, 5)) >= 0.5
    with mt_random.use_generator(np.random.default_rng(1)) as g, mt_random.batch_rows(2, 5, 8):
        part = mt_random.keep_mask(shape, 0.5)
        after = g.random()
    assert np.array_equal(part, whole[2:5])
    reference = np.random.default_rng(1)
    reference.random((8, 5))
    assert after == reference.random()  # the generator moved past all 8 rows, as on every rank
    with mt_random.use_generator(np.random.default_rng(1)):  # outside the block: the batch's own shape
        assert np.array_equal(mt_random.keep_mask((8, 5), 0.5), whole)
    with pytest.raises(ValueError, match="need 0 <= start <= stop <= total"):
        with mt_random.batch_rows(3, 2, 8):
            pass


class FakeWorld:
    def __init__(self, rank, size, local_rank, local_size):
        self.rank, self.size, self.local_rank, self.local_size = rank, size, local_rank, local_size


def test_each_rank_takes_its_own_gpus(monkeypatch):
    monkeypatch.setattr(sys.modules["minitorch_alex.device"], "cuda_device_count", lambda: 4)
    one = FakeWorld(0, 1, 0, 1)
    assert train_ranks.rank_devices(("cuda:1",), one) == ("cuda:1",)
    assert train_ranks.rank_devices(("cuda:0",), FakeWorld(3, 4, 3, 4)) == ("cuda:3",)
    assert train_ranks.rank_devices(("cuda:0", "cuda:1"), FakeWorld(1, 2, 1, 2)) == ("cuda:2", "cuda:3")  # two towers each
    assert train_ranks.rank_devices(("cpu:0", "cpu:1"), FakeWorld(1, 2, 1, 2)) == ("cpu:0", "cpu:1")
    assert train_ranks.rank_devices(("cuda",), FakeWorld(1, 2, 1, 2)) == ("cuda:1",)  # a name parsed by Device: cuda is cuda:0
    with pytest.raises(UsageError, match=r"cuda:4 does not exist \(expected cuda:0..cuda:3 vs cuda:4\) "
                                         r"\[rank 2 is rank 2 of 3 on its node, each rank taking 2 GPU"):
        train_ranks.rank_devices(("cuda:0", "cuda:1"), FakeWorld(2, 3, 2, 3))


@needs_numba
def test_ranks_share_the_nodes_cores(monkeypatch):
    from minitorch_alex_kernels.cpu import parallel

    for var in ("MINITORCH_ALEX_NUM_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    calls = []
    monkeypatch.setattr(parallel, "limit_threads", calls.append)
    monkeypatch.setattr(train_ranks, "cpu_count", lambda: 16)
    assert train_ranks.threads_per_rank(FakeWorld(0, 1, 0, 1)) is None  # one process: as without mpiexec
    assert train_ranks.threads_per_rank(FakeWorld(5, 8, 1, 4)) == 4 and calls == [4]
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's setting wins
    assert train_ranks.threads_per_rank(FakeWorld(5, 8, 1, 4)) is None and calls == [4]


def test_usage_errors_are_reported_once_by_the_lowest_failing_rank():
    class Reducer(FakeWorld):
        def __init__(self, rank, failing):
            super().__init__(rank, 3, rank, 3)
            self.failing = failing

        def allreduce_(self, flags):
            flags[:] = [r in self.failing for r in range(self.size)]
            return flags

    error = UsageError("--device: cuda:3 does not exist")
    train_ranks.agree_on_usage(Reducer(1, set()), None)  # nobody failed: carry on
    with pytest.raises(UsageError, match=r"^rank 1 of 3: --device: cuda:3 does not exist$"):
        train_ranks.agree_on_usage(Reducer(1, {1, 2}), error)
    for rank in (0, 2):  # the others leave quietly with the same status
        with pytest.raises(train_ranks.Quiet) as quiet:
            train_ranks.agree_on_usage(Reducer(rank, {1, 2}), error if rank == 2 else None)
        assert quiet.value.status == 2
    with pytest.raises(UsageError, match=r"^--device: cuda:3"):  # rank 0's error carries no prefix
        train_ranks.agree_on_usage(Reducer(0, {0, 1}), error)



@needs_mpi
def test_bench_data_parallel_runs_and_keeps_the_reading(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# results\n\n## Data parallel on one machine (issue #15)\n\nold table\n\n"
                       "<!-- end of bench_data_parallel.py's table: a rerun replaces what is above, back to the heading -->\n"
                       "A reading written by hand.\n\n## Next section\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_data_parallel.py"), "--batch", "2",
                           "--steps", "1", "--warmup", "0", "--rounds", "1", "--threads", "2", "--out", str(results)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = results.read_text()
    assert "old table" not in text and text.count("## Data parallel on one machine") == 1
    for name in ("| 1 process | 2 |", "| 2 ranks, flat | 1 |", "| 2 ranks, buckets | 1 |", "| 2 ranks, overlap | 1 |"):
        assert name in text, name
    assert text.endswith("A reading written by hand.\n\n## Next section\n")


@needs_mpi
def test_a_signal_to_one_rank_stops_every_rank_after_the_same_step_and_rank_0_saves(tmp_path):
    from hostile_helpers import make_store

    from minitorch_alex.train import load_checkpoint

    store = make_store(tmp_path / "store", classes=3, train=7, val=5)
    out = tmp_path / "run"  # rank 1 gets SIGTERM during its step 2: its flag reaches every rank at step 3
    code, output, _ = run(2, store, out, "--epochs", "2", "--dropout", "0.5",
                          env={"FAIL_RANK": "1", "FAIL_STEP": "2", "FAIL_HOW": "sigterm"})
    assert code == 143, output
    lines = [line for line in output.splitlines() if line.startswith("interrupted")]
    assert len(lines) == 1 and lines[0].startswith(f"interrupted by SIGTERM: saved {out / 'last.npz'} "
                                                   "(epoch 1/2, step 3/6); resume with: mpiexec -n 2 python "), output
    meta = load_checkpoint(out / "last.npz")
    assert (meta["epoch"], meta["batch"], meta["step"]) == (0, 3, 3)
    assert not [n for n in os.listdir(out) if n.startswith(".tmp-")]
    straight = tmp_path / "straight"
    code, output, _ = run(2, store, straight, "--epochs", "2", "--dropout", "0.5")
    assert code == 0, output
    code, output, _ = run(2, store, out, "--epochs", "2", "--resume")
    assert code == 0, output
    a, b = weights(straight), weights(out)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


# ----- one run per --out ------------------------------------------------------------------------------
