"""How close each finite-nudge estimate is to the exact d_beta s* on a *trained* net, and how far
hEP's complex nudges reach towards the activation's poles (docs/results.md).

    python experiments/hep_radius.py reports/fmnist-table1/runs/00008   # a trial's run folder

Loads the run's checkpoint, settles the probe batch in float64 and compares every estimate
(classic in both directions, hEP N = 2, 4, 6 at |beta| 0.05, 0.2, 0.5) with ``exact``
differentiated through the same ``t_nudge`` nudged steps (the training truth), and that truth
with the converged derivative.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from eqpop.config import build_config
from eqpop.dynamics import settle
from eqpop.estimators import estimate
from eqpop.metrics import layer_cosines, relative_errors
from eqpop.train import Trainer

GRID = [
    *[("classic", sign * b, None) for b in (0.05, 0.2, 0.5) for sign in (1, -1)],
    *[("hep", b, n) for b in (0.05, 0.2, 0.5) for n in (2, 4, 6)],
]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("run", type=Path, help="an eqpop train output folder with a checkpoint")
    run = p.parse_args().run
    cfg = build_config(**json.loads((run / "config.json").read_text()))
    trainer = Trainer(cfg, run)
    if not trainer.resume():
        raise SystemExit(f"{run}: no checkpoint")
    net = trainer.net.double()
    x, y = trainer.probe[0].double(), trainer.probe[1]
    free = settle(net, x, steps=cfg.t_free)
    common = dict(t_free=cfg.t_free, t_nudge=cfg.t_nudge, free=free)
    truth = estimate(net, x, y, "exact", t_adjoint=cfg.t_nudge, **common).error
    converged = estimate(net, x, y, "exact", t_adjoint=20 * cfg.t_free, **common).error
    gap = " / ".join(f"{r:.3g}" for r in relative_errors(truth, converged))
    print(f"{run} after epoch {trainer.epoch}: free residual {free.residual:.1e}; exact with")
    print(f"t_nudge = {cfg.t_nudge} tangent steps vs converged, per layer: {gap}")
    print(
        "| estimate | beta | rel. error vs exact, per layer | cosine with exact, per layer |",
        end="",
    )
    print(" imag ratio |\n|---|---|---|---|---|")
    for method, beta, n in GRID:
        hyper = dict(common, beta=beta, **({"n_points": n} if n else {}))
        est = estimate(net, x, y, method, **hyper)
        rel = " / ".join(f"{r:.3g}" for r in relative_errors(est.error, truth))
        cos = " / ".join(f"{float(c):.3f}" for c in layer_cosines(est.error, truth))
        name = f"{method} N={n}" if n else method
        ratio = est.stats.read()["imag_ratio"]
        ratio = float("nan") if ratio is None else ratio
        print(f"| {name} | {beta} | {rel} | {cos} | {ratio:.2f} |")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
