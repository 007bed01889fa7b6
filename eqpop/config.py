"""One typed, validated config per training run (pydantic: one place for defaults and errors).

A config comes from a preset, a TOML/YAML file and ``key=value`` overrides, in that order, and
is validated before anything runs or is written. ``ConfigError`` carries one line that names
the field and what it accepts.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from eqpop.errors import ConfigError
from eqpop.estimators import registry
from eqpop.nets.base import Init

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Net = Literal["mlp", "output-feedback", "conv", "pcn"]
Dataset = Literal[
    "digits",
    "mnist",
    "fashion_mnist",
    "cifar10",
    "cifar100",
    "imagenet32",
    "imagefolder",
    "synthetic",
]


class TrainConfig(BaseModel):
    """Everything one run needs. Field docs are the reference for ``--set key=value``."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # network
    net: Net = "mlp"
    hidden: list[int] = Field(default=[128], description="hidden widths, or conv channels")
    symmetric: bool = False
    asymmetry_angle: float | None = Field(default=None, ge=0, le=180)
    dt: float | None = Field(
        default=None, gt=0, le=1, description="step size u <- u + dt (f(u) - u); None: net's own"
    )
    init: Init = Field(
        default="uniform",
        description="weight draw: uniform (PyTorch's default, U(+-1/sqrt(fan_in))) or "
        "lecun_normal (Flax's, the papers' code: truncated normal, std 1/sqrt(fan_in))",
    )
    # data
    dataset: Dataset = "digits"
    data_dir: Path | None = None
    augment: bool = False
    inputs: Literal["standardise", "unit"] = Field(
        default="standardise",
        description="standardise: per-channel mean 0, std 1 (training-set statistics); unit: "
        "pixels scaled to [0, 1] (x/255), as the papers' Fashion-MNIST code feeds the MLP",
    )
    train_subset: int | None = Field(
        default=None,
        ge=1,
        description="train on this many training images only (the same fixed random draw for "
        "every run and seed); None: all of them",
    )
    # estimator
    method: str = Field(default="hep", description="a registered estimator")
    beta: float = Field(
        default=0.5,
        description="nudge strength; classic: its sign is the direction (> 0 towards the target, "
        "the papers' code's beta < 0), every other method uses |beta|",
    )
    n_points: int = Field(default=2, ge=2)
    random_sign: bool = Field(default=False, description="random sign of beta per batch")
    nudge_nonfinite: Literal["keep", "zero"] = Field(
        default="keep",
        description="hep: keep a nudged point's non-finite states (the run stops as diverged) or "
        "zero them, as the papers' code does (nan_to_num)",
    )
    periods: int = Field(default=5, ge=1)
    steps_per_point: int = Field(default=60, ge=1)
    sample: Literal["end", "every"] = Field(
        default="end",
        description="hep_continuous: read the state at the end of each beta's hold (the paper's "
        "code) or at every step (a running average, transients included)",
    )
    t_free: int = Field(default=150, ge=1)
    t_nudge: int = Field(default=20, ge=1)
    t_adjoint: int | None = Field(
        default=None,
        ge=1,
        description="cap on RBP's adjoint / exact's tangent iterations in training (default "
        "t_nudge, as in the papers' code: exact is then the limit of hEP with the same nudged "
        "phase, and the truncated series bounds the gradient where the fixed point is marginal)",
    )
    solver: Literal["plain", "anderson"] = Field(
        default="plain",
        description="how free phases (training, evaluation, probes) and RBP's adjoint reach "
        "their fixed point: plain steps, or Anderson acceleration to solver_tol (t_free and "
        "the adjoint's cap bound the steps; not converged ends MAX_STEPS)",
    )
    solver_tol: float | None = Field(
        default=None,
        gt=0,
        description="stop a free phase once every sample's residual (RMS change per step) is "
        "under this, checked every few steps; needed by anderson; plain without it runs "
        "exactly t_free steps",
    )
    anderson_memory: int = Field(default=5, ge=1, le=50)
    # homeostasis
    lambda_homeo: float = Field(default=0.0, ge=0)
    homeo_samples: int = Field(default=5, ge=1)
    # optimisation
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(default=0.01, gt=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    lr_scales: list[float] | None = Field(
        default=None, description="one learning-rate factor per layer, then one for the readout"
    )
    cosine_schedule: bool = False
    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=50, ge=1)
    eval_batch_size: int = Field(default=500, ge=1)
    # Initialized EP (O'Connor et al. 2019)
    init_ep: bool = False
    init_ep_lr: float = Field(default=0.01, gt=0)
    init_ep_lambda: float = Field(default=0.0, ge=0, description="Eq. (10) pull to prediction")
    # measurement and run
    probe_batch: int = Field(default=64, ge=1)
    seed: int = 0
    device: str = "cpu"
    dtype: Literal["float32", "float64"] = "float32"

    @property
    def n_layers(self) -> int:
        """Layers with a state: the hidden widths plus the output layer for dense nets; for the
        conv net ``hidden`` lists every layer's channels, the last one included."""
        return len(self.hidden) if self.net == "conv" else len(self.hidden) + 1

    @property
    def adjoint_steps(self) -> int:
        """The cap on RBP's adjoint and exact's tangent iterations in training."""
        return self.t_adjoint or self.t_nudge

    @property
    def solver_memory(self) -> int:
        """Anderson's memory, 0 for plain steps (what ``settle`` and RBP's adjoint take)."""
        return self.anderson_memory if self.solver == "anderson" else 0

    def relaxation(self) -> dict[str, Any]:
        """``settle``'s arguments for a free phase of this config."""
        return {"steps": self.t_free, "tol": self.solver_tol, "memory": self.solver_memory}

    @field_validator("method")
    @classmethod
    def _registered(cls, v: str) -> str:
        known = registry.names()
        if v not in known:
            listed = ", ".join(repr(n) for n in known[:-1]) + f" or {known[-1]!r}"
            raise ValueError(f"got {v!r}; input should be {listed}")
        return v

    @field_validator("hidden")
    @classmethod
    def _positive_widths(cls, v: list[int]) -> list[int]:
        if not v or min(v) < 1:
            raise ValueError("needs at least one width, all >= 1")
        return v

    @field_validator("lr_scales")
    @classmethod
    def _positive_scales(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and (not v or min(v) <= 0):
            raise ValueError("all scales must be > 0")
        return v

    @field_validator("beta", "lr", "lambda_homeo", "init_ep_lambda", "weight_decay")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be finite")
        return v

    @field_validator("beta")
    @classmethod
    def _nonzero(cls, v: float) -> float:
        if v == 0:
            raise ValueError("must be non-zero (its sign is the nudge's direction for classic)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.symmetric and self.asymmetry_angle is not None:
            raise ValueError("asymmetry_angle cannot be combined with symmetric")
        if self.symmetric and self.net == "output-feedback":
            raise ValueError("symmetric: the output-feedback net has no tied form")
        if self.lr_scales is not None and len(self.lr_scales) != self.n_layers + 1:
            raise ValueError(
                f"lr_scales needs {self.n_layers + 1} values (one per layer, output layer "
                f"included, then the readout), got {len(self.lr_scales)}"
            )
        if self.solver == "anderson" and self.solver_tol is None:
            raise ValueError("solver anderson needs solver_tol (the residual to reach)")
        if self.init_ep and not registry.get(self.method).free_phase:
            raise ValueError(f"init_ep needs a free phase; {self.method} has none")
        if self.dataset not in ("digits", "synthetic") and self.data_dir is None:
            raise ValueError(f"dataset {self.dataset} needs data_dir (--data-dir)")
        return self


def one_line(
    err: ValidationError, model: type[BaseModel] | None = None, what: str = "config"
) -> str:
    """The first validation error as ``field: what is wrong`` (``what`` when it concerns the
    whole; the known fields of ``model`` listed for an unknown top-level field)."""
    model = model or TrainConfig
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or what
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        known = f"; known fields: {', '.join(model.model_fields)}" if len(first["loc"]) == 1 else ""
        msg = f"unknown field{known}"
    elif first["type"] == "literal_error":
        msg = f"got {first.get('input')!r}; {msg[0].lower()}{msg[1:]}"
    return f"{field}: {msg}"


def build_config(**values: Any) -> TrainConfig:
    try:
        return TrainConfig(**values)
    except ValidationError as err:
        raise ConfigError(one_line(err)) from None


def read_config_file(path: Path) -> dict[str, Any]:
    """A TOML or YAML file of config fields (a table/mapping at the top level)."""
    if not path.is_file():
        raise ConfigError(f"config file {path}: missing")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path}: not UTF-8 text") from None
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            raise ConfigError(f"config file {path}: must end in .toml, .yaml or .yml")
    except (tomllib.TOMLDecodeError, ValueError) as err:
        raise ConfigError(f"config file {path}: not valid ({str(err).splitlines()[0]})") from None
    except Exception as err:  # yaml.YAMLError
        raise ConfigError(f"config file {path}: not valid ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: must hold a mapping of fields")
    return data


def parse_override(text: str, known: Iterable[str] = TrainConfig.model_fields) -> tuple[str, Any]:
    """``key=value`` with the value read as YAML (numbers, booleans, lists, null); ``key`` (or
    its part before a dot) one of ``known``."""
    import yaml

    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected key=value")
    key = key.strip().replace("-", "_")
    known = list(known)
    if key.partition(".")[0] not in known:
        raise ConfigError(f"--set {key}: unknown field; known fields: {', '.join(known)}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):  # YAML 1.1 reads "1e-3" as text; a number is meant
        with contextlib.suppress(ValueError):
            value = float(value)
    return key, value
