"""scikit-learn's bundled 8x8 digits: the embedded default data set (no download, ever)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Split:
    """Train and validation tensors; images are ``(N, C, H, W)``, labels integer classes."""

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    n_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def digits(val_fraction: float = 0.2, dtype: torch.dtype = torch.float32) -> Split:
    """1797 images of 8x8 grey levels, standardised with the training mean and std.

    The split is stratified and fixed (same validation set on every machine and run).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x_tr, x_va, y_tr, y_va = train_test_split(
        bunch.data, bunch.target, test_size=val_fraction, stratify=bunch.target, random_state=0
    )
    mean, std = x_tr.mean(), x_tr.std()

    def images(a) -> Tensor:
        return torch.as_tensor((a - mean) / std, dtype=dtype).reshape(-1, 1, 8, 8)

    return Split(
        images(x_tr),
        torch.as_tensor(y_tr, dtype=torch.long),
        images(x_va),
        torch.as_tensor(y_va, dtype=torch.long),
        10,
    )
