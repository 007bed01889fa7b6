"""What a study is: a base training config, a search space, budgets, sampler, pruner, probe
and storage; validated before Ray starts or anything is written. No Ray or Optuna here, so the
CLI can check a study file in a blink.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from eqpop.config import ConfigError, TrainConfig, build_config, one_line
from eqpop.presets import PRESETS
from eqpop.records import JOURNAL

Choice = str | int | float | bool


class Param(BaseModel):
    """One searched config field: ``choices``, or a range ``low``..``high`` (``log``-uniform,
    ``integer``). ``zero_or``: the value is 0 or drawn from the range, each half the time a
    priori (the paper's "no homeostasis, or lambda log-uniform in 0.1-20"). ``when``: drawn only
    if other searched fields took one of the listed values (N only for hep, say)."""

    model_config = ConfigDict(extra="forbid")

    choices: list[Choice] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    zero_or: bool = False
    when: dict[str, list[Choice]] | None = None

    @model_validator(mode="after")
    def _check(self) -> Param:
        if self.choices is not None:
            if not self.choices or self.low is not None or self.high is not None:
                raise ValueError("give either a non-empty choices list or low and high")
            return self
        if self.low is None or self.high is None:
            raise ValueError("give either a non-empty choices list or low and high")
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"need finite low < high, got {self.low}, {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"log needs low > 0, got {self.low}")
        return self

    def arrow_types(self, name: str) -> dict[str, pa.DataType]:
        """The Optuna parameters this field becomes, and their Parquet types."""
        if self.choices is not None:
            kinds = {type(c) for c in self.choices}
            kind = {bool: pa.bool_(), int: pa.int64(), float: pa.float64()}.get(
                kinds.pop() if len(kinds) == 1 else str, pa.string()
            )
            return {name: kind}
        out = {f"{name}_on": pa.bool_()} if self.zero_or else {}
        out[name] = pa.int64() if self.integer else pa.float64()
        return out

    def suggest(self, trial: Any, name: str) -> Any:
        """Draw the value from an Optuna trial (define-by-run)."""
        if self.choices is not None:
            return trial.suggest_categorical(name, self.choices)
        if self.zero_or and not trial.suggest_categorical(f"{name}_on", [False, True]):
            return 0
        if self.integer:
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(name, self.low, self.high, log=self.log)


class Probe(BaseModel):
    """Every ``every`` epochs, all estimators on a fixed probe batch of the trial's net."""

    model_config = ConfigDict(extra="forbid")

    every: int = Field(default=5, ge=1)
    batch: int = Field(default=32, ge=1)
    betas: list[float] = Field(default=[0.1, 0.5], min_length=1)
    n_points: list[int] = Field(default=[2, 4], min_length=1)

    @field_validator("betas")
    @classmethod
    def _betas(cls, v: list[float]) -> list[float]:
        if any(not math.isfinite(b) or b <= 0 for b in v):
            raise ValueError(f"need finite values > 0, got {v}")
        return v

    @field_validator("n_points")
    @classmethod
    def _n(cls, v: list[int]) -> list[int]:
        if any(n < 2 for n in v):
            raise ValueError(f"need integers >= 2, got {v}")
        return v


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class StudyConfig(BaseModel):
    """One study. Trials train ``preset`` + ``base`` + the drawn ``space`` values."""

    model_config = ConfigDict(extra="forbid")

    name: str
    preset: str | None = None
    base: dict[str, Any] = {}
    space: dict[str, Param] = {}
    trials: int = Field(default=12, ge=1, description="finished (complete or pruned) trials")
    timeout: float | None = Field(default=None, gt=0, description="seconds; no new trial after")
    actors: int = Field(default=2, ge=1)
    gpus_per_actor: float = Field(default=0.0, ge=0)
    cpus_per_actor: float = Field(default=1.0, gt=0)
    resources_per_actor: dict[str, float] = Field(
        default={}, description="Ray custom resources each actor needs (to pin actors to nodes)"
    )
    placement_timeout: float = Field(
        default=600.0,
        gt=0,
        description="seconds the study waits with no actor placed (the cluster shrank below "
        "one actor's resources) before it stops",
    )
    sampler: Literal["tpe", "random"] = "tpe"
    seed: int = 0
    pruner: Literal["median", "successive_halving", "hyperband", "none"] = "median"
    pruner_warmup: int = Field(default=2, ge=0, description="epochs before a trial may be pruned")
    pruner_startup: int = Field(default=3, ge=0, description="finished trials before pruning")
    max_retries: int = Field(default=2, ge=0, description="re-runs of a trial whose actor died")
    max_residual: float = Field(
        default=0.5, gt=0, description="a trial whose free phase ends further than this fails"
    )
    max_failures_in_row: int = Field(
        default=10, ge=1, description="the study stops after this many failed trials in a row"
    )
    probe: Probe = Probe()
    storage: str | None = Field(default=None, description="RDB URL or journal file path")
    out: Path | None = Field(default=None, description="default reports/<name>")
    address: str = Field(default="local", description="Ray address: local, auto or host:port")
    flush_seconds: float = Field(default=5.0, gt=0)
    heartbeat_seconds: float = Field(
        default=10.0,
        gt=0,
        description="the driver renews its claim on the study this often; a driver on another "
        "host that misses three beats counts as gone",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.fullmatch(v) or ".." in v:
            raise ValueError(
                f"got {v!r}; use letters, digits, '_', '-' and '.', no path separators or '..'"
            )
        return v

    @field_validator("preset")
    @classmethod
    def _preset(cls, v: str | None) -> str | None:
        if v is not None and v not in PRESETS:
            raise ValueError(f"unknown {v!r}; choose one of {', '.join(PRESETS)}")
        return v

    @model_validator(mode="after")
    def _check(self) -> StudyConfig:
        for where, fields in (("base", self.base), ("space", self.space)):
            for field in fields:
                if field not in TrainConfig.model_fields:
                    raise ValueError(f"{where}.{field}: not a training config field")
        for name, p in self.space.items():
            for other in p.when or {}:
                if other not in self.space:
                    raise ValueError(f"space.{name}.when: {other} is not searched")
        self.train_config({})  # the base alone must be a valid run
        if self.out is None:
            self.out = Path("reports") / self.name
        return self

    def train_config(self, drawn: dict[str, Any]) -> TrainConfig:
        base = {**(PRESETS[self.preset] if self.preset else {}), **self.base}
        try:
            return build_config(**{**base, **drawn})
        except ConfigError as err:
            raise ValueError(f"base: {err}") from None

    def draw(self, trial: Any) -> dict[str, Any]:
        """The trial's config values, honouring ``when`` (fields in the order given)."""
        drawn: dict[str, Any] = {}
        for name, p in self.space.items():
            if p.when and any(drawn.get(k) not in vals for k, vals in p.when.items()):
                continue
            drawn[name] = p.suggest(trial, name)
        return drawn

    def param_types(self) -> dict[str, pa.DataType]:
        return {k: v for name, p in self.space.items() for k, v in p.arrow_types(name).items()}

    @property
    def storage_url(self) -> str:
        """The Optuna storage: given, or a journal file in the study folder."""
        return self.storage or str(Path(self.out) / JOURNAL)


def build_study(**values: Any) -> StudyConfig:
    try:
        return StudyConfig(**values)
    except ValidationError as err:
        raise ConfigError(one_line(err, StudyConfig, "study")) from None
