"""A run's training state: what a step changes and a checkpoint holds. The net, its optimiser
and learning-rate schedule, Init-EP's initializer and its optimiser, the run's own random
streams, the epochs done and their records."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from eqpop.config import TrainConfig
from eqpop.data import Split
from eqpop.estimators.init_ep import Initializer, anchored
from eqpop.nets import EquilibriumNet, State, net_for_data
from eqpop.nets.base import WeightInit
from eqpop.rng import drawing_from


def _groups(
    cfg: TrainConfig, lr: float, named: Iterable[tuple[str, Tensor]], layer_of: Callable
) -> list[dict[str, Any]]:
    """One parameter group per learning-rate scale (``lr_scales``: per layer, then readout)."""
    groups: dict[float, list[Tensor]] = {}
    for name, p in named:
        scale = 1.0 if cfg.lr_scales is None else cfg.lr_scales[layer_of(name)]
        groups.setdefault(scale, []).append(p)
    return [{"params": ps, "lr": lr * s} for s, ps in groups.items()]


def _optimizer(cfg: TrainConfig, net: EquilibriumNet) -> torch.optim.Optimizer:
    params = _groups(cfg, cfg.lr, net.named_parameters(), net.layer_of)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _initializer_layer(name: str) -> int:
    """The initializer's ``layers.k.weight`` is layer k."""
    return int(name.split(".")[1])


def _init_optimizer(cfg: TrainConfig, initializer: Initializer) -> torch.optim.Optimizer:
    """The initializer's layer k learns at ``init_ep_lr`` times the net's layer-k scale, by
    Adam or plain SGD (``init_ep_optimizer``)."""
    params = _groups(cfg, cfg.init_ep_lr, initializer.named_parameters(), _initializer_layer)
    if cfg.init_ep_optimizer == "adam":
        return torch.optim.Adam(params, cfg.init_ep_lr)
    return torch.optim.SGD(params, cfg.init_ep_lr)


class TrainingState:
    """Built from the config and the data's shape, drawing every initial value from the run's
    own generators (in this order: they are the run's reproducibility)."""

    def __init__(self, cfg: TrainConfig, data: Split, device: torch.device, dtype: torch.dtype):
        # the run's own random streams, saved in its checkpoints: parameter initialisation (and,
        # on the CPU, homeostasis noise), homeostasis noise on another device, the sign of beta
        self.rng = torch.Generator().manual_seed(cfg.seed)
        self.noise = (
            self.rng if device.type == "cpu" else torch.Generator(device).manual_seed(cfg.seed)
        )
        self.signs = random.Random(cfg.seed)
        with drawing_from(self.rng):
            net = net_for_data(
                cfg.net,
                data.input_shape,
                data.n_classes,
                cfg.hidden,
                cfg.symmetric,
                cfg.asymmetry_angle,
                cfg.feedback_scale,
                cfg.dt,
                cfg.init,
            )
        self.net: EquilibriumNet = net.to(device, dtype)
        self.optimizer = _optimizer(cfg, self.net)
        self.scheduler = (
            torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=cfg.epochs)
            if cfg.cosine_schedule
            else None
        )
        self.initializer: Initializer | None = None
        self.init_optimizer: torch.optim.Optimizer | None = None
        if cfg.init_ep:
            with drawing_from(self.rng):
                self.initializer = Initializer(self.net, WeightInit(cfg.init)).to(device)
            self.init_optimizer = _init_optimizer(cfg, self.initializer)
        self.init_ep_lambda = cfg.init_ep_lambda
        self.batch_gen = torch.Generator().manual_seed(cfg.seed)
        self.epoch = 0
        self.records: list[dict[str, Any]] = []

    def dynamics(self) -> EquilibriumNet:
        """The net whose fixed points the estimators see (anchored to Init-EP's guess if asked)."""
        return anchored(self.net, self.initializer, self.init_ep_lambda)

    def start_state(self, x: Tensor) -> State | None:
        """Where a free phase starts: Init-EP's prediction, or None (the net's own start)."""
        if self.initializer is None:
            return None
        with torch.no_grad():
            return self.initializer(x)

    def retune(self, cfg: TrainConfig) -> None:
        """Take ``cfg``'s learning rates, momentum and weight decay (a PBT child's, on its
        parent's optimiser state), the cosine schedule going on from where it stands."""
        groups = self.optimizer.param_groups
        fresh = _groups(cfg, cfg.lr, self.net.named_parameters(), self.net.layer_of)
        for group, new in zip(groups, fresh):
            group["lr"] = group["initial_lr"] = new["lr"]
            group["weight_decay"] = cfg.weight_decay
            if "momentum" in group:
                group["momentum"] = cfg.momentum
        if self.init_optimizer is not None:
            layer = _initializer_layer
            params = _groups(cfg, cfg.init_ep_lr, self.initializer.named_parameters(), layer)
            for group, new in zip(self.init_optimizer.param_groups, params):
                group["lr"] = new["lr"]
        self.init_ep_lambda = cfg.init_ep_lambda
        if self.scheduler is not None:
            self.scheduler.base_lrs = [g["initial_lr"] for g in groups]
            self.reschedule(cfg.epochs)

    def reschedule(self, epochs: int) -> None:
        """The cosine schedule over the run's new number of epochs, from where it stands: the
        epochs to come get the rates an uninterrupted run of that length gives them (restored
        as it was saved, the old schedule would train past its end at rate 0)."""
        self.scheduler.T_max = epochs
        done = self.epoch / epochs
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base * (1 + math.cos(math.pi * done)) / 2
