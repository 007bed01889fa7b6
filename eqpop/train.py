"""Trainer: one run = one network, one estimator, one data set; one record per epoch.

Each batch: settle the free phase (from the Init-EP prediction if enabled), estimate the
gradient with the configured method, add ``lambda_homeo`` times the homeostatic loss, step.
Every epoch: evaluate by free-phase settling, measure symmetry, weight angles and the
layer-wise cosine between the training estimator's error and RBP's delta on a fixed probe
batch, append a record to ``metrics.parquet`` and write a checkpoint; both atomically.
"""

from __future__ import annotations

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
from eqpop.data import Batches, Split, eval_batches, load_dataset
from eqpop.dynamics import settle
from eqpop.estimators import estimate
from eqpop.estimators.init_ep import Initializer, anchored, distance
from eqpop.io import atomic_write, write_parquet_atomic
from eqpop.metrics import layer_cosines
from eqpop.nets import EquilibriumNet, net_for_data

CHECKPOINT = "checkpoint.pt"
PREVIOUS = "checkpoint.prev.pt"  # the one before: what resume falls back on
METRICS = "metrics.parquet"


class Diverged(RuntimeError):
    """A state or gradient became NaN/inf: the run stops with this reason."""


def layer_index(name: str, n_layers: int) -> int:
    """Which layer a parameter belongs to, for layer-wise learning rates: ``w_f.k``/``b.k`` are
    layer k, ``w_b.k`` (feedback from k+1) goes with layer k+1, ``w_o`` with the output
    layer; the readout is the extra last index."""
    head, _, k = name.partition(".")
    if head in ("w_f", "b"):
        return int(k)
    if head == "w_b":
        return int(k) + 1
    if head == "w_o":
        return n_layers - 1
    return n_layers


@dataclass
class EpochStats:
    loss: float = 0.0
    errors: int = 0
    seen: int = 0
    homeo: float = 0.0
    residual: float = 0.0
    batches: int = 0
    imag_ratio: float = -math.inf  # the epoch's largest (hEP); -inf: none measured


