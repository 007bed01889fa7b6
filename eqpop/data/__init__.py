"""Data sets, each read from its own published format and checked; registered by name.

Every loader is ``f(data_dir) -> Split``; a missing or corrupt file is a ``DataError`` (a
``UserError``: one line, exit 2) whose message starts with the file's path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from eqpop.data.base import Batches, DataError, Split, eval_batches
from eqpop.data.cifar import cifar10, cifar100
from eqpop.data.digits import digits
from eqpop.data.idx import fashion_mnist, mnist
from eqpop.data.imagefolder import imagefolder
from eqpop.data.imagenet32 import imagenet32
from eqpop.data.synthetic import synthetic
from eqpop.errors import ConfigError

DATASETS: dict[str, Callable[..., Split]] = {
    "digits": digits,
    "mnist": mnist,
    "fashion_mnist": fashion_mnist,
    "cifar10": cifar10,
    "cifar100": cifar100,
    "imagenet32": imagenet32,
    "imagefolder": imagefolder,
    "synthetic": synthetic,
}


def load_dataset(name: str, data_dir: Path | str | None = None) -> Split:
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[name](data_dir)


__all__ = ["DATASETS", "Batches", "DataError", "Split", "eval_batches", "load_dataset"]
