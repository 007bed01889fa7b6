"""The experiment of Fig. 2a-b: every estimator on one network and one batch, over |beta| and N.

Each EP-type estimate is compared, layer by layer, with RBP's delta (the true error) and with the
exact d_beta s* (what EP would give without finite-nudge bias); their gap is the bias from
Jacobian asymmetry. The free fixed point is settled once and shared by all free-phase methods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor
from tqdm import tqdm

from eqpop.dynamics import Settled, settle
from eqpop.estimators import Estimate, estimate
from eqpop.metrics import grad_cosine, layer_cosines, relative_errors
from eqpop.nets import NETS, EquilibriumNet, net_for_data

#: the measurement columns of one comparison row (also the study's ``comparisons/``)
MEASURES = [
    "method",
    "beta",
    "n_points",
    "layer",
    "cos_rbp",
    "cos_exact",
    "rel_err_exact",
    "grad_cos_rbp",
    "seconds",
    "residual",
    "imag_ratio",
]
COLUMNS = [*MEASURES, "net", "dataset", "seed"]

DEFAULT_HIDDEN = {"mlp": (64, 32), "output-feedback": (64, 32), "pcn": (64, 32), "conv": (16, 32)}


@dataclass
class CompareConfig:
    """One comparison: a net, a batch and a grid. Validated on construction."""

    net: str = "mlp"
    hidden: tuple[int, ...] | None = None
    symmetric: bool = False
    asymmetry_angle: float | None = None
    dataset: str = "digits"
    batch: int = 64
    betas: tuple[float, ...] = (0.01, 0.05, 0.1, 0.5, 1.0)
    n_points: tuple[int, ...] = (2, 4, 6)
    steps: int = 200
    nudge_steps: int = 100
    periods: int = 5
    steps_per_point: int = 60
    seed: int = 0
    out: Path = field(default_factory=lambda: Path("reports/compare/compare.parquet"))

    def __post_init__(self) -> None:
        if self.net not in NETS:
            raise ValueError(f"net: unknown {self.net!r}; choose one of {', '.join(NETS)}")
        if self.dataset != "digits":
            raise ValueError(f"dataset: unknown {self.dataset!r}; choose digits")
        if not self.betas or any(not math.isfinite(b) or b <= 0 for b in self.betas):
            raise ValueError(f"betas: need finite values > 0, got {list(self.betas)}")
        if not self.n_points or any(int(n) != n or n < 2 for n in self.n_points):
            raise ValueError(f"n_points: need integers >= 2, got {list(self.n_points)}")
        for name in ("batch", "steps", "nudge_steps", "periods", "steps_per_point"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.hidden is not None and (not self.hidden or min(self.hidden) < 1):
            raise ValueError(f"hidden: need positive widths, got {list(self.hidden)}")
        if self.symmetric and self.asymmetry_angle is not None:
            raise ValueError("asymmetry_angle: cannot be combined with symmetric")
        if self.symmetric and self.net == "output-feedback":
            raise ValueError("symmetric: the output-feedback net has no tied form")
        self.out = Path(self.out)
        if self.out.suffix != ".parquet":
            raise ValueError(f"out: must end in .parquet, got {self.out}")


@dataclass(frozen=True)
class Grid:
    """Which estimates one comparison makes: rbp and exact, then classic, hep (each N) and
    hep_continuous (each N) at every |beta|; and their settling budgets."""

    betas: tuple[float, ...]
    n_points: tuple[int, ...]
    steps: int
    nudge_steps: int
    periods: int
    steps_per_point: int

    def runs(
        self, truth: bool = True, continuous: bool = True
    ) -> list[tuple[str, float | None, int | None]]:
        runs: list[tuple[str, float | None, int | None]] = (
            [("rbp", None, None), ("exact", None, None)] if truth else []
        )
        for beta in self.betas:
            runs.append(("classic", beta, None))
            runs += [("hep", beta, n) for n in self.n_points]
            if continuous:
                runs += [("hep_continuous", beta, n) for n in self.n_points]
        return runs


def _residual(est: Estimate) -> float:
    keys = ("nudge_residual", "final_residual", "adjoint_residual", "tangent_residual")
    return next((est.stats[k] for k in keys if k in est.stats), est.stats.get("free_residual"))


def estimate_grid(
    net: EquilibriumNet,
    x: Tensor,
    y: Tensor,
    grid: Grid,
    free: Settled,
    truth: bool = True,
    continuous: bool = True,
    progress: bool = False,
) -> dict[tuple, Estimate]:
    """Every estimate of the grid from one free fixed point (``truth``: with rbp and exact;
    ``continuous``: with hep_continuous, which runs its own free phase)."""
    common = dict(
        steps=grid.steps,
        nudge_steps=grid.nudge_steps,
        free=free,
        periods=grid.periods,
        steps_per_point=grid.steps_per_point,
    )
    results: dict[tuple, Estimate] = {}
    runs = grid.runs(truth, continuous)
    for method, beta, n in tqdm(runs, desc="estimating", disable=not progress, unit="est"):
        hyper = dict(common)
        if beta is not None:
            hyper["beta"] = beta
        if n is not None:
            hyper["n_points"] = n
        results[(method, beta, n)] = estimate(net, x, y, method, **hyper)
    return results


def comparison_rows(
    results: dict[tuple, Estimate], rbp: Estimate, exact: Estimate
) -> list[dict[str, object]]:
    """One row per estimate and layer: cosines with RBP's delta and the exact d_beta s*."""
    rows: list[dict[str, object]] = []
    for (method, beta, n), est in results.items():
        cos_rbp = layer_cosines(est.error, rbp.error)
        cos_exact = layer_cosines(est.error, exact.error)
        rel = relative_errors(est.error, exact.error)
        gcos = grad_cosine(est.grads, rbp.grads)
        for layer in range(len(est.error)):
            rows.append(
                {
                    "method": method,
                    "beta": beta,
                    "n_points": n,
                    "layer": layer,
                    "cos_rbp": float(cos_rbp[layer]),
                    "cos_exact": float(cos_exact[layer]),
                    "rel_err_exact": rel[layer],
                    "grad_cos_rbp": gcos,
                    "seconds": est.stats["seconds"],
                    "residual": _residual(est),
                    "imag_ratio": est.stats.get("imag_ratio", math.nan),
                }
            )
    return rows


