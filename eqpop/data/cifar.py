"""CIFAR-10 and CIFAR-100 from the python-pickle batches, read with a restricted unpickler.

A pickle is a program: ``pickle.load`` on a user's file runs whatever it says. The unpickler
here resolves only the few numpy names an array needs, so a pickle that tries anything else
is refused before any of it runs; the result must then be the expected dict of arrays.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from eqpop.data.base import DataError, Split, check_labels, make_split

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _Refused(pickle.UnpicklingError):
    """The pickle names something other than the plain numpy pieces of an array."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise _Refused(f"refused to load {module}.{name}")
        return super().find_class(module, name)


def load_pickle(path: Path) -> dict:
    """A CIFAR batch dict with ``bytes`` keys; anything else is a ``DataError``."""
    if not path.is_file():
        raise DataError(path, "missing")
    try:
        obj = _RestrictedUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except _Refused as err:
        raise DataError(path, f"not a plain CIFAR pickle: {err}") from None
    except Exception as err:  # truncated or garbled: EOFError, ValueError, struct errors...
        raise DataError(path, f"corrupt pickle ({type(err).__name__}: {err})") from None
    if not isinstance(obj, dict):
        raise DataError(path, f"expected a dict, found {type(obj).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _batch(path: Path, label_key: str, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    d = load_pickle(path)
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
