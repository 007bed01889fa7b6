"""A run folder's checkpoint, in one place: what it holds, how it is written beside the run's
config and metrics, and how a run resumes from it. Checkpoints of older eqpop (written before
runs owned their random generators: ``torch_rng``, ``python_rng``) are converted here.

A resume continues only the run that was saved: the config must be the same (naming each field
that differs), and so must the data (their fingerprint) unless ``allow_new_data``. More epochs
than the run was started with continue the schedule of the new length.
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from eqpop.config import TrainConfig
from eqpop.data import DataError
from eqpop.errors import ConfigError, UserError
from eqpop.io import atomic_write, write_parquet_atomic
from eqpop.records import CHECKPOINT, PREVIOUS, RUN_CONFIG, RUN_METRICS
from eqpop.train.state import TrainingState


def pack(state: TrainingState, cfg: TrainConfig, data_seen: dict[str, Any]) -> dict[str, Any]:
    """Everything a resume needs, as ``torch.save`` stores it (loadable with weights_only)."""
    return {
        "epoch": state.epoch,
        "net": state.net.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict() if state.scheduler else None,
        "initializer": state.initializer.state_dict() if state.initializer else None,
        "init_optimizer": state.init_optimizer.state_dict() if state.init_optimizer else None,
        "batch_rng": state.batch_gen.get_state(),
        "rng": state.rng.get_state(),
        "noise_rng": state.noise.get_state(),
        "sign_rng": json.dumps(state.signs.getstate()),
        "records": json.dumps(state.records),
        "config": cfg.model_dump_json(),
        "data": json.dumps(data_seen),
    }


def _upgrade(sd: dict[str, Any]) -> dict[str, Any]:
    """An older checkpoint's keys as today's: the global CPU generators it saved become the
    run's own (its noise generator was the CPU one, or seeded afresh on another device)."""
    if "rng" in sd:
        return sd
    return {**sd, "rng": sd["torch_rng"], "noise_rng": None, "sign_rng": sd["python_rng"]}


def unpack(state: TrainingState, sd: dict[str, Any]) -> None:
    sd = _upgrade(sd)
    state.epoch = int(sd["epoch"])
    state.net.load_state_dict(sd["net"])
    state.optimizer.load_state_dict(sd["optimizer"])
    if state.scheduler is not None:
        state.scheduler.load_state_dict(sd["scheduler"])
    if state.initializer is not None:
        state.initializer.load_state_dict(sd["initializer"])
        state.init_optimizer.load_state_dict(sd["init_optimizer"])
    state.batch_gen.set_state(sd["batch_rng"])
    state.rng.set_state(sd["rng"])
    if sd["noise_rng"] is not None:
        state.noise.set_state(sd["noise_rng"])
    signs = json.loads(sd["sign_rng"])
    state.signs.setstate((signs[0], tuple(signs[1]), signs[2]))
    state.records = json.loads(sd["records"])


def save(
    out: Path,
    state: TrainingState,
    cfg: TrainConfig,
    data_seen: dict[str, Any],
    metrics: pd.DataFrame,
) -> None:
    """Config, metrics and checkpoint, each written atomically; the metrics first, so a
    checkpoint never claims an epoch whose record is missing. The checkpoint before is kept as
    ``checkpoint.prev.pt``."""
    config = cfg.model_dump_json(indent=2)
    atomic_write(out / RUN_CONFIG, lambda p: Path(p).write_text(config))
    write_parquet_atomic(metrics, out / RUN_METRICS)
    sd = pack(state, cfg, data_seen)
    if (out / CHECKPOINT).exists():
        os.replace(out / CHECKPOINT, out / PREVIOUS)
    atomic_write(out / CHECKPOINT, lambda p: torch.save(sd, p))


def _load(path: Path, device: torch.device) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{path}: missing")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:
        raise UserError(f"{path}: unreadable checkpoint ({type(err).__name__})") from None