def run_compare(cfg: CompareConfig, progress: bool = True) -> pd.DataFrame:
    """All estimates on one batch, in float64 (a measurement, not a training run)."""
    from eqpop.data import load_dataset

    torch.manual_seed(cfg.seed)
    data = load_dataset(cfg.dataset)
    if cfg.batch > len(data.x_val):
        raise ValueError(f"batch: at most {len(data.x_val)} for {cfg.dataset}, got {cfg.batch}")
    pick = torch.randperm(len(data.x_val), generator=torch.Generator().manual_seed(cfg.seed))
    x = data.normalise(data.x_val[pick[: cfg.batch]], torch.float64)
    y = data.y_val[pick[: cfg.batch]]
    hidden = cfg.hidden or DEFAULT_HIDDEN[cfg.net]
    net = net_for_data(
        cfg.net, data.input_shape, data.n_classes, hidden, cfg.symmetric, cfg.asymmetry_angle
    ).double()
    grid = Grid(
        cfg.betas, cfg.n_points, cfg.steps, cfg.nudge_steps, cfg.periods, cfg.steps_per_point
    )
    results = estimate_grid(net, x, y, grid, settle(net, x, steps=cfg.steps), progress=progress)
    rows = comparison_rows(results, results[("rbp", None, None)], results[("exact", None, None)])
    frame = pd.DataFrame(rows, columns=MEASURES).assign(
        net=cfg.net, dataset=cfg.dataset, seed=cfg.seed
    )
    return typed(frame)[COLUMNS]


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """beta as float (NaN for rbp/exact) and N as a nullable int, whatever the rows hold."""
    return frame.astype({"beta": "float64", "n_points": "Int64", "layer": "int64"})


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean over layers of the cosines, one row per (method, beta, N): the table printed."""
    keys = ["method", "beta", "n_points"]
    cols = ["cos_rbp", "cos_exact", "rel_err_exact", "grad_cos_rbp", "seconds"]
    return frame.groupby(keys, dropna=False, sort=False)[cols].mean().reset_index()
