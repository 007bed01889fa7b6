"""Downsampled ImageNet 32x32 (Chrabaszcz et al. 2017) from its npz batches.

``train_data_batch_1..10.npz`` and ``val_data.npz`` hold ``data`` (N, 3072) uint8, ``labels``
1-based and ``mean``. The 1.28 M training images go straight into one preallocated uint8
array, one batch file at a time (3.9 GB in all, never a second full copy). npz files are read
with ``allow_pickle=False``: they cannot run code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eqpop.data.base import DataError, Split, check_labels, make_split


def _arrays(path: Path, keys: tuple[str, ...]) -> list[np.ndarray]:
    """The named arrays of an npz file, or a ``DataError`` naming it."""
    if not path.is_file():
        raise DataError(path, "missing")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = set(keys) - set(npz.files)
            if missing:
                raise DataError(path, f"lacks key(s) {sorted(missing)}")
            return [npz[k] for k in keys]
    except DataError:
        raise
    except Exception as err:  # untrusted bytes: numpy's header parser raises many kinds
        raise DataError(path, f"corrupt npz ({type(err).__name__}: {err})") from None


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data, labels = _arrays(path, ("data", "labels"))
    labels = np.asarray(labels).reshape(-1)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(path, f"'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    if len(labels) != len(data):
        raise DataError(path, f"{len(labels)} labels for {len(data)} images")
    y = labels.astype(np.int64) - 1
    check_labels(path, y, 1000)
    return data, y


def imagenet32(data_dir: Path | str | None = None, n_train_files: int = 10) -> Split:
    if data_dir is None:
        raise DataError("imagenet32", "needs --data-dir (the folder of the npz batches)")
    root = Path(data_dir)
    paths = [root / f"train_data_batch_{i}.npz" for i in range(1, n_train_files + 1)]
    # first pass reads only the labels, to size the one image array
    total = sum(np.asarray(_arrays(p, ("labels",))[0]).size for p in paths)
    x_train = np.empty((total, 3, 32, 32), dtype=np.uint8)
    parts_y, filled = [], 0
    for p in paths:
        data, y = _read(p)
        if filled + len(data) > len(x_train):
            raise DataError(p, "holds more images than labels")
        x_train[filled : filled + len(data)] = data.reshape(-1, 3, 32, 32)
        filled += len(data)
        parts_y.append(y)
        del data
    x_val, y_val = _read(root / "val_data.npz")
    return make_split(
        "imagenet32",
        x_train[:filled],
        np.concatenate(parts_y),
        x_val.reshape(-1, 3, 32, 32),
        y_val,
        1000,
        scale=1 / 255,
    )
