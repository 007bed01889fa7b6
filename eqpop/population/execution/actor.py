"""A Ray actor that holds one Trainer (one network on its own device) and trains it one epoch per
call, so the driver sees every epoch and can prune between them. Its calls return typed
outcomes (``outcome.py``)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import ray
import torch

from eqpop.config import TrainConfig
from eqpop.data import Split, load_dataset
from eqpop.dynamics import Status
from eqpop.population.definition.spec import Probe
from eqpop.population.execution.outcome import Started, Trained
from eqpop.train import Diverged, Trainer


class LostTrial(RuntimeError):
    """The actor was restarted after dying: the trial it held is gone (Ray re-ran the call on a
    blank actor)."""


@ray.remote
class TrialActor:
    """Lives for the whole study; ``start`` loads a trial (resuming its checkpoint if one is
    there), ``epoch`` trains one more epoch and, every ``probe.every`` epochs, runs every
    estimator on the probe batch."""

    def __init__(self, threads: int):
        torch.set_num_threads(max(1, threads))
        self.trainer: Trainer | None = None
        self.probe = Probe()
        self.data: dict[tuple, Split] = {}  # loaded once per data set, kept across trials

    def pid(self) -> int:
        """Answers once the actor is up again after a restart."""
        return os.getpid()

    def start(
        self, cfg_json: str, run_dir: str, probe: dict[str, Any], inherit: str | None = None
    ) -> Started:
        """Load a trial: resume its run folder's checkpoint or, when it has none and
        ``inherit`` names one (a PBT child's parent's), go on from that one."""
        cfg = TrainConfig.model_validate_json(cfg_json)
        if ray.get_gpu_ids():
            cfg = cfg.model_copy(update={"device": "cuda"})
        key = (cfg.dataset, str(cfg.data_dir))
        if key not in self.data:
            self.data[key] = load_dataset(cfg.dataset, cfg.data_dir)
        self.probe = Probe(**probe)
        self.trainer = Trainer(cfg, Path(run_dir), self.data[key])
        if not self.trainer.resume() and inherit is not None:
            self.trainer.inherit(Path(inherit))
        return Started(os.getpid(), list(self.trainer.records))

    def epoch(self) -> Trained:
        trainer = self.trainer
        if trainer is None:
            raise LostTrial("the actor was restarted and holds no trial")
        start = time.perf_counter()
        try:
            record = trainer.run_epoch()
        except Diverged as err:
            busy = time.perf_counter() - start
            return Trained(None, [], busy, Status.NON_FINITE, None, str(err))
        due = trainer.epoch % self.probe.every == 0 or trainer.epoch == trainer.cfg.epochs
        rows = trainer.probe_rows(self.probe) if due else []
        health = trainer.health
        busy = time.perf_counter() - start
        return Trained(record, rows, busy, health.status, health.free_residual)
