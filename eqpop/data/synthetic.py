"""Random labelled images of any shape, for benchmarks and smoke tests (nothing to learn)."""

from __future__ import annotations

import numpy as np

from eqpop.data.base import Split, make_split


def synthetic(
    data_dir: object = None,
    shape: tuple[int, int, int] = (3, 32, 32),
    n_train: int = 2048,
    n_val: int = 512,
    n_classes: int = 10,
    seed: int = 0,
) -> Split:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n_train + n_val, *shape), dtype=np.uint8)
    y = rng.integers(0, n_classes, size=n_train + n_val)
    return make_split(
        "synthetic", x[:n_train], y[:n_train], x[n_train:], y[n_train:], n_classes, scale=1 / 255
    )
