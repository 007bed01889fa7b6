"""The experiment of Fig. 2a-b: every estimator on one network and one batch, over |beta| and N.

Each EP-type estimate is compared, layer by layer, with RBP's delta (the true error) and with the
exact d_beta s* (what EP would give without finite-nudge bias); their gap is the bias from
Jacobian asymmetry. The free fixed point is settled once and shared by all free-phase methods.

Two measurements (the ``measured`` column), so that a finite nudge's bias is not mixed up with a
short nudged phase's truncation: ``converged``, the free phase, every nudged phase and the
exact derivative run ``CAP`` x ``t_free`` steps (the paper's Fig. 2), and ``as_trained``, the
grid's own ``t_nudge`` against the exact derivative through the same ``t_nudge`` nudged steps
(what a training step gets). RBP's delta, the true error, is the converged one in both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pandas as pd
import torch
from torch import Tensor
from tqdm import tqdm

from eqpop.config import CompareConfig
from eqpop.dynamics import Settled, settle
from eqpop.errors import ConfigError
from eqpop.estimators import Estimate, registry
from eqpop.estimators.exact import CAP
from eqpop.metrics import grad_cosine, layer_cosines, relative_errors
from eqpop.nets import EquilibriumNet, net_for_data
from eqpop.records import COMPARE_COLUMNS, MEASURES, with_methods
from eqpop.rng import drawing_from

#: one estimate of a grid: (method, |beta| or None, N or None)
Run = tuple[str, float | None, int | None]

DEFAULT_HIDDEN = {"mlp": (64, 32), "output-feedback": (64, 32), "pcn": (64, 32), "conv": (16, 32)}


@dataclass(frozen=True)
class Grid:
    """Which estimates one comparison makes, and their settling budgets: the two ground truths
    (RBP's delta, then the exact d_beta s*) once, every method without beta once, then at
    every |beta| each nudged method (for each N if it takes N), in table order."""

    betas: tuple[float, ...]
    n_points: tuple[int, ...]
    t_free: int
    t_nudge: int
    periods: int
    steps_per_point: int

    @property
    def converged(self) -> Grid:
        """The same grid with nudged phases as long as the exact derivative's default cap."""
        return replace(self, t_nudge=CAP * self.t_free)

    def runs(self, truth: bool = True, free_only: bool = False) -> list[Run]:
        """``truth``: with the ground truths; ``free_only``: only the methods that start from
        a free phase (the ones an Init-EP prediction can start)."""
        chosen = [
            m for m in registry.methods() if m.truth is None and (m.free_phase or not free_only)
        ]
        runs: list[Run] = []
        if truth:
            runs += [(m.name, None, None) for m in registry.truths()]
        runs += [(m.name, None, None) for m in chosen if not m.nudged]
        for beta in self.betas:
            for m in (m for m in chosen if m.nudged):
                runs += (
                    [(m.name, beta, n) for n in self.n_points]
                    if m.points
                    else [(m.name, beta, None)]
                )
        return runs


def estimate_grid(
    net: EquilibriumNet,
    x: Tensor,
    y: Tensor,
    grid: Grid,
    free: Settled,
    truth: bool = True,
    free_only: bool = False,
    progress: bool = False,
    known: dict[Run, Estimate] | None = None,
) -> dict[Run, Estimate]:
    """Every estimate of the grid (``Grid.runs``) that the net can take (no complex nudge on a
    net that is not holomorphic); those with a free phase share ``free``; those in ``known``
    are taken from it, not made again."""
    common = dict(
        t_free=grid.t_free,
        t_nudge=grid.t_nudge,
        free=free,
        periods=grid.periods,
        steps_per_point=grid.steps_per_point,
    )
    results: dict[Run, Estimate] = {}
    runs = [r for r in grid.runs(truth, free_only) if _runs_on(net, r[0])]
    for method, beta, n in tqdm(runs, desc="estimating", disable=not progress, unit="est"):
        if known and (method, beta, n) in known:
            results[(method, beta, n)] = known[(method, beta, n)]
            continue
        hyper = dict(common)
        if beta is not None:
            hyper["beta"] = beta
        if n is not None:
            hyper["n_points"] = n
        results[(method, beta, n)] = registry.estimate(net, x, y, method, **hyper)
    return results


def _runs_on(net: EquilibriumNet, method: str) -> bool:
    """A method that nudges with complex beta runs on holomorphic nets only."""
    return net.holomorphic or not registry.get(method).complex_nudge


def truths(results: dict[Run, Estimate]) -> tuple[Estimate, Estimate]:
    """A grid's two ground truths: RBP's delta and the exact d_beta s*."""
    delta, d_beta = (results[(m.name, None, None)] for m in registry.truths())
    return delta, d_beta


def comparison_rows(
    results: dict[Run, Estimate], rbp: Estimate, exact: Estimate, measured: str
) -> list[dict[str, object]]:
    """One row per estimate and layer: cosines with RBP's delta and the exact d_beta s*."""
    rows: list[dict[str, object]] = []
    for (method, beta, n), est in results.items():
        info = est.stats.read()
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
                    "measured": measured,
                    "cos_rbp": float(cos_rbp[layer]),
                    "cos_exact": float(cos_exact[layer]),
                    "rel_err_exact": rel[layer],
                    "grad_cos_rbp": gcos,
                    "seconds": info["seconds"],
                    "residual": info["residual"],
                    "imag_ratio": math.nan if info["imag_ratio"] is None else info["imag_ratio"],
                }
            )
    return rows