class Trainer:
    """Holds the net, its optimiser (and Init-EP's initializer), and runs epochs."""

    def __init__(self, cfg: TrainConfig, out: Path | None = None, data: Split | None = None):
        self.cfg = cfg
        self.out = out
        self.device = torch.device(cfg.device)
        self.dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.data = data if data is not None else load_dataset(cfg.dataset, cfg.data_dir)
        self.net: EquilibriumNet = net_for_data(
            cfg.net,
            self.data.input_shape,
            self.data.n_classes,
            cfg.hidden,
            cfg.symmetric,
            cfg.asymmetry_angle,
            cfg.dt,
        ).to(self.device, self.dtype)
        self.optimizer = self._optimizer()
        self.scheduler = (
            torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=cfg.epochs)
            if cfg.cosine_schedule
            else None
        )
        self.initializer = self.init_optimizer = None
        if cfg.init_ep:
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
        self.records: list[dict[str, Any]] = []

    # --- set-up -----------------------------------------------------------------------------
    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.cfg
        n_layers = cfg.n_layers
        groups: dict[float, list[Tensor]] = {}
        for name, p in self.net.named_parameters():
            scale = 1.0 if cfg.lr_scales is None else cfg.lr_scales[layer_index(name, n_layers)]
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
    def _beta(self) -> float:
        sign = -1.0 if self.cfg.random_sign and random.random() < 0.5 else 1.0
        return sign * self.cfg.beta

    def _hyper(self) -> dict[str, Any]:
        """Estimator hyperparameters of the config (``estimate`` passes each method its own)."""
        cfg = self.cfg
        cap = cfg.t_adjoint or cfg.t_nudge
        return dict(
            beta=cfg.beta,
            n_points=cfg.n_points,
            steps=cfg.t_free,
            nudge_steps=cfg.t_nudge,
            periods=cfg.periods,
            steps_per_point=cfg.steps_per_point,
            adjoint_steps=cap,
            tangent_steps=cap,
        )

    def train_step(self, x: Tensor, y: Tensor, stats: EpochStats) -> None:
        cfg, dyn = self.cfg, self.dynamics()
        hyper: dict[str, Any] = dict(self._hyper(), beta=self._beta())
        free = None
        if cfg.method != "hep_continuous":
            free = settle(dyn, x, steps=cfg.t_free, state=self.start_state(x))
            hyper["free"] = free
        est = estimate(dyn, x, y, cfg.method, **hyper)
        self.optimizer.zero_grad(set_to_none=True)
        for name, p in self.net.named_parameters():
            p.grad = est.grads[name].clone()
        state = free.state if free is not None else settle(self.net, x, steps=cfg.t_free).state
        if cfg.lambda_homeo > 0:
            h = homeostasis.loss(self.net, x, state, cfg.homeo_samples)
            (cfg.lambda_homeo * h).backward()
            stats.homeo += float(h.detach())
        grads = [p.grad for p in self.net.parameters() if p.grad is not None]
        if not all(bool(torch.isfinite(g).all()) for g in grads):
            raise Diverged(f"epoch {self.epoch + 1}: non-finite gradient")
        if not all(bool(torch.isfinite(s).all()) for s in state):
            raise Diverged(f"epoch {self.epoch + 1}: non-finite state in the free phase")
        self.optimizer.step()
        if self.initializer is not None:
            self.init_optimizer.zero_grad(set_to_none=True)
            self.initializer.local_loss(x, state).backward()
            self.init_optimizer.step()
        with torch.no_grad():
            logits = self.net.readout(state)
            stats.loss += float(self.net.loss(state, y)) * len(y)
            stats.errors += int((logits.argmax(1) != y).sum())
        stats.seen += len(y)
        stats.residual = free.residual if free is not None else float("nan")
        stats.imag_ratio = max(stats.imag_ratio, est.stats.get("imag_ratio", -math.inf))
        stats.batches += 1

    # --- evaluation and measurements -------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        """Top-1/top-5 error by free-phase settling (Algorithm 3 under Init-EP), and under
        Init-EP the forward-pass error (Algorithm 2) and the prediction's distance."""
        cfg, dyn = self.cfg, self.dynamics()
        top1 = top5 = fwd = 0
        dist, n = 0.0, 0
        for x, y in eval_batches(self.data, cfg.eval_batch_size, self.device, self.dtype):
            start = self.start_state(x)
            state = settle(dyn, x, steps=cfg.t_free, state=start).state
            with torch.no_grad():
                logits = self.net.readout(state)
                k = min(5, logits.shape[1])
                top = logits.topk(k, dim=1).indices
                top1 += int((top[:, 0] != y).sum())
                top5 += int((~(top == y[:, None]).any(1)).sum())
                if start is not None:
                    fwd += int((self.net.readout(start).argmax(1) != y).sum())
                    dist += distance(start, state) * len(y)
            n += len(y)
        out = {"val_error": top1 / n, "val_top5_error": top5 / n}
        if self.initializer is not None:
            out.update(val_error_forward=fwd / n, init_distance=dist / n)
        return out

    def measure(self) -> dict[str, float]:
        """Symmetry, weight angles and the estimator's alignment with RBP on the probe batch."""
        cfg = self.cfg
        x, y = self.probe
        free = settle(self.net, x, steps=cfg.t_free)
        g = torch.Generator(device=self.device).manual_seed(cfg.seed)
        out = {"symmetry_ratio": homeostasis.symmetry_ratio(self.net, x, free.state, generator=g)}
        with torch.no_grad():
            out["homeo_probe"] = float(homeostasis.loss(self.net, x, free.state, generator=g))
        for k, angle in enumerate(homeostasis.weight_angle(self.net).values()):
            out[f"weight_angle_l{k}"] = angle
        hyper = self._hyper()
        rbp = estimate(self.net, x, y, "rbp", steps=cfg.t_free, free=free)
        mine = estimate(
            self.net,
            x,
            y,
            cfg.method,
            **hyper,
            **({} if cfg.method == "hep_continuous" else {"free": free}),
        )
        for k, c in enumerate(layer_cosines(mine.error, rbp.error)):
            out[f"cos_rbp_l{k}"] = float(c)
        return out

    # --- epochs, records, checkpoints ----------------------------------------------------------
    def run_epoch(self, progress: bool = False) -> dict[str, Any]:
        cfg = self.cfg
        start = time.perf_counter()
        stats = EpochStats()
        bar = tqdm(
            self.batches,
            desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
            leave=False,
            disable=not progress,
            unit="batch",
        )
        for x, y in bar:
            self.train_step(x, y, stats)
            bar.set_postfix(loss=f"{stats.loss / stats.seen:.3f}")
        if self.scheduler is not None:
            self.scheduler.step()
        train_seconds = time.perf_counter() - start
        self.epoch += 1
        record: dict[str, Any] = {
            "epoch": self.epoch,
            "train_loss": stats.loss / max(stats.seen, 1),
            "train_error": stats.errors / max(stats.seen, 1),
            **self.evaluate(),
            "homeo_loss": stats.homeo / max(stats.batches, 1) if cfg.lambda_homeo > 0 else math.nan,
            "residual": stats.residual,
            "imag_ratio": stats.imag_ratio if stats.imag_ratio > -math.inf else math.nan,
            "lr": self.optimizer.param_groups[0]["lr"],
            **self.measure(),
        }
        record["seconds"] = time.perf_counter() - start
        record["samples_per_s"] = stats.seen / train_seconds
        self.records.append(record)
        if self.out is not None:
            self.save()
        return record

    def fit(self, progress: bool = False) -> pd.DataFrame:
        bar = tqdm(
            total=self.cfg.epochs,
            initial=self.epoch,
            desc="training",
            unit="epoch",
            disable=not progress,
        )
        while self.epoch < self.cfg.epochs:
            rec = self.run_epoch(progress)
            bar.update(1)
            bar.set_postfix(loss=f"{rec['train_loss']:.3f}", val_error=f"{rec['val_error']:.3f}")
        bar.close()
        return self.metrics()

    def metrics(self) -> pd.DataFrame:
        return pd.DataFrame(self.records)

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "initializer": self.initializer.state_dict() if self.initializer else None,
            "init_optimizer": self.init_optimizer.state_dict() if self.init_optimizer else None,
            "batch_rng": self.batch_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": json.dumps(random.getstate()),
            "records": json.dumps(self.records),
            "config": self.cfg.model_dump_json(),
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
        torch.set_rng_state(sd["torch_rng"])
        state = json.loads(sd["python_rng"])
        random.setstate((state[0], tuple(state[1]), state[2]))
        self.records = json.loads(sd["records"])

    def save(self) -> None:
        """Config, metrics and checkpoint, each written atomically; the metrics first, so a
        checkpoint never claims an epoch whose record is missing."""
        frame = self.metrics()
        config = self.cfg.model_dump_json(indent=2)
        atomic_write(self.out / "config.json", lambda p: Path(p).write_text(config))
        write_parquet_atomic(frame, self.out / METRICS)
        sd = self.state_dict()
        if (self.out / CHECKPOINT).exists():
            os.replace(self.out / CHECKPOINT, self.out / PREVIOUS)
        atomic_write(self.out / CHECKPOINT, lambda p: torch.save(sd, p))

    def resume(self) -> bool:
        """Continue from ``out/checkpoint.pt`` if there is one (loaded with weights_only); if it
        is unreadable, from the previous one, saying so on stderr."""
        if self.out is None:
            return False
        path, previous = self.out / CHECKPOINT, self.out / PREVIOUS
        if not path.is_file() and not previous.is_file():
            return False
        try:
            sd = self._load(path)
        except ValueError as err:
            if not previous.is_file():
                raise
            sd = self._load(previous)
            print(f"warning: {err}; resumed from {previous} (epoch {sd['epoch']})", file=sys.stderr)
        saved = TrainConfig.model_validate_json(sd["config"])
        if saved.model_dump(exclude={"epochs", "device"}) != self.cfg.model_dump(
            exclude={"epochs", "device"}
        ):
            raise ValueError(f"{path}: was written with a different config; use another --out")
        self.load_state_dict(sd)
        return True

    def _load(self, path: Path) -> dict[str, Any]:
        if not path.is_file():
            raise ValueError(f"{path}: missing")
        try:
            return torch.load(path, map_location=self.device, weights_only=True)
        except Exception as err:
            raise ValueError(f"{path}: unreadable checkpoint ({type(err).__name__})") from None
