"""Downsampled ImageNet 32x32 (Chrabaszcz et al. 2017), from either of its two releases.

Both hold ``train_data_batch_1..10`` and ``val_data``, each a dict of ``data`` (N, 3072) uint8
(channel-planar), ``labels`` 1-based and ``mean``: as npz files (``.npz``, read with
``allow_pickle=False``) or as Python pickles (no extension, read with the restricted
unpickler of ``eqpop.data.pickles``); neither can run code. The files in the folder tell which
release it holds. The 1.28 M training images end in one uint8 array (3.9 GB), never with a
second full copy of them alive (see ``_train``).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np

from eqpop.data.base import DataError, Split, check_labels, make_split
from eqpop.data.pickles import load_pickle


def _npz_arrays(path: Path, keys: tuple[str, ...]) -> list[np.ndarray]:
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


def _pickled_arrays(path: Path, keys: tuple[str, ...]) -> list[object]:
    """The named entries of a pickled batch (whatever they are: ``_read`` checks them)."""
    d = load_pickle(path, "ImageNet32")
    missing = set(keys) - d.keys()
    if missing:
        raise DataError(path, f"lacks key(s) {sorted(missing)}")
    return [d[k] for k in keys]


# release -> (file-name suffix, reader)
_RELEASES: dict[str, tuple[str, Callable[[Path, tuple[str, ...]], list]]] = {
    "npz": (".npz", _npz_arrays),
    "pickled": ("", _pickled_arrays),
}


def _read(path: Path, release: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch's images (N, 3072) and 0-based labels, checked."""
    data, labels = _RELEASES[release][1](path, ("data", "labels"))
    if not isinstance(data, np.ndarray):
        raise DataError(path, f"'data' is a {type(data).__name__}, expected uint8 (N, 3072)")
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(path, f"'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    try:  # a pickle's labels may be any object: a ragged list makes numpy raise
        labels = np.asarray(labels).reshape(-1)
        integers = np.issubdtype(labels.dtype, np.integer)
    except (TypeError, ValueError):
        integers = False
    if not integers:
        raise DataError(path, "'labels' must hold one integer per image")
    if len(labels) != len(data):
        raise DataError(path, f"{len(labels)} labels for {len(data)} images")
    y = labels.astype(np.int64) - 1
    check_labels(path, y, 1000)
    return data, y


def _release(root: Path) -> str:
    """The release whose first training batch is in ``root`` (npz when both are)."""
    for release, (suffix, _) in _RELEASES.items():
        if (root / f"train_data_batch_1{suffix}").is_file():
            return release
    if not root.is_dir():
        found = "not a folder"
    else:
        names = sorted(p.name + "/" * p.is_dir() for p in root.iterdir())
        more = f" and {len(names) - 5} more" if len(names) > 5 else ""
        found = f"found {', '.join(names[:5])}{more}" if names else "the folder is empty"
    raise DataError(
        root,
        "holds neither release of Downsampled ImageNet 32x32: looked for "
        f"train_data_batch_1.npz (npz) or train_data_batch_1 (pickled); {found}",
    )


def _files(root: Path, release: str, n_train_files: int) -> tuple[list[Path], Path]:
    """The training batches and validation file, all checked present before any is read."""
    suffix = _RELEASES[release][0]
    paths = [root / f"train_data_batch_{i}{suffix}" for i in range(1, n_train_files + 1)]
    for p in paths:
        if not p.is_file():
            pattern = re.compile(rf"train_data_batch_(\d+){re.escape(suffix)}")
            found = sorted(int(m[1]) for f in root.iterdir() if (m := pattern.fullmatch(f.name)))
            raise DataError(
                p, f"missing; of the {release} release the folder holds batches {found}"
            )
    val = root / f"val_data{suffix}"
    if not val.is_file():
        raise DataError(val, f"missing (the validation file of the {release} release)")
    return paths, val


def _train(paths: list[Path], release: str) -> tuple[np.ndarray, np.ndarray]:
    """All training images in one preallocated uint8 array, and their labels."""
    if release == "npz":
        # a first pass reads only the labels, to size the one image array
        total = sum(np.asarray(_npz_arrays(p, ("labels",))[0]).size for p in paths)
        parts = (_read(p, release) for p in paths)
    else:
        # a pickle is unpickled whole, so counting first would unpickle everything twice
        # (slow). Each file is unpickled once and its arrays kept; each is dropped as soon as
        # it is copied into the one array, whose pages (np.empty) are only committed as they
        # are written: about one full copy plus one batch is ever held.
        loaded = deque(_read(p, release) for p in paths)
        total = sum(len(data) for data, _ in loaded)
        parts = (loaded.popleft() for _ in range(len(loaded)))
    x = np.empty((total, 3, 32, 32), dtype=np.uint8)
    ys, filled = [], 0
    for p, (data, y) in zip(paths, parts):
        if filled + len(data) > total:
            raise DataError(p, "holds more images than labels")
        x[filled : filled + len(data)] = data.reshape(-1, 3, 32, 32)
        filled += len(data)
        ys.append(y)
        del data
    return x[:filled], np.concatenate(ys)


def imagenet32(data_dir: Path | str | None = None, n_train_files: int = 10) -> Split:
    """The folder's release, npz or pickled; ``n_train_files`` < 10 reads only the first ones."""
    if data_dir is None:
        raise DataError("imagenet32", "needs --data-dir (the folder of the npz or pickled batches)")
    root = Path(data_dir)
    release = _release(root)
    paths, val = _files(root, release, n_train_files)
    x_train, y_train = _train(paths, release)
    x_val, y_val = _read(val, release)
    return make_split(
        "imagenet32",
        x_train,
        y_train,
        x_val.reshape(-1, 3, 32, 32),
        y_val,
        1000,
        scale=1 / 255,
    )
