"""Every data reader fed mutated and random bytes (hypothesis): it loads consistent arrays or
refuses with a DataError naming the file; never another exception, never code run."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_loaders import write_cifar10, write_folder, write_idx, write_imagenet

from eqpop.data import load_dataset
from eqpop.data.base import DataError

FORMATS: dict[str, tuple[Callable[[Path], object], str]] = {
    "mnist": (write_idx, "mnist"),
    "mnist-gz": (lambda root: write_idx(root, gz=True), "mnist"),
    "cifar10": (write_cifar10, "cifar10"),
    "imagenet32": (lambda root: write_imagenet(root), "imagenet32"),
    "imagenet32-pickled": (lambda root: write_imagenet(root, "pickle"), "imagenet32"),
    "imagefolder": (write_folder, "imagefolder"),
}
mutation = st.tuples(
    st.sampled_from(sorted(FORMATS)),
    st.integers(0, 10_000),  # which file
    st.floats(0, 1),  # where in it
    st.one_of(st.binary(min_size=1, max_size=16), st.none()),  # overwrite, or truncate there
    st.booleans(),  # or replace the whole file by random bytes
    st.binary(max_size=200),
)


def _mutate(path: Path, where: float, patch: bytes | None, replace: bool, noise: bytes) -> None:
    data = path.read_bytes()
    at = int(where * len(data))
    if replace:
        data = noise
    elif patch is None:
        data = data[:at]
    else:
        data = data[:at] + patch + data[at + len(patch) :]
    path.write_bytes(data)


def _check(split) -> None:
    assert len(split.x_train) == len(split.y_train) and len(split.x_val) == len(split.y_val)
    assert int(split.y_train.min()) >= 0 and int(split.y_train.max()) < split.n_classes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutation)
def test_mutated_files_load_or_are_refused_with_a_data_error(case):
    fmt, pick, where, patch, replace, noise = case
    write, name = FORMATS[fmt]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write(root)
        files = sorted(p for p in root.rglob("*") if p.is_file())
        victim = files[pick % len(files)]
        _mutate(victim, where, patch, replace, noise)
        try:
            split = load_dataset(name, root)
        except DataError as err:
            assert "\n" not in str(err) and str(err)
            return
        _check(split)


@pytest.mark.parametrize(
    "name, write, victim",
    [
        ("cifar10", write_cifar10, "data_batch_3"),
        ("imagenet32", partial(write_imagenet, release="pickle"), "train_data_batch_3"),
    ],
)
@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=4096))
def test_random_bytes_as_a_pickle_never_run_and_never_crash(name, write, victim, noise):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write(root, **{victim: noise})
        with pytest.raises(DataError, match=victim):
            load_dataset(name, root)
