"""CIFAR-10 and CIFAR-100 from the python-pickle batches.

They are read with the restricted unpickler of ``eqpop.data.pickles``, which refuses a pickle
that tries to run code; the result must then be the expected dict of arrays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eqpop.data.base import DataError, Split, check_labels, make_split
from eqpop.data.pickles import load_pickle


def _batch(path: Path, label_key: str, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    d = load_pickle(path, "CIFAR")
    data, labels = d.get("data"), d.get(label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        raise DataError(path, "'data' is not a uint8 array")
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(path, f"'data' has shape {data.shape}, expected (N, 3072)")
    if not isinstance(labels, list | np.ndarray):
        raise DataError(path, f"'{label_key}' missing or not a list")
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != len(data) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(path, f"'{label_key}' must hold one integer per image")
    check_labels(path, y, n_classes)
    return data.reshape(-1, 3, 32, 32), y


def _load(name, data_dir, folder, train_files, val_files, label_key, n_classes) -> Split:
    if data_dir is None:
        raise DataError(name, f"needs --data-dir (the folder holding {folder}/)")
    root = Path(data_dir)
    root = root / folder if (root / folder).is_dir() else root
    train = [_batch(root / f, label_key, n_classes) for f in train_files]
    val = [_batch(root / f, label_key, n_classes) for f in val_files]
    return make_split(
        name,
        np.concatenate([x for x, _ in train]),
        np.concatenate([y for _, y in train]),
        np.concatenate([x for x, _ in val]),
        np.concatenate([y for _, y in val]),
        n_classes,
        scale=1 / 255,
    )


def cifar10(data_dir: Path | str | None = None) -> Split:
    files = [f"data_batch_{i}" for i in range(1, 6)]
    return _load("cifar10", data_dir, "cifar-10-batches-py", files, ["test_batch"], "labels", 10)


def cifar100(data_dir: Path | str | None = None) -> Split:
    return _load("cifar100", data_dir, "cifar-100-python", ["train"], ["test"], "fine_labels", 100)
