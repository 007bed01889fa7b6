"""MNIST and Fashion-MNIST from their four IDX files (``.gz`` or raw), checked byte by byte."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from eqpop.data.base import DataError, Split, check_labels, make_split

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "val_images": "t10k-images-idx3-ubyte",
    "val_labels": "t10k-labels-idx1-ubyte",
}


def _open(data_dir: Path, stem: str) -> tuple[Path, bytes]:
    for path in (data_dir / stem, data_dir / f"{stem}.gz"):
        if path.is_file():
            try:
                raw = path.read_bytes()
                return path, gzip.decompress(raw) if path.suffix == ".gz" else raw
            except Exception as err:  # untrusted bytes: zlib, EOF, OS errors all mean "bad file"
                raise DataError(path, f"cannot read ({type(err).__name__}: {err})") from None
    raise DataError(data_dir / stem, "missing (looked for it raw and as .gz)")


def read_idx(path: Path, raw: bytes, ndim: int) -> np.ndarray:
    """An unsigned-byte IDX array: magic 0x0000 08 <ndim>, big-endian int32 dims, then data."""
    if len(raw) < 4 + 4 * ndim:
        raise DataError(path, "truncated header")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] != ndim:
        raise DataError(path, f"bad magic number {raw[:4].hex()} (expected 000008{ndim:02x})")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if len(raw) != expected:
        raise DataError(path, f"size {len(raw)} bytes, header promises {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _pair(data_dir: Path, images: str, labels: str) -> tuple[np.ndarray, np.ndarray]:
    ipath, iraw = _open(data_dir, FILES[images])
    lpath, lraw = _open(data_dir, FILES[labels])
    x = read_idx(ipath, iraw, 3)
    y = read_idx(lpath, lraw, 1)
    if x.shape[1:] != (28, 28):
        raise DataError(ipath, f"images are {x.shape[1]}x{x.shape[2]}, expected 28x28")
    if len(x) != len(y):
        raise DataError(lpath, f"{len(y)} labels for {len(x)} images")
    check_labels(lpath, y, 10)
    return x.reshape(-1, 1, 28, 28), y


def _load(name: str, data_dir: Path | str | None) -> Split:
    if data_dir is None:
        raise DataError(name, "needs --data-dir (the folder holding the four IDX files)")
    root = Path(data_dir)
    x_tr, y_tr = _pair(root, "train_images", "train_labels")
    x_va, y_va = _pair(root, "val_images", "val_labels")
    return make_split(name, x_tr, y_tr, x_va, y_va, 10, scale=1 / 255)


def mnist(data_dir: Path | str | None = None) -> Split:
    return _load("mnist", data_dir)


def fashion_mnist(data_dir: Path | str | None = None) -> Split:
    return _load("fashion_mnist", data_dir)
