"""What one study probe costs: ``Trainer.probe_rows`` with the default ``Probe`` (every
estimator, converged and as trained, on the probe batch) on a preset's net after one epoch.

    OMP_NUM_THREADS=1 python benchmarks/probe.py
    OMP_NUM_THREADS=1 PYTHONPATH=<a worktree of another revision> python benchmarks/probe.py

Run it in two trees in the same session to compare them; prints the rows made and the
probe's wall time (min over ``--repeats``).
"""

from __future__ import annotations

import argparse
import time

import torch

from eqpop.config import build_config
from eqpop.data import load_dataset
from eqpop.population.definition.spec import Probe
from eqpop.presets import preset
from eqpop.train import Trainer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="digits-mlp", help="a preset on the bundled digits")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = build_config(**{**preset(args.preset), "epochs": 1})
    trainer = Trainer(cfg, None, load_dataset("digits"))
    trainer.run_epoch()
    times, rows = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        rows = trainer.probe_rows(Probe())
        times.append(time.perf_counter() - start)
    print(f"{args.preset}: {len(rows)} rows, probe {min(times):.2f} s (min of {args.repeats})")


if __name__ == "__main__":
    main()
