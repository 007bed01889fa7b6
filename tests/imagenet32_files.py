"""Tiny Downsampled ImageNet 32x32 data sets in the layout of either release (tests only)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def write_imagenet32(
    root: Path, release: str, per_batch: int = 4, n_val: int = 6, seed: int = 0
) -> None:
    """``train_data_batch_1..10`` and ``val_data`` in ``root``, as the published ``"npz"`` files
    or as the ``"pickle"`` files (a dict per file, labels a list, as the release's scripts
    wrote them); the same seed writes the same images and labels (1..1000) in either."""
    if release not in ("npz", "pickle"):
        raise ValueError(f"release: {release!r}, expected 'npz' or 'pickle'")
    rng = np.random.default_rng(seed)
    sizes = {f"train_data_batch_{i}": per_batch for i in range(1, 11)} | {"val_data": n_val}
    data = {name: rng.integers(0, 256, (n, 3072), dtype=np.uint8) for name, n in sizes.items()}
    labels = {name: rng.integers(1, 1001, n) for name, n in sizes.items()}
    train = [data[name] for name in sizes if name != "val_data"]
    mean = np.concatenate(train).mean(axis=0)  # as released: the training set's mean image
    root.mkdir(parents=True, exist_ok=True)
    for name in sizes:
        if release == "npz":
            np.savez(root / f"{name}.npz", data=data[name], labels=labels[name], mean=mean)
        else:
            d = {"data": data[name], "labels": labels[name].tolist(), "mean": mean}
            # protocol 3: Python 3's default when the release was pickled (2017)
            (root / name).write_bytes(pickle.dumps(d, protocol=3))