def _new_data(
    cfg: TrainConfig, data_seen: dict[str, Any], path: Path, recorded: dict[str, Any], allow: bool
) -> None:
    where = cfg.data_dir or cfg.dataset
    seen = f"{recorded['train']} train / {recorded['val']} val images"
    now = f"{data_seen['train']} / {data_seen['val']}"
    if not allow:
        raise DataError(
            where,
            f"holds other data than {path} was trained on (then {seen}, now {now}, another "
            "fingerprint); give the same data, or --allow-new-data to resume on these",
        )
    print(f"warning: {where}: resuming {path} on other data ({now})", file=sys.stderr)


def resume(
    out: Path,
    state: TrainingState,
    cfg: TrainConfig,
    data_seen: dict[str, Any],
    allow_new_data: bool = False,
) -> bool:
    """Continue from ``out/checkpoint.pt`` if there is one (loaded with weights_only); if it
    is unreadable, from the one before it. False when ``out`` holds no checkpoint."""
    path, previous = out / CHECKPOINT, out / PREVIOUS
    if not path.is_file() and not previous.is_file():
        return False
    try:
        sd = _load(path, torch.device(cfg.device))
    except UserError as err:
        if not previous.is_file():
            raise
        sd = _load(previous, torch.device(cfg.device))
        print(f"warning: {err}; resumed from {previous} (epoch {sd['epoch']})", file=sys.stderr)
    saved = TrainConfig.model_validate_json(sd["config"])
    recorded = json.loads(sd["data"]) if "data" in sd else None
    # a moved data folder is the same run: the data's fingerprint says whether it is
    ignored = {"epochs", "device"} | ({"data_dir"} if recorded else set())
    old, new = saved.model_dump(exclude=ignored), cfg.model_dump(exclude=ignored)
    changed = [f"{k}: {old[k]!r} -> {new[k]!r}" for k in old if old[k] != new[k]]
    if changed:
        raise ConfigError(
            f"{path}: was written with a different config ({'; '.join(changed)}); resume with "
            "the same settings or use another --out"
        )
    if recorded and recorded["fingerprint"] != data_seen["fingerprint"]:
        _new_data(cfg, data_seen, path, recorded, allow_new_data)
    if cfg.epochs < int(sd["epoch"]):
        raise ConfigError(
            f"epochs: {path} has trained {sd['epoch']} epochs already, this run asks for "
            f"{cfg.epochs}; ask for at least as many"
        )
    unpack(state, sd)
    if state.scheduler is not None and saved.epochs != cfg.epochs:
        state.reschedule(cfg.epochs)
    return True


def inherit(path: Path, state: TrainingState, cfg: TrainConfig) -> None:
    """Go on from another run's checkpoint with this run's settings (a PBT child from its
    parent's): its network, optimiser and initializer state, random streams, epoch and records,
    and ``cfg``'s learning rates (``TrainingState.retune``). The network must be the same: a
    checkpoint of another shape is one line."""
    sd = _load(path, torch.device(cfg.device))
    try:
        unpack(state, sd)
    except RuntimeError as err:  # load_state_dict's size mismatches
        raise ConfigError(f"{path}: not this run's network ({str(err).splitlines()[0]})") from None
    state.retune(cfg)


def snapshot(run: Path, into: Path, name: str) -> tuple[Path, int]:
    """A copy of a run's latest checkpoint as ``into/<name>-epoch-<E>.pt`` (written atomically;
    the run may be writing its next one meanwhile: the one just set aside is as good), and its
    epoch E. ``UserError`` when the run has none."""
    data = _latest_bytes(run)
    epoch = int(torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)["epoch"])
    path = into / f"{name}-epoch-{epoch:04d}.pt"
    into.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda p: Path(p).write_bytes(data))
    return path, epoch


def _latest_bytes(run: Path) -> bytes:
    for source in (run / CHECKPOINT, run / PREVIOUS):
        try:
            return source.read_bytes()  # whole: the run may replace the file meanwhile
        except FileNotFoundError:
            continue
    raise UserError(f"{run}: no checkpoint to copy")
