"""Trainer: one run = one network, one estimator, one data set; one record per epoch.

Each batch: settle the free phase (from the Init-EP prediction if enabled), estimate the
gradient with the configured method, add ``lambda_homeo`` times the homeostatic loss, step.
Every epoch: evaluate by free-phase settling, measure symmetry, weight angles and the
layer-wise cosine between the training estimator's error and RBP's delta on a fixed probe
batch, append a record to ``metrics.parquet`` and write a checkpoint; both atomically.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor
from tqdm import tqdm

from eqpop import homeostasis
from eqpop.config import TrainConfig
from eqpop.data import Batches, DataError, Split, eval_batches, load_dataset
from eqpop.dynamics import Settled, Status, settle
from eqpop.errors import ConfigError, UserError
from eqpop.estimators import registry
from eqpop.estimators.base import Estimate
from eqpop.estimators.init_ep import Initializer, anchored, distance
from eqpop.interrupt import StopRequest
from eqpop.io import atomic_write, write_parquet_atomic
from eqpop.metrics import layer_cosines
from eqpop.nets import EquilibriumNet, State, net_for_data
from eqpop.records import CHECKPOINT, PREVIOUS, RUN_CONFIG, RUN_METRICS, with_methods
from eqpop.rng import drawing_from


class Diverged(RuntimeError):
    """A state or gradient became NaN/inf: the run stops with this reason."""


class EpochTally:
    """What an epoch's training batches add up to, kept on the device: nothing in a training
    step waits for the host, and ``read`` brings it all over in one synchronisation."""

    def __init__(self, device: torch.device):
        def zero(dtype: torch.dtype) -> Tensor:
            return torch.zeros((), dtype=dtype, device=device)

        self.loss, self.homeo = zero(torch.float64), zero(torch.float64)
        self.errors, self.status = zero(torch.int64), zero(torch.int64)
        self.bad_grad, self.bad_state = zero(torch.bool), zero(torch.bool)
        self.imag_ratio: Tensor | None = None  # the largest over the batches (hEP)
        self.free: Settled | None = None  # the last batch's free phase
        self.seen = self.batches = 0

    def add(self, est: Estimate, free: Settled | None, grads: list[Tensor], state: State) -> None:
        self.status = torch.maximum(self.status, est.stats.status)
        if est.stats.imag_ratio is not None:
            ratio = est.stats.imag_ratio
            self.imag_ratio = ratio if self.imag_ratio is None else self.imag_ratio.maximum(ratio)
        self.free = free
        for g in grads:
            self.bad_grad |= ~torch.isfinite(g).all()
        for u in state:
            self.bad_state |= ~torch.isfinite(u).all()

    def read(self) -> dict[str, float]:
        """Sums, flags and the last free residual as Python numbers (NaN where absent)."""
        nan = torch.full((), math.nan, dtype=torch.float64, device=self.loss.device)
        values = {
            "loss": self.loss,
            "homeo": self.homeo,
            "errors": self.errors,
            "status": self.status,
            "bad_grad": self.bad_grad,
            "bad_state": self.bad_state,
            "imag_ratio": nan if self.imag_ratio is None else self.imag_ratio,
            "residual": nan if self.free is None else self.free.residuals.max(),
        }
        return dict(zip(values, torch.stack([v.double() for v in values.values()]).tolist()))


@dataclass(frozen=True)
class Health:
    """How an epoch's training went, for whoever decides whether the run goes on."""

    status: Status  # the worst of its phases
    free_residual: float | None  # the last batch's free phase; None: the method has none


