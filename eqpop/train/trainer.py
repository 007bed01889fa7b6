"""Trainer: one run = one network, one estimator, one data set; one record per epoch.

Each batch: settle the free phase (from the Init-EP prediction if enabled), estimate the
gradient with the configured method, add ``lambda_homeo`` times the homeostatic loss, step.
Every epoch: evaluate by free-phase settling, measure symmetry, weight angles and the
layer-wise cosine between the training estimator's error and RBP's delta on a fixed probe
batch, append a record to ``metrics.parquet`` and write a checkpoint; both atomically.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm import tqdm

from eqpop.config import TrainConfig
from eqpop.data import Batches, Split, load_dataset
from eqpop.dynamics import Status
from eqpop.estimators import registry
from eqpop.interrupt import StopRequest
from eqpop.nets import EquilibriumNet
from eqpop.records import with_methods
from eqpop.train import checkpoint, measure
from eqpop.train.measure import ProbeGrid
from eqpop.train.state import TrainingState
from eqpop.train.step import EpochTally, Step


class Diverged(RuntimeError):
    """A state or gradient became NaN/inf: the run stops with this reason."""


@dataclass(frozen=True)
class Health:
    """How an epoch's training went, for whoever decides whether the run goes on."""

    status: Status  # the worst of its phases
    free_residual: float | None  # the last batch's free phase; None: the method has none


class Trainer:
    """One run: its data, its training state (``state.py``), the step (``step.py``), its
    measurements (``measure.py``) and its run folder (``checkpoint.py``); runs epochs."""

    def __init__(self, cfg: TrainConfig, out: Path | None = None, data: Split | None = None):
        self.cfg = cfg
        self.out = out
        self.device = torch.device(cfg.device)
        self.dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
        self.method = registry.get(cfg.method)
        data = data if data is not None else load_dataset(cfg.dataset, cfg.data_dir)
        self.data_seen = {  # recorded in checkpoints: a resume on other images is refused
            "train": len(data.y_train),
            "val": len(data.y_val),
            "fingerprint": data.fingerprint(),
        }
        self.data = data.prepared(cfg.inputs, cfg.train_subset)
        self.state = TrainingState(cfg, self.data, self.device, self.dtype)
        self.step = Step(cfg, self.state, self.method)
        # built once: on a GPU the raw training set moves to the device here, not every epoch
        self.batches = Batches(
            self.data, cfg.batch_size, self.device, cfg.augment, self.state.batch_gen, self.dtype
        )
        n = min(cfg.probe_batch, len(self.data.y_val))
        self.probe = (
            self.data.normalise(self.data.x_val[:n].to(self.device), self.dtype),
            self.data.y_val[:n].to(self.device),
        )
        self.saved_epoch = 0  # the last epoch on disk (checkpoint and metrics)
        self.health: Health | None = None  # of the last epoch trained

    # the state's parts, as a run's users read them
    @property
    def net(self) -> EquilibriumNet:
        return self.state.net

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.state.optimizer

    @property
    def initializer(self) -> torch.nn.Module | None:
        return self.state.initializer

    @property
    def epoch(self) -> int:
        return self.state.epoch

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.state.records

    def train_step(self, x: torch.Tensor, y: torch.Tensor, tally: EpochTally) -> None:
        self.step(x, y, tally)

    def evaluate(self) -> dict[str, float]:
        return measure.evaluate(self.state, self.cfg, self.data, self.device, self.dtype)

    def measure(self) -> dict[str, float]:
        return measure.measure(self.state, self.cfg, self.method, self.probe)

    def probe_rows(self, grid: ProbeGrid) -> list[dict[str, Any]]:
        return measure.probe_rows(self.state, self.cfg, self.probe, grid)

    # --- epochs, records, checkpoints ----------------------------------------------------------
    def run_epoch(self, progress: bool = False, stop: StopRequest | None = None) -> dict[str, Any]:
        """Train one epoch, record it and, with a run folder, write its checkpoint. Under
        ``stop`` a signal cuts the epoch short (the ones before are on disk), never the
        checkpoint being written."""
        with stop.interruptible() if stop else contextlib.nullcontext():
            record = self._train_epoch(progress)
        if self.out is not None:
            self.save()
        return record

    def _train_epoch(self, progress: bool) -> dict[str, Any]:
        cfg = self.cfg
        start = time.perf_counter()
        tally = EpochTally(self.device)
        bar = tqdm(
            self.batches,
            desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
            leave=False,
            disable=not progress,
            unit="batch",
        )
        shown = max(1, len(self.batches) // 20)  # the bar's loss costs a host sync: not per batch
        for i, (x, y) in enumerate(bar, 1):
            self.train_step(x, y, tally)
            if progress and i % shown == 0:
                bar.set_postfix(loss=f"{float(tally.loss) / tally.seen:.3f}")
        sums = tally.read()  # the training batches' one host sync
        if sums["bad_grad"]:
            raise Diverged(f"epoch {self.epoch + 1}: non-finite gradient")
        if sums["bad_state"]:
            raise Diverged(f"epoch {self.epoch + 1}: non-finite state in the free phase")
        free = None if tally.free is None else sums["residual"]
        self.health = Health(Status(int(sums["status"])), free)
        lr = self.optimizer.param_groups[0]["lr"]  # the rate this epoch trained at
        if self.state.scheduler is not None:
            self.state.scheduler.step()
        train_seconds = time.perf_counter() - start
        self.state.epoch += 1
        seen, batches = max(tally.seen, 1), max(tally.batches, 1)
        record: dict[str, Any] = {
            "epoch": self.epoch,
            "train_loss": sums["loss"] / seen,
            "train_error": sums["errors"] / seen,
            **self.evaluate(),
            "homeo_loss": sums["homeo"] / batches if cfg.lambda_homeo > 0 else math.nan,
            "residual": sums["residual"],
            "imag_ratio": sums["imag_ratio"],
            "lr": lr,
            **self.measure(),
        }
        record["seconds"] = time.perf_counter() - start
        record["samples_per_s"] = tally.seen / train_seconds
        self.records.append(record)
        return record

    def fit(self, progress: bool = False, stop: StopRequest | None = None) -> pd.DataFrame:
        """Train to ``cfg.epochs`` (``stop``: as ``run_epoch``)."""
        bar = tqdm(
            total=self.cfg.epochs,
            initial=self.epoch,
            desc="training",
            unit="epoch",
            disable=not progress,
        )
        while self.epoch < self.cfg.epochs:
            rec = self.run_epoch(progress, stop)
            bar.update(1)
            bar.set_postfix(loss=f"{rec['train_loss']:.3f}", val_error=f"{rec['val_error']:.3f}")
        bar.close()
        return self.metrics()

    def metrics(self) -> pd.DataFrame:
        return with_methods(pd.DataFrame(self.records), registry.describe())

    def save(self) -> None:
        checkpoint.save(self.out, self.state, self.cfg, self.data_seen, self.metrics())
        self.saved_epoch = self.epoch

    def inherit(self, path: Path) -> None:
        """Go on from another run's checkpoint with this run's settings (``checkpoint.inherit``),
        saved at once as this run's own checkpoint: a restart resumes from it."""
        checkpoint.inherit(path, self.state, self.cfg)
        if self.out is not None:
            self.save()

    def resume(self, allow_new_data: bool = False) -> bool:
        """Continue from the run folder's checkpoint, if it has one (``checkpoint.resume``)."""
        if self.out is None:
            return False
        resumed = checkpoint.resume(self.out, self.state, self.cfg, self.data_seen, allow_new_data)
        self.saved_epoch = self.epoch
        return resumed
