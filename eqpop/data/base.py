"""Data held as compact tensors (uint8 images where the format has them) and served in batches.

Images stay in their stored dtype until a batch is drawn: normalisation and augmentation run
per batch, on the batch's device. When the data fit, the whole raw array moves to the device
once, so an epoch makes no host-to-device copies.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from eqpop.errors import UserError


class DataError(UserError):
    """A data file is missing, truncated or not what its format promises. Names the file."""

    def __init__(self, path: Path | str, problem: str):
        # one line even when the underlying error's message has several (pickle's do)
        super().__init__(re.sub(r"\s*[\r\n]+\s*", " ", f"{path}: {problem}"))


@dataclass
class Split:
    """Train and validation images ``(N, C, H, W)`` with integer labels.

    ``x`` arrays are raw (uint8 0-255, or float already scaled); ``scale`` maps them to [0, 1]
    and ``mean``/``std`` (per channel, from the training set) standardise them.
    """

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    n_classes: int
    mean: Tensor
    std: Tensor
    scale: float = 1.0
    name: str = ""

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def prepared(self, inputs: str = "standardise", train_subset: int | None = None) -> Split:
        """This split as a run asks for it: ``inputs="unit"`` keeps pixels in [0, 1] (mean 0,
        std 1, so ``normalise`` only scales); ``train_subset`` keeps that many training images,
        a draw fixed by seed 0 so that every run and seed trains on the same ones."""
        if inputs not in ("standardise", "unit"):
            raise ValueError(f"inputs: unknown {inputs!r}; choose standardise or unit")
        split = self
        if inputs == "unit":
            split = replace(split, mean=torch.zeros_like(self.mean), std=torch.ones_like(self.std))
        if train_subset is not None:
            n = len(self.y_train)
            if not 1 <= train_subset <= n:
                raise ValueError(
                    f"train_subset: {self.name} has {n} training images, got {train_subset}"
                )
            keep = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:train_subset]
            split = replace(split, x_train=self.x_train[keep], y_train=self.y_train[keep])
        return split

    def fingerprint(self, rows: int = 4096) -> str:
        """A cheap hash of the data as loaded, so that a run resumed on other images is noticed:
        every label, the per-channel statistics of the whole training set, and ``rows`` images
        of each array, evenly spaced (milliseconds even for ImageNet32's 1.28 M images)."""
        digest = hashlib.blake2b(digest_size=8)
        digest.update(f"{self.name} {self.n_classes} {self.scale!r}".encode())
        for x, y in ((self.x_train, self.y_train), (self.x_val, self.y_val)):
            digest.update(f"{tuple(x.shape)} {x.dtype}".encode())
            picked = torch.linspace(0, len(x) - 1, min(rows, len(x))).long()
            for part in (x[picked], y, self.mean, self.std):
                digest.update(part.contiguous().numpy().tobytes())
        return digest.hexdigest()

    def normalise(self, x: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        shape = (1, -1, 1, 1)
        mean, std = (
            self.mean.to(x.device, dtype).view(shape),
            self.std.to(x.device, dtype).view(shape),
        )
        return (x.to(dtype) * self.scale - mean) / std


def channel_stats(x: np.ndarray, scale: float, chunk: int = 65536) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std of ``x * scale`` in float64, a chunk at a time (no big copies)."""
    c = x.shape[1]
    total = np.zeros(c)
    sq = np.zeros(c)
    count = 0
    for i in range(0, len(x), chunk):
        part = x[i : i + chunk].astype(np.float64) * scale
        total += part.sum(axis=(0, 2, 3))
        sq += (part**2).sum(axis=(0, 2, 3))
        count += part.shape[0] * part.shape[2] * part.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(sq / count - mean**2, 1e-12))
    return torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)


def make_split(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    n_classes: int,
    scale: float,
) -> Split:
    mean, std = channel_stats(x_train, scale)
    return Split(
        # contiguous and writable (a read-only buffer, e.g. from raw IDX bytes, is copied once)
        torch.from_numpy(np.require(x_train, requirements=["C", "W"])),
        torch.from_numpy(np.asarray(y_train, dtype=np.int64)),
        torch.from_numpy(np.require(x_val, requirements=["C", "W"])),
        torch.from_numpy(np.asarray(y_val, dtype=np.int64)),
        n_classes,
        mean,
        std,
        scale,
        name,
    )


def check_labels(path: Path | str, labels: np.ndarray, n_classes: int) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(path, f"labels out of range 0..{n_classes - 1}")


def random_crop_flip(x: Tensor, padding: int, generator: torch.Generator | None) -> Tensor:
    """The usual CIFAR augmentation: zero-pad, crop back at a random offset, flip half of them."""
    b, c, h, w = x.shape
    dev = x.device
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    i = torch.randint(0, 2 * padding + 1, (b,), generator=generator).to(dev)
    j = torch.randint(0, 2 * padding + 1, (b,), generator=generator).to(dev)
    rows = (i[:, None] + torch.arange(h, device=dev))[:, None, :, None]
    cols = (j[:, None] + torch.arange(w, device=dev))[:, None, None, :]
    out = padded[
        torch.arange(b, device=dev)[:, None, None, None],
        torch.arange(c, device=dev)[None, :, None, None],
        rows,
        cols,
    ]
    flip = (torch.rand(b, generator=generator) < 0.5).to(dev)[:, None, None, None]
    return torch.where(flip, out.flip(-1), out)


class Batches:
    """Shuffled, normalised (and optionally augmented) mini-batches of a split's training set.

    The raw data move to ``device`` once when they fit in ``device_budget`` bytes; otherwise
    each batch is gathered on the host and copied.
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        device: torch.device | str = "cpu",
        augment: bool = False,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device_budget: int = 2 << 30,
        drop_last: bool = True,
    ):
        self.split, self.batch_size, self.augment = split, batch_size, augment
        self.device, self.dtype = torch.device(device), dtype
        self.generator = generator
        self.drop_last = drop_last
        x, y = split.x_train, split.y_train
        resident = self.device.type == "cpu" or x.numel() * x.element_size() <= device_budget
        self.x = x.to(self.device) if resident else x
        self.y = y.to(self.device) if resident else y

    def __len__(self) -> int:
        n = len(self.split.y_train)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = torch.randperm(len(self.split.y_train), generator=self.generator)
        for k in range(len(self)):
            idx = order[k * self.batch_size : (k + 1) * self.batch_size]
            idx = idx.to(self.x.device)
            xb = self.x[idx].to(self.device, non_blocking=True)
            yb = self.y[idx].to(self.device, non_blocking=True)
            xb = self.split.normalise(xb, self.dtype)
            if self.augment:
                xb = random_crop_flip(xb, 4, self.generator)
            yield xb, yb


def eval_batches(
    split: Split, batch_size: int, device: torch.device | str, dtype: torch.dtype = torch.float32
) -> Iterator[tuple[Tensor, Tensor]]:
    """The validation set in order, normalised, in batches."""
    for k in range(0, len(split.y_val), batch_size):
        xb = split.x_val[k : k + batch_size].to(device)
        yield split.normalise(xb, dtype), split.y_val[k : k + batch_size].to(device)
