"""scikit-learn's bundled 8x8 digits: the embedded default data set (no download, ever)."""

from __future__ import annotations

import numpy as np

from eqpop.data.base import Split, make_split


def digits(data_dir: object = None, val_fraction: float = 0.2) -> Split:
    """1797 images of 8x8 grey levels 0-16, with a fixed stratified train/validation split
    (the same validation set on every machine and run). ``data_dir`` is ignored."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = bunch.images.astype(np.uint8).reshape(-1, 1, 8, 8)
    x_tr, x_va, y_tr, y_va = train_test_split(
        images, bunch.target, test_size=val_fraction, stratify=bunch.target, random_state=0
    )
    return make_split("digits", x_tr, y_tr, x_va, y_va, 10, scale=1 / 16)