def measure_grid(
    net: EquilibriumNet,
    x: Tensor,
    y: Tensor,
    grid: Grid,
    free: Settled,
    progress: bool = False,
) -> tuple[list[dict[str, object]], tuple[Estimate, Estimate]]:
    """Both measurements of the grid (module docstring) as comparison rows, and the
    as-trained truths (RBP's delta, the exact derivative through ``t_nudge`` steps) for
    further estimates made with the grid's own step counts. ``free``: the free phase as
    trained; the converged measurement runs it on to ``CAP`` x ``t_free`` steps first (a free
    phase still drifting enters a one-sided estimate divided by beta)."""
    settled = settle(net, free.inputs, state=free.state, steps=(CAP - 1) * grid.t_free)
    converged = estimate_grid(net, x, y, grid.converged, settled, progress=progress)
    rbp, exact = truths(converged)
    rows = comparison_rows(converged, rbp, exact, "converged")
    delta, d_beta = (m.name for m in registry.truths())
    finite = registry.estimate(
        net, x, y, d_beta, t_free=grid.t_free, t_adjoint=grid.t_nudge, free=free
    )
    same = {run: est for run, est in converged.items() if _unshortened(run[0])}
    trained = {(delta, None, None): rbp, (d_beta, None, None): finite}
    trained |= estimate_grid(net, x, y, grid, free, truth=False, progress=progress, known=same)
    rows += comparison_rows(trained, rbp, finite, "as_trained")
    return rows, (rbp, finite)


def _unshortened(name: str) -> bool:
    """A method with neither a free phase nor a nudged phase to shorten (hep_continuous): its
    estimate is the same in both measurements, so it is made once."""
    method = registry.get(name)
    return not (method.free_phase or "t_nudge" in method.hyper)


def run_compare(cfg: CompareConfig, progress: bool = True) -> pd.DataFrame:
    """All estimates on one batch, in float64 (a measurement, not a training run)."""
    from eqpop.data import load_dataset

    data = load_dataset(cfg.dataset)
    if cfg.batch > len(data.x_val):
        raise ConfigError(f"batch: at most {len(data.x_val)} for {cfg.dataset}, got {cfg.batch}")
    pick = torch.randperm(len(data.x_val), generator=torch.Generator().manual_seed(cfg.seed))
    x = data.normalise(data.x_val[pick[: cfg.batch]], torch.float64)
    y = data.y_val[pick[: cfg.batch]]
    hidden = cfg.hidden or DEFAULT_HIDDEN[cfg.net]
    with drawing_from(torch.Generator().manual_seed(cfg.seed)):
        net = net_for_data(
            cfg.net,
            data.input_shape,
            data.n_classes,
            hidden,
            cfg.symmetric,
            cfg.asymmetry_angle,
            cfg.feedback_scale,
        ).double()
    grid = Grid(
        tuple(cfg.betas),
        tuple(cfg.n_points),
        cfg.t_free,
        cfg.t_nudge,
        cfg.periods,
        cfg.steps_per_point,
    )
    rows, _ = measure_grid(net, x, y, grid, settle(net, x, steps=cfg.t_free), progress)
    frame = pd.DataFrame(rows, columns=MEASURES).assign(
        net=cfg.net, dataset=cfg.dataset, seed=cfg.seed
    )
    return with_methods(typed(frame)[COMPARE_COLUMNS], registry.describe())


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """beta as float (NaN for rbp/exact) and N as a nullable int, whatever the rows hold."""
    return frame.astype({"beta": "float64", "n_points": "Int64", "layer": "int64"})


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean over layers of the cosines, one row per (method, beta, N): the table printed."""
    keys = ["method", "beta", "n_points"]
    cols = ["cos_rbp", "cos_exact", "rel_err_exact", "grad_cos_rbp", "seconds"]
    return frame.groupby(keys, dropna=False, sort=False)[cols].mean().reset_index()
