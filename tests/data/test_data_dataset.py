"""The general DataLoader and TensorDataset (data/dataset.py), against torch.utils.data's behaviour."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minitorch_alex.data import DataLoader, StoreSplit, TensorDataset, default_collate


class Squares:
    """A user-defined map-style dataset: (x, x^2) for x in 0..n-1, plus a dict field."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return np.float32(i), {"square": np.array([i * i], np.int64)}


class Broken(Squares):
    def __getitem__(self, i):
        if i == 3:
            raise KeyError("sample 3 is unreadable")
        return super().__getitem__(i)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), batch_size=st.integers(1, 12), drop_last=st.booleans(), shuffle=st.booleans())
def test_batches_match_torch_sizes_and_cover_each_sample_once(n, batch_size, drop_last, shuffle):
    x = np.arange(n, dtype=np.float32).reshape(n, 1) * 10
    y = np.arange(n)
    ours = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, seed=1)
    theirs = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y)),
                                         batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
    got = list(ours)
    assert len(got) == len(ours) == len(theirs)
    assert [len(b[1]) for b in got] == [len(b[1]) for b in theirs]
    seen = np.concatenate([b[1] for b in got]) if got else np.array([], int)
    assert len(np.unique(seen)) == len(seen)  # no sample twice
    assert len(seen) == (n // batch_size * batch_size if drop_last else n)
    for bx, by in got:  # fields stay paired
        np.testing.assert_array_equal(bx[:, 0], by * 10.0)
    if not shuffle:
        np.testing.assert_array_equal(seen, np.arange(len(seen)))


def test_order_is_fixed_by_seed_and_epoch():
    ds = TensorDataset(np.arange(50))
    a, b = DataLoader(ds, 50, shuffle=True, seed=7), DataLoader(ds, 50, shuffle=True, seed=7)
    first = next(iter(a))[0]
    np.testing.assert_array_equal(first, next(iter(b))[0])
    assert not np.array_equal(first, np.arange(50))
    a.set_epoch(1)
    assert not np.array_equal(next(iter(a))[0], first)
    a.set_epoch(0)
    np.testing.assert_array_equal(next(iter(a))[0], first)


def test_user_dataset_collates_tuples_and_dicts():
    (x, d), = list(DataLoader(Squares(5), batch_size=5))
    np.testing.assert_array_equal(x, np.arange(5, dtype=np.float32))
    np.testing.assert_array_equal(d["square"], (np.arange(5) ** 2).reshape(5, 1))
    assert x.dtype == np.float32 and d["square"].shape == (5, 1)


def test_workers_give_the_batches_of_one_process():
    one = list(DataLoader(Squares(23), batch_size=4, shuffle=True, seed=3))
    with DataLoader(Squares(23), batch_size=4, shuffle=True, seed=3, workers=2) as loader:
        two = list(loader)
    assert len(one) == len(two) == 6
    for (xa, da), (xb, db) in zip(one, two):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(da["square"], db["square"])


def test_a_workers_error_reaches_the_caller():
    with DataLoader(Broken(8), batch_size=2, workers=2) as loader, pytest.raises(KeyError, match="sample 3"):
        list(loader)


def test_tensor_dataset_takes_mt_tensors():
    import minitorch_alex as mt
    ds = TensorDataset(mt.tensor(np.ones((4, 2), np.float32)), np.arange(4))
    assert ds[2][0].shape == (2,) and ds[2][1] == 2


@pytest.mark.parametrize("make, message", [
    (lambda: TensorDataset(np.zeros(3), np.zeros(4)), r"same first dimension, got shapes \(3,\), \(4,\)"),
    (lambda: TensorDataset(), "at least one array"),
    (lambda: DataLoader(TensorDataset(np.zeros(3)), batch_size=0), "batch_size an integer >= 1, got 0"),
    (lambda: DataLoader(TensorDataset(np.zeros(3)), workers=-1), "workers an integer >= 0, got -1"),
    (lambda: DataLoader([1, 2, 3][0], batch_size=1), "expected a dataset with __len__ and __getitem__, got int"),
    (lambda: DataLoader(StoreSplit(np.zeros((2, 8, 8, 3), np.uint8), np.zeros(2, np.int64), np.zeros((8, 8, 3)),
                                   np.ones(3), np.eye(3)), batch_size=1),
     "expected a dataset of samples, got a packed StoreSplit; batch it with minitorch_alex.data.StoreLoader"),
    (lambda: default_collate([(1, 2), (3,)]), "samples of 2 fields each, got"),
])
def test_bad_arguments_are_one_line_errors(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()
