"""minitorch_alex.distributed: the sharded sampler, the gradient averager, the world of one,
and 2-rank jobs under ``mpiexec`` (skipped when mpi4py or mpiexec is missing; the ``dev``
extra installs both through the ``dist`` extra)."""
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from needs import needs_mpi
from paths import ROOT

import minitorch_alex as mt
import minitorch_alex.distributed as dist
import minitorch_alex.nn.functional as F
from minitorch_alex.data.loader import StoreLoader, epoch_order
from minitorch_alex.distributed import world as world_module

SCRIPTS = os.path.join(ROOT, "tests", "distributed", "dist_scripts")
sys.path.insert(0, SCRIPTS)
import common  # noqa: E402  (tests/distributed/dist_scripts/common.py: shared with the mpiexec scripts)

# the ranks run the reference backend (see mpiexec below), so the single-process side does too
pytestmark = pytest.mark.usefixtures("reference_backend")



def mpiexec(n, script, *args, timeout=120):
    """Run ``mpiexec -n n python tests/distributed/dist_scripts/script args``; (returncode, output, seconds)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
               MINITORCH_ALEX_BACKEND="reference", OMP_NUM_THREADS="1")
    for var in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK"):
        env.pop(var, None)  # pytest itself may run under a launcher
    start = time.monotonic()
    proc = subprocess.run(["mpiexec", "-n", str(n), sys.executable, os.path.join(SCRIPTS, script), *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start


# -- the sharded sampler -----------------------------------------------------------------------

@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("n", [0, 1, 2, 7, 12, 13, 25])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_shards_the_one_rank_batches(world_size, n, drop_last):
    batch = 4 * world_size if world_size != 2 else 6
    samplers = [dist.ShardedSampler(n, batch, seed=5, drop_last=drop_last, rank=r, world_size=world_size)
                for r in range(world_size)]
    one_rank = dist.ShardedSampler(n, batch, seed=5, drop_last=drop_last, rank=0, world_size=1)
    for epoch in (0, 1):
        order = epoch_order(n, 5, epoch, True)
        for s in samplers + [one_rank]:
            s.set_epoch(epoch)
        per_rank = [list(s) for s in samplers]
        assert all(len(shards) == len(one_rank) for shards in per_rank)  # every rank joins every step
        for b, whole in enumerate(one_rank):
            parts = [shards[b] for shards in per_rank]
            # the ranks' rows, in rank order, are the 1-rank global batch: the loader's order
            assert np.array_equal(np.concatenate([p.indices for p in parts]), whole.indices)
            assert np.array_equal(whole.indices, order[b * batch:(b + 1) * batch])
            assert sum(p.weight for p in parts) == pytest.approx(1.0)
            if len(whole) == batch:
                assert all(len(p) == batch // world_size for p in parts)
            assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1
        seen = np.concatenate([s.indices for shards in per_rank for s in shards] + [np.zeros(0, np.int64)])
        expected = n // batch * batch if drop_last else n
        assert len(seen) == expected and len(np.unique(seen)) == expected  # each sample once per epoch
        if not drop_last:
            assert np.array_equal(np.sort(seen), np.arange(n))


def test_sampler_rejects_a_batch_the_ranks_do_not_divide():
    with pytest.raises(ValueError, match="global batch size 128 must be a multiple of the number of ranks 3"):
        dist.ShardedSampler(1000, 128, rank=0, world_size=3)
    with pytest.raises(ValueError, match="rank must be in 0..1"):
        dist.ShardedSampler(1000, 128, rank=2, world_size=2)


def test_sampler_resumes_mid_epoch():
    s = dist.ShardedSampler(30, 4, seed=1, rank=1, world_size=2)
    s.set_epoch(3)
    full = list(s)
    s.set_epoch(3, start_batch=5)
    assert [x.indices.tolist() for x in s] == [x.indices.tolist() for x in full[5:]]


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("train, ten_crop", [(True, False), (False, False), (False, True)])
def test_shard_batch_gives_the_loader_rows(world_size, train, ten_crop):
    split = common.make_split(14, 3)
    loader = StoreLoader(split, 6, train=train, seed=9, crop=common.CROP, ten_crop=ten_crop)
    loader.set_epoch(2)
    samplers = [dist.ShardedSampler(14, 6, seed=9, shuffle=train, rank=r, world_size=world_size)
                for r in range(world_size)]
    for s in samplers:
        s.set_epoch(2)
    for b, (images, labels) in enumerate(loader):  # the same crops, flips and PCA shifts, bit for bit
        parts = [dist.shard_batch(split, s.shard(b), 9, train=train, crop=common.CROP, ten_crop=ten_crop)
                 for s in samplers]
        assert np.array_equal(np.concatenate([p[0] for p in parts]), images)
        assert np.array_equal(np.concatenate([p[1] for p in parts]), labels)


# -- the world of one ----------------------------------------------------------------------------

@pytest.fixture
def fresh_world(monkeypatch):
    """A world made anew by the test, without launcher variables; restored afterwards."""
    for var in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(world_module, "_world", None)
    yield monkeypatch


def test_a_single_process_needs_no_mpi4py(fresh_world):
    fresh_world.setitem(sys.modules, "mpi4py", None)  # importing it would fail
    world = dist.init()
    assert (world.rank, world.size, world.local_rank, world.comm) == (0, 1, 0, None)
    assert (dist.rank(), dist.world_size(), dist.local_rank(), dist.is_main()) == (0, 1, 0, True)
    model = common.make_model(0)
    F.cross_entropy(model(mt.tensor(np.ones((2, 3, 8, 8)))), [0, 1]).backward()
    grads = [p.grad for p in model.parameters()]
    before = [g.data.copy() for g in grads]
    averager = dist.GradientAverager(model.parameters(), mode="overlap")
    averager.begin()
    averager.finish()  # nothing copied, nothing changed
    assert all(p.grad is g and np.array_equal(g.data, b) for p, g, b in zip(model.parameters(), grads, before))
    assert "_add_grad" not in model[0].weight.__dict__  # no hook in a world of one
    assert dist.all_reduce_sum([3, 4]).tolist() == [3, 4]


def test_a_launcher_without_mpi4py_is_a_clear_error(fresh_world):
    fresh_world.setitem(sys.modules, "mpi4py", None)
    fresh_world.setenv("PMI_RANK", "0")
    fresh_world.setenv("PMI_SIZE", "4")
    with pytest.raises(RuntimeError, match="MPI launcher with 4 ranks, but mpi4py is not installed"):
        dist.init()


# -- the gradient averager, on a fake communicator ----------------------------------------------

class TwinComm:
    """A world of two whose other rank has exactly our gradients: the sum is twice ours.
    Records each collective and whether it was issued during backward."""

    size, rank = 2, 0

    def __init__(self):
        self.calls, self.in_backward = [], False

    def allreduce_(self, buf):
        self.calls.append(("allreduce", buf.size, self.in_backward))
        buf *= 2
        return buf

    def iallreduce_(self, buf):
        self.calls.append(("iallreduce", buf.size, self.in_backward))
        buf *= 2
        return world_module._Done()


def _loss(model):
    x = mt.tensor(np.random.default_rng(0).normal(size=(3, 3, 8, 8)))
    return F.cross_entropy(model(x), [0, 1, 4])


def _reference_grads():
    model = common.make_model(1)
    _loss(model).backward()
    return [p.grad.data.copy() for p in model.parameters()]


@pytest.mark.parametrize("mode", dist.MODES)
def test_averager_modes(mode):
    expected, model, comm = _reference_grads(), common.make_model(1), TwinComm()
    averager = dist.GradientAverager(model.parameters(), comm=comm, mode=mode, bucket_mb=0.002)
    for _ in range(2):  # two steps: the buffers and hooks are reused
        comm.calls.clear()
        for p in model.parameters():
            p.grad = None
        averager.begin()  # weight 1/2: twice half our gradient is our gradient
        comm.in_backward = True
        _loss(model).backward()
        comm.in_backward = False
        averager.finish()
        for p, g in zip(model.parameters(), expected):
            np.testing.assert_allclose(p.grad.data, g, rtol=1e-15)
        sizes = [n for _, n, _ in comm.calls]
        assert sum(sizes) == sum(p.size for p in model.parameters())  # every gradient sent once
        if mode == "flat":
            assert [kind for kind, _, _ in comm.calls] == ["allreduce"]  # one flat buffer per step
        else:
            assert len(comm.calls) == len(averager.buckets) > 2
        launched_early = [early for _, _, early in comm.calls]
        # overlap: all but the first layer's bucket leave while backward still runs
        assert any(launched_early) == (mode == "overlap")
    averager.close()
    assert "_add_grad" not in model[0].weight.__dict__


def test_averager_weights_and_missing_gradients():
    model = common.make_model(1)
    comm = TwinComm()
    averager = dist.GradientAverager(model.parameters(), comm=comm, mode="buckets")
    with averager.sync(weight=0.0):  # an empty shard: no backward here
        pass
    assert all(p.grad is not None and not p.grad.data.any() for p in model.parameters())
    expected = _reference_grads()
    with averager.sync(weight=0.25):
        _loss(model).backward()
    for p, g in zip(model.parameters(), expected):
        np.testing.assert_allclose(p.grad.data, 0.5 * g, rtol=1e-15)  # 2 x 0.25


def test_overlap_refuses_a_parameter_used_twice():
    lin = mt.nn.Linear(4, 4, dtype=np.float64)
    averager = dist.GradientAverager(lin.parameters(), comm=TwinComm(), mode="overlap")
    averager.begin()
    x = mt.tensor(np.ones((2, 4)))
    with pytest.raises(RuntimeError, match="second gradient in one backward.*use mode='buckets'"):
        (lin(lin(x)).sum()).backward()


def test_averager_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mode must be one of"):
        dist.GradientAverager(common.make_model(0).parameters(), comm=TwinComm(), mode="ring")
    with pytest.raises(ValueError, match="empty parameter list"):
        dist.GradientAverager([], comm=TwinComm())


# -- real 2-rank jobs ----------------------------------------------------------------------------

@needs_mpi
def test_two_ranks_train_as_one_process(tmp_path):
    code, output, _ = mpiexec(2, "train_equivalence.py", str(tmp_path))
    assert code == 0, output
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in (0, 1)]
    assert int(ranks[0]["world_size"]) == 2
    assert [int(r["local_rank"]) for r in ranks] == [0, 1]  # one node: the local rank is the rank
    train, val = common.make_split(common.N_TRAIN, 1), common.make_split(common.N_VAL, 2)
    single = common.train_single(train)  # the ordinary StoreLoader, one process
    reference = common.parameters(single)
    initial = common.parameters(common.make_model(100))
    for mode in dist.MODES:
        for name, value in reference.items():
            assert not np.allclose(value, initial[name])  # the 6 steps moved every parameter
            for r in ranks:
                np.testing.assert_allclose(r[f"{mode}/{name}"], value, rtol=1e-10, atol=0,
                                           err_msg=f"{mode} {name}")
            assert np.array_equal(ranks[0][f"{mode}/{name}"], ranks[1][f"{mode}/{name}"])
        # distributed validation: every image counted once, the single-process numbers
        single_val = common.evaluate(single, val)
        for r in ranks:
            assert r[f"{mode}/val"].tolist() == single_val.tolist()
    assert single_val[1] == common.N_VAL
    # float32: equal up to rounding (the ranks sum their halves of each batch in another order)
    for name, value in common.parameters(common.train_single(train, np.float32)).items():
        for r in ranks:
            np.testing.assert_allclose(r[f"float32/{name}"], value, rtol=1e-5, atol=5e-6, err_msg=name)


@needs_mpi
@pytest.mark.parametrize("how", ["raise", "thread", "kill"])
def test_a_failing_rank_ends_the_job(how):
    code, output, seconds = mpiexec(2, "fail_rank.py", how, timeout=60)
    assert code != 0, output
    assert seconds < 30, f"the job took {seconds:.0f} s to end"
    assert "the failure went unnoticed" not in output
    if how != "kill":
        assert "rank 1 of 2 failed" in output and "rank 1 failed on purpose" in output, output
    else:
        assert "signal 9" in output, output  # MPICH: "Killed (signal 9)"; Open MPI: "exited on signal 9"
        killed = re.search(r"PID (\d+) RUNNING", output)  # MPICH names the process by pid only ...
        if killed:  # ... and rank 0's start-up line says which rank had that pid
            assert re.search(rf"\b1: pid {killed.group(1)} on ", output), output
        else:  # Open MPI: "process rank 1 with PID ..."
            assert "rank 1" in output, output


@needs_mpi
def test_bench_allreduce_runs():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_allreduce.py"), "--count", "1000",
                           "--repeat", "1", "--bucket-mb", "0.001"], capture_output=True, text=True, timeout=120,
                          env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "one Allreduce" in proc.stdout and "4 x Iallreduce of 0.001 MB" in proc.stdout
    assert "244 MB of float32 gradients" in proc.stdout and "256    100" in proc.stdout  # on paper


def test_overlap_hook_stays_with_its_parameter():
    import copy

    model = common.make_model(1)
    averager = dist.GradientAverager(model.parameters(), comm=TwinComm(), mode="overlap", bucket_mb=0.002)
    twin = copy.deepcopy(model)  # e.g. an EMA or a checkpoint copy: its gradients are its own
    averager.begin()
    _loss(twin).backward()
    assert all(p.grad is None for p in model.parameters())
    assert all(b.ready == 0 for b in averager.buckets)
    _loss(model).backward()
    averager.finish()
    for p, g in zip(model.parameters(), _reference_grads()):
        np.testing.assert_allclose(p.grad.data, g, rtol=1e-15)


@needs_mpi
def test_two_ranks_evaluate_and_checkpoint_rank_0s_running_statistics(tmp_path):
    """Buffers are not gradients: each rank's batch norm sees its own rows; the Trainer gives every
    rank rank 0's running statistics before evaluating (as DDP's broadcast_buffers), so the ranks
    agree with each other and with the checkpoint."""
    code, output, _ = mpiexec(2, "trainer_buffers.py", str(tmp_path))
    assert code == 0, output
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in (0, 1)]
    checkpoint = mt.load(tmp_path / "last.npz", state_dict=True)
    for name in ("1.running_mean", "1.running_var"):
        assert not np.allclose(ranks[0][name], 0 if "mean" in name else 1)  # the epoch moved them
        np.testing.assert_array_equal(ranks[1][name], ranks[0][name], err_msg=name)
        np.testing.assert_array_equal(checkpoint[name], ranks[0][name], err_msg=name)
