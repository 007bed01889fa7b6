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
            if kinds == {int, float}:  # 1 and 0.5 from a YAML file: numbers all the same
                kinds = {float}
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


#: config fields a PBT child cannot change: they shape the network, its optimiser or its data,
#: which the copied checkpoint fixes (and the seed, which names the member's first draw)
FIXED_IN_TRAINING = frozenset(
    {
        "net",
        "hidden",
        "symmetric",
        "asymmetry_angle",
        "feedback_scale",
        "init",
        "dataset",
        "data_dir",
        "inputs",
        "train_subset",
        "augment",
        "optimizer",
        "lr_scales",
        "cosine_schedule",
        "init_ep",
        "init_ep_optimizer",
        "epochs",
        "seed",
        "device",
        "dtype",
    }
)


class PBT(BaseModel):
    """Population-based training (Jaderberg et al. 2017; Ray Tune's
    ``PopulationBasedTraining``): ``population`` members train at once (default: one per
    actor); every ``perturbation_interval`` epochs a member in the bottom ``quantile_fraction``
    of the latest scores copies a top member's checkpoint and goes on with its settings
    perturbed (``mutations``: space fields, default all but ``seed``; each resampled with
    ``resample_probability``, else a number times 0.8 or 1.2 within its bounds, a choice moved
    to a neighbour)."""

    model_config = ConfigDict(extra="forbid")

    population: int | None = Field(default=None, ge=2, description="members; default actors")
    perturbation_interval: int = Field(default=2, ge=1, description="epochs between exploits")
    quantile_fraction: float = Field(default=0.25, gt=0, le=0.5)
    resample_probability: float = Field(default=0.25, ge=0, le=1)
    mutations: list[str] | None = Field(
        default=None, description="space fields a child perturbs; default all but seed"
    )


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
    sampler: Literal["tpe", "random", "grid"] = Field(
        default="tpe",
        description="tpe or random: draw from the space; grid: run every cell once (the "
        "space's choices crossed, times each of ``cells``), as the papers' tables",
    )
    cells: list[dict[str, Choice]] = Field(
        default=[],
        description="grid: settings fixed per cell (one dict of training config fields "
        "each), every one crossed with the space's choices",
    )
    schedule: Literal["search", "pbt"] = Field(
        default="search",
        description="search: each trial keeps its settings (Optuna's sampler and pruner); "
        "pbt: population-based training (``pbt``), members exploit and explore",
    )
    pbt: PBT = PBT()
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
        cell_fields = {field for cell in self.cells for field in cell}
        for where, fields in (("base", self.base), ("space", self.space), ("cells", cell_fields)):
            for field in fields:
                if field not in TrainConfig.model_fields:
                    raise ValueError(f"{where}.{field}: not a training config field")
        for name, p in self.space.items():
            for other in p.when or {}:
                if other not in self.space and other not in cell_fields:
                    raise ValueError(f"space.{name}.when: {other} is not searched")
        self._check_grid(cell_fields)
        self._check_pbt()
        self.train_config({})  # the base alone must be a valid run
        if self.out is None:
            self.out = Path("reports") / self.name
        return self

    def _check_grid(self, cell_fields: set[str]) -> None:
        if self.sampler != "grid":
            if self.cells:
                raise ValueError("cells: only a grid (sampler: grid) has cells")
            return
        for name, p in self.space.items():
            if p.choices is None:
                raise ValueError(f"space.{name}: a grid needs choices, not a range")
        both = cell_fields & set(self.space)
        if both:
            raise ValueError(f"cells: {', '.join(sorted(both))} is in the space too")
        if "pruner" not in self.model_fields_set:
            self.pruner = "none"  # a table's every cell trains to the end
        cells = self.grid()
        if "trials" not in self.model_fields_set:
            self.trials = len(cells)
        elif self.trials > len(cells):
            raise ValueError(f"trials: the grid has {len(cells)} cells, got {self.trials}")
        for cell in cells:
            self.train_config(cell)  # every cell must be a valid run

    def _check_pbt(self) -> None:
        if self.schedule != "pbt":
            if self.pbt != PBT():  # settings that would do nothing
                raise ValueError("pbt: needs schedule: pbt")
            return
        if self.sampler == "grid":
            raise ValueError("schedule: pbt draws its first members; use sampler tpe or random")
        for name in self.pbt.mutations or []:
            if name not in self.space:
                raise ValueError(f"pbt.mutations: {name} is not in the space")
        for name in self.mutations():
            if name in FIXED_IN_TRAINING:
                raise ValueError(
                    f"pbt.mutations: {name} cannot change during training (a child continues "
                    "its parent's network); leave it out of the mutations"
                )
        if not self.mutations():
            raise ValueError("pbt.mutations: nothing to perturb; the space has no field but seed")
        if self.pbt.population is None:
            self.pbt.population = self.actors
        if "pruner" not in self.model_fields_set:
            self.pruner = "none"  # the population replaces pruning
        if "trials" not in self.model_fields_set:
            self.trials = self.pbt.population

    def mutations(self) -> list[str]:
        """The space fields a PBT child perturbs."""
        if self.pbt.mutations is not None:
            return list(self.pbt.mutations)
        return [name for name in self.space if name != "seed"]

    def grid(self) -> list[dict[str, Choice]]:
        """A grid's cells, in order: each of ``cells`` (or one empty one) crossed with the
        space's choices, a field left out where its ``when`` does not hold; no cell twice."""
        found: list[dict[str, Choice]] = []
        partial = [dict(cell) for cell in self.cells or [{}]]
        for name, p in self.space.items():
            grown = []
            for cell in partial:
                if p.when and any(cell.get(k) not in vals for k, vals in p.when.items()):
                    grown.append(cell)
                else:
                    grown += [{**cell, name: choice} for choice in p.choices]
            partial = grown
        for cell in partial:
            if cell not in found:
                found.append(cell)
        return found

    def searched(self) -> dict[str, Param]:
        """Every field a trial's settings may name: the space, and for a grid each field of
        its cells as a choice among the values the cells give it."""
        fixed: dict[str, list[Choice]] = {}
        for cell in self.cells:
            for field, value in cell.items():
                values = fixed.setdefault(field, [])
                if value not in values:
                    values.append(value)
        return {**self.space, **{f: Param(choices=values) for f, values in fixed.items()}}

    def train_config(self, drawn: dict[str, Any]) -> TrainConfig:
        base = {**(PRESETS[self.preset] if self.preset else {}), **self.base}
        try:
            return build_config(**{**base, **drawn})
        except ConfigError as err:
            raise ValueError(f"base: {err}") from None

    def draw(self, trial: Any, fixed: dict[str, Any] | None = None) -> dict[str, Any]:
        """The trial's config values, honouring ``when`` (fields in the order given); a grid
        trial's are the cell it was queued with (``fixed``), suggested as Optuna params."""
        drawn: dict[str, Any] = {}
        if self.sampler == "grid":
            for name, p in self.searched().items():
                if name in (fixed or {}):
                    drawn[name] = p.suggest(trial, name)
            return drawn
        for name, p in self.space.items():
            if p.when and any(drawn.get(k) not in vals for k, vals in p.when.items()):
                continue
            drawn[name] = p.suggest(trial, name)
        return drawn

    def param_types(self) -> dict[str, pa.DataType]:
        searched = self.searched().items()
        return {k: v for name, p in searched for k, v in p.arrow_types(name).items()}

    @property
    def storage_url(self) -> str:
        """The Optuna storage: given, or a journal file in the study folder."""
        return self.storage or str(Path(self.out) / JOURNAL)


def build_study(**values: Any) -> StudyConfig:
    try:
        return StudyConfig(**values)
    except ValidationError as err:
        raise ConfigError(one_line(err, StudyConfig, "study")) from None
