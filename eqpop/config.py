"""One typed, validated config per training run and per comparison (pydantic: one place for
defaults, descriptions and errors; the command line's flags are made from these fields).

A config comes from a preset, a TOML/YAML file and ``key=value`` overrides, in that order, and
is validated before anything runs or is written. ``ConfigError`` carries one line that names
the field and what it accepts. Names are checked against the registries (nets, data sets,
methods) when a config is validated, not imported here: ``--help`` stays light.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from eqpop.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _registered(field: str, value: str) -> str:
    """``value`` if the registry behind ``field`` holds it (imported only when a config is
    validated, so that ``--help`` stays light), else the one-line list of what it holds."""
    if field == "net":
        from eqpop.nets import NETS as names
    elif field == "dataset":
        from eqpop.data import DATASETS as names
    elif field == "method":
        from eqpop.estimators.registry import names as registered

        names = registered()
    elif field == "feedback_scale":
        from eqpop.nets.base import FeedbackScale

        names = get_args(FeedbackScale)
    else:
        from eqpop.nets.base import Init

        names = get_args(Init)
    known = list(names)
    if value not in known:
        listed = ", ".join(repr(n) for n in known[:-1]) + f" or {known[-1]!r}"
        raise ValueError(f"got {value!r}; input should be {listed}")
    return value


def _holomorphic(net: str) -> bool:
    """Whether a registered net takes complex states (its class's ``analytic_strip``)."""
    from eqpop.nets import NETS

    return NETS[net].analytic_strip > 0


class NetShape(BaseModel):
    """The net's fields, as a training run and a comparison share them."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    net: str = Field(default="mlp", description="a registered net (eqpop.nets.NETS)")
    hidden: list[int] | None = Field(
        default=None, description="hidden widths (dense nets) or channels per layer (conv)"
    )
    symmetric: bool = Field(default=False, description="tie feedback to forward weights")
    asymmetry_angle: float | None = Field(
        default=None,
        ge=0,
        le=180,
        description="initial angle (degrees) between feedback and forward weights",
    )
    feedback_scale: str = Field(
        default="matched",
        description="with asymmetry_angle: the feedback's own draw rescaled to the forward "
        "weight's norm first (matched: the angle is exact) or kept as drawn (own: the papers' "
        "code, sin(a) own + cos(a) forward^T)",
    )

    @field_validator("net", "feedback_scale")
    @classmethod
    def _registered_shape(cls, v: str, info: ValidationInfo) -> str:
        return _registered(info.field_name, v)

    @field_validator("hidden")
    @classmethod
    def _positive_widths(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (not v or min(v) < 1):
            raise ValueError("needs at least one width, all >= 1")
        return v

    @model_validator(mode="after")
    def _tie(self) -> NetShape:
        if self.symmetric and self.asymmetry_angle is not None:
            raise ValueError("asymmetry_angle cannot be combined with symmetric")
        if self.feedback_scale != "matched" and self.asymmetry_angle is None:
            raise ValueError("feedback_scale: needs asymmetry_angle (it scales that start)")
        if self.symmetric and self.net == "output-feedback":
            raise ValueError("symmetric: the output-feedback net has no tied form")
        return self


class TrainConfig(NetShape):
    """Everything one run needs. Field docs are the reference for ``--set key=value``."""

    # network (and NetShape's)
    hidden: list[int] = Field(default=[128], description="hidden widths, or conv channels")
    dt: float | None = Field(
        default=None, gt=0, le=1, description="step size u <- u + dt (f(u) - u); None: net's own"
    )
    init: str = Field(
        default="uniform",
        description="weight draw: uniform (PyTorch's default, U(+-1/sqrt(fan_in))), "
        "lecun_normal (Flax's, the papers' code: truncated normal, std 1/sqrt(fan_in)) or "
        "xavier_uniform (Glorot's, O'Connor et al.'s code: U(+-sqrt(6/(fan_in+fan_out))))",
    )
    # data
    dataset: str = Field(default="digits", description="a registered data set")
    data_dir: Path | None = Field(default=None, description="where the data set's files are")
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
    method: str = Field(default="hep", description="a registered estimator (the gradient rule)")
    beta: float = Field(
        default=0.5,
        description="nudge strength; classic: its sign is the direction (> 0 towards the target, "
        "the papers' code's beta < 0), every other method uses |beta|",
    )
    n_points: int = Field(
        default=2, ge=2, description="hep: points N on the circle of radius |beta|"
    )
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
    lambda_homeo: float = Field(default=0.0, ge=0, description="Jacobian homeostasis strength")
    homeo_samples: int = Field(default=5, ge=1)
    # optimisation
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(default=0.01, gt=0, description="learning rate")
    momentum: float = Field(default=0.9, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    lr_scales: list[float] | None = Field(
        default=None, description="one learning-rate factor per layer, then one for the readout"
    )
    cosine_schedule: bool = False
    epochs: int = Field(default=10, ge=1, description="training epochs")
    batch_size: int = Field(default=50, ge=1, description="training batch size")
    eval_batch_size: int = Field(default=500, ge=1)
    # Initialized EP (O'Connor et al. 2019)
    init_ep: bool = Field(
        default=False,
        description="start every free phase from a feed-forward initializer (O'Connor)",
    )
    init_ep_lr: float = Field(
        default=0.01, gt=0, description="the initializer's rate (times lr_scales per layer)"
    )
    init_ep_optimizer: Literal["adam", "sgd"] = Field(
        default="adam",
        description="how the initializer learns: adam, or plain sgd (O'Connor et al.'s)",
    )
    init_ep_lambda: float = Field(default=0.0, ge=0, description="Eq. (10) pull to prediction")
    # measurement and run
    probe_batch: int = Field(default=64, ge=1)
    seed: int = Field(default=0, description="seed of every random draw of the run")
    device: str = Field(default="cpu", description="torch device: cpu, cuda, cuda:1")
    dtype: Literal["float32", "float64"] = "float32"

    @property
    def n_layers(self) -> int:
        """Layers with a state: the hidden widths plus the output layer for dense nets; for the
        conv net ``hidden`` lists every layer's channels, the last one included."""
        return len(self.hidden) if self.net == "conv" else len(self.hidden) + 1

    @property
    def solver_memory(self) -> int:
        """Anderson's memory, 0 for plain steps (what ``settle`` and RBP's adjoint take)."""
        return self.anderson_memory if self.solver == "anderson" else 0

    def relaxation(self) -> dict[str, Any]:
        """``settle``'s arguments for a free phase of this config."""
        return {"steps": self.t_free, "tol": self.solver_tol, "memory": self.solver_memory}

    @model_validator(mode="before")
    @classmethod
    def _adjoint_cap(cls, values: Any) -> Any:
        """``t_adjoint`` left out is ``t_nudge``: resolved here, so that the estimators read
        the cap under its own name."""
        if isinstance(values, dict) and values.get("t_adjoint") is None:
            nudge = values.get("t_nudge", cls.model_fields["t_nudge"].default)
            values = {**values, "t_adjoint": nudge}
        return values

    @field_validator("method", "dataset", "init")
    @classmethod
    def _registered_name(cls, v: str, info: ValidationInfo) -> str:
        return _registered(info.field_name, v)

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
        from eqpop.estimators import registry

        if self.lr_scales is not None and len(self.lr_scales) != self.n_layers + 1:
            raise ValueError(
                f"lr_scales needs {self.n_layers + 1} values (one per layer, output layer "
                f"included, then the readout), got {len(self.lr_scales)}"
            )
        if self.solver == "anderson" and self.solver_tol is None:
            raise ValueError("solver anderson needs solver_tol (the residual to reach)")
        if self.init_ep and not registry.get(self.method).free_phase:
            raise ValueError(f"init_ep needs a free phase; {self.method} has none")
        if registry.get(self.method).complex_nudge and not _holomorphic(self.net):
            raise ValueError(
                f"method {self.method} nudges with complex beta and the {self.net} net is not "
                "holomorphic; choose a method with real nudges (classic, exact, rbp)"
            )
        if self.dataset not in ("digits", "synthetic") and self.data_dir is None:
            raise ValueError(f"dataset {self.dataset} needs data_dir (--data-dir)")
        return self


class CompareConfig(NetShape):
    """One comparison (``eqpop compare``): a net, a batch of the bundled digits and a grid of
    |beta| and N. The step budgets are the training config's, by the same names."""

    hidden: list[int] | None = Field(
        default=None, description="hidden widths or conv channels; none: 64,32 (conv 16,32)"
    )

    dataset: Literal["digits"] = Field(default="digits", description="the bundled digits only")
    batch: int = Field(default=64, ge=1, description="validation images in the batch")
    betas: list[float] = Field(
        default=[0.01, 0.05, 0.1, 0.5, 1.0], description="teaching amplitudes |beta|"
    )
    n_points: list[int] = Field(default=[2, 4, 6], description="numbers N of points for hep")
    t_free: int = Field(default=200, ge=1, description="free-phase steps")
    t_nudge: int = Field(default=100, ge=1, description="nudged-phase steps")
    periods: int = Field(default=5, ge=1, description="hep_continuous: periods of the nudge")
    steps_per_point: int = Field(default=60, ge=1, description="hep_continuous: steps per beta")
    seed: int = Field(default=0, description="seed of the batch and the net's draw")
    out: Path = Field(
        default=Path("reports/compare/compare.parquet"), description="the Parquet file to write"
    )

    @field_validator("betas")
    @classmethod
    def _amplitudes(cls, v: list[float]) -> list[float]:
        if not v or any(not math.isfinite(b) or b <= 0 for b in v):
            raise ValueError(f"need finite values > 0, got {v}")
        return v

    @field_validator("n_points")
    @classmethod
    def _points(cls, v: list[int]) -> list[int]:
        if not v or min(v) < 2:
            raise ValueError(f"need integers >= 2, got {v}")
        return v

    @field_validator("out")
    @classmethod
    def _parquet(cls, v: Path) -> Path:
        if v.suffix != ".parquet":
            raise ValueError(f"must end in .parquet, got {v}")
        return v


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


def build_compare(**values: Any) -> CompareConfig:
    try:
        return CompareConfig(**values)
    except ValidationError as err:
        raise ConfigError(one_line(err, CompareConfig)) from None


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
