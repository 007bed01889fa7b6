"""What a run measures besides its training loss, in one place: the validation error
(``evaluate``), the epoch's symmetry and alignment measurements on the fixed probe batch
(``measure``), and every estimator on the current network (``probe_rows``: the comparison rows
of ``eqpop compare``, on a float64 copy; a study's probe)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import Tensor

from eqpop import homeostasis
from eqpop.compare import Grid, comparison_rows, estimate_grid, measure_grid
from eqpop.config import TrainConfig
from eqpop.data import Split, eval_batches
from eqpop.dynamics import settle
from eqpop.estimators import registry
from eqpop.estimators.init_ep import anchored
from eqpop.estimators.registry import Method
from eqpop.metrics import layer_cosines
from eqpop.train.state import TrainingState


def evaluate(
    state: TrainingState, cfg: TrainConfig, data: Split, device: torch.device, dtype: torch.dtype
) -> dict[str, float]:
    """Top-1/top-5 error by free-phase settling (Algorithm 3 under Init-EP), and under
    Init-EP the forward-pass error (Algorithm 2) and the prediction's distance."""
    net, dyn = state.net, state.dynamics()
    counts = torch.zeros(4, dtype=torch.float64, device=device)  # top1 top5 fwd dist
    n = 0
    for x, y in eval_batches(data, cfg.eval_batch_size, device, dtype):
        start = state.start_state(x)
        settled = settle(dyn, x, state=start, **cfg.relaxation()).state
        with torch.no_grad():
            logits = net.readout(settled)
            k = min(5, logits.shape[1])
            top = logits.topk(k, dim=1).indices
            counts[0] += (top[:, 0] != y).sum()
            counts[1] += (~(top == y[:, None]).any(1)).sum()
            if start is not None:
                counts[2] += (net.readout(start).argmax(1) != y).sum()
                counts[3] += state.initializer.distance(start, settled) * len(y)
        n += len(y)
    top1, top5, fwd, dist = counts.tolist()  # the evaluation's one host sync
    out = {"val_error": top1 / n, "val_top5_error": top5 / n}
    if state.initializer is not None:
        out.update(val_error_forward=fwd / n, init_distance=dist / n)
    return out


def measure(
    state: TrainingState, cfg: TrainConfig, method: Method, probe: tuple[Tensor, Tensor]
) -> dict[str, float]:
    """Symmetry, weight angles and the estimator's alignment with RBP on the probe batch."""
    net, (x, y) = state.net, probe
    free = settle(net, x, **cfg.relaxation())
    g = torch.Generator(device=x.device).manual_seed(cfg.seed)
    out = {"symmetry_ratio": homeostasis.symmetry_ratio(net, x, free.state, generator=g)}
    with torch.no_grad():
        out["homeo_probe"] = float(homeostasis.loss(net, x, free.state, generator=g))
    for k, angle in enumerate(homeostasis.weight_angle(net).values()):
        out[f"weight_angle_l{k}"] = angle
    truth = registry.truth("delta").name  # iterated to its tolerance: the true delta
    solver = {"solver": cfg.solver, "anderson_memory": cfg.anderson_memory}
    delta = registry.estimate(net, x, y, truth, t_free=cfg.t_free, free=free, **solver)
    hyper = method.settings(cfg) | ({"free": free} if method.free_phase else {})
    mine = method.estimate(net, x, y, **hyper)
    for k, c in enumerate(layer_cosines(mine.error, delta.error)):
        out[f"cos_rbp_l{k}"] = float(c)
    return out


class ProbeGrid(Protocol):
    """Which estimates a probe makes (a study's ``probe`` settings)."""

    batch: int
    betas: Sequence[float]
    n_points: Sequence[int]


def probe_rows(
    state: TrainingState, cfg: TrainConfig, probe: tuple[Tensor, Tensor], grid: ProbeGrid
) -> list[dict[str, Any]]:
    """Every registered estimator (every |beta| and N of ``grid``) from the settled free
    phase, measured converged and as trained (``eqpop.compare.measure_grid``); under Init-EP also
    every estimate with a free phase started from the initializer's prediction with the trial's
    own ``t_free`` (rows with ``init_ep`` true), as trained."""
    net = copy.deepcopy(state.net).double()
    x, y = probe
    x, y = x[: grid.batch].double(), y[: grid.batch]
    steps = Grid(
        tuple(grid.betas),
        tuple(grid.n_points),
        cfg.t_free,
        cfg.t_nudge,
        cfg.periods,
        cfg.steps_per_point,
    )
    rows, truth = measure_grid(net, x, y, steps, settle(net, x, **cfg.relaxation()))
    rows = [dict(row, init_ep=False) for row in rows]
    if state.initializer is not None:
        init = copy.deepcopy(state.initializer).double()
        dyn = anchored(net, init, cfg.init_ep_lambda)
        with torch.no_grad():
            start = init(x)
        free = settle(dyn, x, state=start, **cfg.relaxation())
        variants = estimate_grid(dyn, x, y, steps, free, truth=False, free_only=True)
        measured = comparison_rows(variants, *truth, "as_trained")
        rows += [dict(row, init_ep=True) for row in measured]
    return rows
