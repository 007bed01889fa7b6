"""What every experiment script shares: named training runs, each resumed from its checkpoint
when one is there, run one per process with one thread each, their metrics gathered.

A run that diverges is a finding, not a crash: its recorded epochs are kept with a
``diverged`` column saying where it stopped.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from eqpop.config import build_config
from eqpop.presets import preset
from eqpop.records import RUN_METRICS
from eqpop.train import Diverged, Trainer


def slug(name: str) -> str:
    """A run's name as a folder name."""
    return "".join(c if c.isalnum() else "-" for c in name).strip("-")


def train(job: Job) -> pd.DataFrame:
    """``(name, preset, overrides, folder)``: train it (or read it back if it finished)."""
    name, base, overrides, out = job
    torch.set_num_threads(1)
    cfg = build_config(**{**preset(base), **overrides})
    if (out / RUN_METRICS).exists() and len(pd.read_parquet(out / RUN_METRICS)) == cfg.epochs:
        frame = pd.read_parquet(out / RUN_METRICS)
    else:
        trainer = Trainer(cfg, out)
        trainer.resume()
        try:
            frame = trainer.fit()
        except Diverged as err:
            frame = trainer.metrics().assign(diverged=str(err))
    return frame.assign(run=name, seed=cfg.seed)


Job = tuple[str, str, dict[str, Any], Path]


def parser(epochs: int) -> argparse.ArgumentParser:
    """The flags every script takes."""
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--train-subset", type=int, default=None, help="training images (all)")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--workers", type=int, default=2)
    return p


def jobs(
    runs: dict[str, dict[str, Any]], base: str, args: argparse.Namespace, root: Path
) -> list[Job]:
    """One job per run and seed: the preset ``base`` with the run's overrides and the flags."""
    flags = dict(epochs=args.epochs, data_dir=args.data_dir, train_subset=args.train_subset)
    return [
        (name, base, dict(over, seed=s, **flags), root / f"{slug(name)}-s{s}")
        for name, over in runs.items()
        for s in range(args.seeds)
    ]


def train_all(jobs: Iterable[Job], workers: int) -> pd.DataFrame:
    """Every job, ``workers`` at a time, in the order given (put the longest first)."""
    with ProcessPoolExecutor(workers) as pool:
        return pd.concat(list(pool.map(train, list(jobs))), ignore_index=True)


def mean_std(values: pd.Series, scale: float = 100.0) -> str:
    """``mean ± std`` (just the mean for one value)."""
    if len(values) == 1:
        return f"{scale * values.iloc[0]:.1f}"
    return f"{scale * values.mean():.1f} ± {scale * values.std():.1f}"