class Trainer:
    """Holds the net, its optimiser (and Init-EP's initializer), and runs epochs."""

    def __init__(self, cfg: TrainConfig, out: Path | None = None, data: Split | None = None):
        self.cfg = cfg
        self.out = out
        self.device = torch.device(cfg.device)
        self.dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
        self.method = registry.get(cfg.method)
        # the run's own random streams, saved in its checkpoints: parameter initialisation (and,
        # on the CPU, homeostasis noise), homeostasis noise on another device, the sign of beta
        self.rng = torch.Generator().manual_seed(cfg.seed)
        self.noise = (
            self.rng
            if self.device.type == "cpu"
            else torch.Generator(self.device).manual_seed(cfg.seed)
        )
        self.signs = random.Random(cfg.seed)
        data = data if data is not None else load_dataset(cfg.dataset, cfg.data_dir)
        self.data_seen = {  # recorded in checkpoints: a resume on other images is refused
            "train": len(data.y_train),
            "val": len(data.y_val),
            "fingerprint": data.fingerprint(),
        }
        self.data = data.prepared(cfg.inputs, cfg.train_subset)
        with drawing_from(self.rng):
            net = net_for_data(
                cfg.net,
                self.data.input_shape,
                self.data.n_classes,
                cfg.hidden,
                cfg.symmetric,
                cfg.asymmetry_angle,
                cfg.dt,
                cfg.init,
            )
        self.net: EquilibriumNet = net.to(self.device, self.dtype)
        self.optimizer = self._optimizer()
        self.scheduler = (
            torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=cfg.epochs)
            if cfg.cosine_schedule
            else None
        )
        self.initializer = self.init_optimizer = None
        if cfg.init_ep:
            with drawing_from(self.rng):
                self.initializer = Initializer(self.net).to(self.device)
            self.init_optimizer = torch.optim.Adam(self.initializer.parameters(), cfg.init_ep_lr)
        self.batch_gen = torch.Generator().manual_seed(cfg.seed)
        # built once: on a GPU the raw training set moves to the device here, not every epoch
        self.batches = Batches(
            self.data, cfg.batch_size, self.device, cfg.augment, self.batch_gen, self.dtype
        )
        n = min(cfg.probe_batch, len(self.data.y_val))
        self.probe = (
            self.data.normalise(self.data.x_val[:n].to(self.device), self.dtype),
            self.data.y_val[:n].to(self.device),
        )
        self.epoch = 0
        self.saved_epoch = 0  # the last epoch on disk (checkpoint and metrics)
        self.records: list[dict[str, Any]] = []
        self.health: Health | None = None  # of the last epoch trained

    # --- set-up -----------------------------------------------------------------------------
    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.cfg
        groups: dict[float, list[Tensor]] = {}
        for name, p in self.net.named_parameters():
            scale = 1.0 if cfg.lr_scales is None else cfg.lr_scales[self.net.layer_of(name)]
            groups.setdefault(scale, []).append(p)
        params = [{"params": ps, "lr": cfg.lr * s} for s, ps in groups.items()]
        if cfg.optimizer == "adam":
            return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )

    def dynamics(self) -> EquilibriumNet:
        """The net whose fixed points the estimators see (anchored to Init-EP's guess if asked)."""
        return anchored(self.net, self.initializer, self.cfg.init_ep_lambda)

    def start_state(self, x: Tensor):
        if self.initializer is None:
            return None
        with torch.no_grad():
            return self.initializer(x)

    # --- one batch ----------------------------------------------------------------------------
    def _hyper(self) -> dict[str, Any]:
        """The training method's hyperparameters as the config sets them; beta signed per
        batch under ``random_sign``."""
        hyper = self.method.settings(self.cfg)
        if self.method.nudged and self.cfg.random_sign and self.signs.random() < 0.5:
            hyper["beta"] = -hyper["beta"]
        return hyper

    def train_step(self, x: Tensor, y: Tensor, tally: EpochTally) -> None:
        cfg, dyn = self.cfg, self.dynamics()
        hyper, free = self._hyper(), None
        if self.method.free_phase:
            free = settle(dyn, x, state=self.start_state(x), **cfg.relaxation())
            hyper["free"] = free
        est = self.method.estimate(dyn, x, y, **hyper)
        self.optimizer.zero_grad(set_to_none=True)
        for name, p in self.net.named_parameters():
            p.grad = est.grads[name].clone()
        settled = free if free is not None else settle(self.net, x, **cfg.relaxation())
        state = settled.state
        if cfg.lambda_homeo > 0:
            h = homeostasis.loss(
                self.net, settled.inputs, state, cfg.homeo_samples, generator=self.noise
            )
            (cfg.lambda_homeo * h).backward()
            tally.homeo += h.detach().double()
        tally.add(est, free, [p.grad for p in self.net.parameters() if p.grad is not None], state)
        self.optimizer.step()
        if self.initializer is not None:
            self.init_optimizer.zero_grad(set_to_none=True)
            self.initializer.local_loss(x, state).backward()
            self.init_optimizer.step()
        with torch.no_grad():
            logits = self.net.readout(state)
            tally.loss += self.net.loss(state, y).double() * len(y)
            tally.errors += (logits.argmax(1) != y).sum()
        tally.seen += len(y)
        tally.batches += 1

    # --- evaluation and measurements -------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        """Top-1/top-5 error by free-phase settling (Algorithm 3 under Init-EP), and under
        Init-EP the forward-pass error (Algorithm 2) and the prediction's distance."""
        cfg, dyn = self.cfg, self.dynamics()
        counts = torch.zeros(4, dtype=torch.float64, device=self.device)  # top1 top5 fwd dist
        n = 0
        for x, y in eval_batches(self.data, cfg.eval_batch_size, self.device, self.dtype):
            start = self.start_state(x)
            state = settle(dyn, x, state=start, **cfg.relaxation()).state
            with torch.no_grad():
                logits = self.net.readout(state)
                k = min(5, logits.shape[1])
                top = logits.topk(k, dim=1).indices
                counts[0] += (top[:, 0] != y).sum()
                counts[1] += (~(top == y[:, None]).any(1)).sum()
                if start is not None:
                    counts[2] += (self.net.readout(start).argmax(1) != y).sum()
                    counts[3] += distance(start, state) * len(y)
            n += len(y)
        top1, top5, fwd, dist = counts.tolist()  # the evaluation's one host sync
        out = {"val_error": top1 / n, "val_top5_error": top5 / n}
        if self.initializer is not None:
            out.update(val_error_forward=fwd / n, init_distance=dist / n)
        return out

    def measure(self) -> dict[str, float]:
        """Symmetry, weight angles and the estimator's alignment with RBP on the probe batch."""
        cfg = self.cfg
        x, y = self.probe
        free = settle(self.net, x, **cfg.relaxation())
        g = torch.Generator(device=self.device).manual_seed(cfg.seed)
        out = {"symmetry_ratio": homeostasis.symmetry_ratio(self.net, x, free.state, generator=g)}
        with torch.no_grad():
            out["homeo_probe"] = float(homeostasis.loss(self.net, x, free.state, generator=g))
        for k, angle in enumerate(homeostasis.weight_angle(self.net).values()):
            out[f"weight_angle_l{k}"] = angle
        truth = registry.truth("delta").name  # iterated to its tolerance: the true delta
        delta = registry.estimate(
            self.net,
            x,
            y,
            truth,
            t_free=cfg.t_free,
            free=free,
            solver=cfg.solver,
            anderson_memory=cfg.anderson_memory,
        )
        hyper = self.method.settings(cfg) | ({"free": free} if self.method.free_phase else {})
        mine = self.method.estimate(self.net, x, y, **hyper)
        for k, c in enumerate(layer_cosines(mine.error, delta.error)):
            out[f"cos_rbp_l{k}"] = float(c)
        return out

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
        if self.scheduler is not None:
            self.scheduler.step()
        train_seconds = time.perf_counter() - start
        self.epoch += 1
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

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "initializer": self.initializer.state_dict() if self.initializer else None,
            "init_optimizer": self.init_optimizer.state_dict() if self.init_optimizer else None,
            "batch_rng": self.batch_gen.get_state(),
            "rng": self.rng.get_state(),
            "noise_rng": self.noise.get_state(),
            "sign_rng": json.dumps(self.signs.getstate()),
            "records": json.dumps(self.records),
            "config": self.cfg.model_dump_json(),
            "data": json.dumps(self.data_seen),
        }

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        self.epoch = int(sd["epoch"])
        self.net.load_state_dict(sd["net"])
        self.optimizer.load_state_dict(sd["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(sd["scheduler"])
        if self.initializer is not None:
            self.initializer.load_state_dict(sd["initializer"])
            self.init_optimizer.load_state_dict(sd["init_optimizer"])
        self.batch_gen.set_state(sd["batch_rng"])
        if "rng" in sd:
            self.rng.set_state(sd["rng"])
            self.noise.set_state(sd["noise_rng"])
            signs = sd["sign_rng"]
        else:  # written before runs owned their generators: the global CPU ones were saved
            self.rng.set_state(sd["torch_rng"])
            signs = sd["python_rng"]
        state = json.loads(signs)
        self.signs.setstate((state[0], tuple(state[1]), state[2]))
        self.records = json.loads(sd["records"])

    def save(self) -> None:
        """Config, metrics and checkpoint, each written atomically; the metrics first, so a
        checkpoint never claims an epoch whose record is missing."""
        frame = self.metrics()
        config = self.cfg.model_dump_json(indent=2)
        atomic_write(self.out / RUN_CONFIG, lambda p: Path(p).write_text(config))
        write_parquet_atomic(frame, self.out / RUN_METRICS)
        sd = self.state_dict()
        if (self.out / CHECKPOINT).exists():
            os.replace(self.out / CHECKPOINT, self.out / PREVIOUS)
        atomic_write(self.out / CHECKPOINT, lambda p: torch.save(sd, p))
        self.saved_epoch = self.epoch

    def resume(self, allow_new_data: bool = False) -> bool:
        """Continue from ``out/checkpoint.pt`` if there is one (loaded with weights_only); if it
        is unreadable, from the previous one, saying so on stderr. Refused in one line when the
        config differs (naming each field) or the data do (unless ``allow_new_data``). More
        epochs than the run was started with continue the schedule of the new length."""
        if self.out is None:
            return False
        path, previous = self.out / CHECKPOINT, self.out / PREVIOUS
        if not path.is_file() and not previous.is_file():
            return False
        try:
            sd = self._load(path)
        except UserError as err:
            if not previous.is_file():
                raise
            sd = self._load(previous)
            print(f"warning: {err}; resumed from {previous} (epoch {sd['epoch']})", file=sys.stderr)
        saved = TrainConfig.model_validate_json(sd["config"])
        recorded = json.loads(sd["data"]) if "data" in sd else None
        # a moved data folder is the same run: the data's fingerprint says whether it is
        ignored = {"epochs", "device"} | ({"data_dir"} if recorded else set())
        old, new = saved.model_dump(exclude=ignored), self.cfg.model_dump(exclude=ignored)
        changed = [f"{k}: {old[k]!r} -> {new[k]!r}" for k in old if old[k] != new[k]]
        if changed:
            raise ConfigError(
                f"{path}: was written with a different config ({'; '.join(changed)}); resume with "
                "the same settings or use another --out"
            )
        if recorded and recorded["fingerprint"] != self.data_seen["fingerprint"]:
            self._new_data(path, recorded, allow_new_data)
        if self.cfg.epochs < int(sd["epoch"]):
            raise ConfigError(
                f"epochs: {path} has trained {sd['epoch']} epochs already, this run asks for "
                f"{self.cfg.epochs}; ask for at least as many"
            )
        self.load_state_dict(sd)
        self.saved_epoch = self.epoch
        if self.scheduler is not None and saved.epochs != self.cfg.epochs:
            self._reschedule()
        return True

    def _new_data(self, path: Path, recorded: dict[str, Any], allow: bool) -> None:
        where = self.cfg.data_dir or self.cfg.dataset
        seen = f"{recorded['train']} train / {recorded['val']} val images"
        now = f"{self.data_seen['train']} / {self.data_seen['val']}"
        if not allow:
            raise DataError(
                where,
                f"holds other data than {path} was trained on (then {seen}, now {now}, another "
                "fingerprint); give the same data, or --allow-new-data to resume on these",
            )
        print(f"warning: {where}: resuming {path} on other data ({now})", file=sys.stderr)

    def _reschedule(self) -> None:
        """The cosine schedule over the run's new number of epochs, from where it stands: the
        epochs to come get the rates an uninterrupted run of that length gives them (restored
        as it was saved, the old schedule would train past its end at rate 0)."""
        self.scheduler.T_max = self.cfg.epochs
        done = self.epoch / self.cfg.epochs
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base * (1 + math.cos(math.pi * done)) / 2

    def _load(self, path: Path) -> dict[str, Any]:
        if not path.is_file():
            raise UserError(f"{path}: missing")
        try:
            return torch.load(path, map_location=self.device, weights_only=True)
        except Exception as err:
            raise UserError(f"{path}: unreadable checkpoint ({type(err).__name__})") from None
