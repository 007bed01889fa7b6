"""Every estimator on a trial's current network: the comparison rows of ``eqpop compare`` on a
fixed probe batch, measured on a float64 copy (the trial's own net is not touched)."""

from __future__ import annotations

import copy
from typing import Any

import torch

from eqpop.compare import Grid, comparison_rows, estimate_grid, truths
from eqpop.dynamics import settle
from eqpop.estimators.init_ep import anchored
from eqpop.population.spec import Probe
from eqpop.train import Trainer


def probe_rows(trainer: Trainer, probe: Probe) -> list[dict[str, Any]]:
    """Every registered estimator (every |beta| and N of ``probe``) from the settled free
    phase; under Init-EP also every estimate with a free phase started from the initializer's
    prediction with the trial's own ``t_free`` (rows with ``init_ep`` true), against the same
    ground truths."""
    cfg = trainer.cfg
    net = copy.deepcopy(trainer.net).double()
    x, y = trainer.probe
    x, y = x[: probe.batch].double(), y[: probe.batch]
    grid = Grid(
        tuple(probe.betas),
        tuple(probe.n_points),
        cfg.t_free,
        cfg.t_nudge,
        cfg.periods,
        cfg.steps_per_point,
    )
    results = estimate_grid(net, x, y, grid, settle(net, x, **cfg.relaxation()))
    truth = truths(results)
    rows = [dict(row, init_ep=False) for row in comparison_rows(results, *truth)]
    if trainer.initializer is not None:
        init = copy.deepcopy(trainer.initializer).double()
        dyn = anchored(net, init, cfg.init_ep_lambda)
        with torch.no_grad():
            start = init(x)
        free = settle(dyn, x, state=start, **cfg.relaxation())
        variants = estimate_grid(dyn, x, y, grid, free, truth=False, free_only=True)
        rows += [dict(row, init_ep=True) for row in comparison_rows(variants, *truth)]
    return rows
