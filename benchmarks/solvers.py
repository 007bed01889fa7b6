"""Free-phase solvers: steps and wall time to the residual that the papers' fixed number of plain
steps reaches, on untrained and trained nets.

    python benchmarks/solvers.py --data-dir ../shared/data/fashion-mnist   # 2 threads
    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/solvers.py --threads 1 --data-dir ...

For each net (the Fashion-MNIST MLP 784-256-256-10 at batch 50 with the reference's 150 plain
steps; the ConvNet 16-32 on digits at batch 64 with 60 steps), untrained and after ``--epochs``
of hEP training on a subset, it settles ``--batches`` training batches: first ``T`` plain steps
(what the papers' code always runs), whose largest residual is the target (1e-6 if it is
lower: below that a float32 residual is rounding noise); then plain steps to that target
(checked every 10), and Anderson acceleration to it (memory 3 and 5). Reported per
solver: median steps, median milliseconds, the largest final residual and how many batches
ended MAX_STEPS, and the wall time as a ratio to the T plain steps measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from eqpop.config import build_config
from eqpop.dynamics import Status, settle
from eqpop.presets import preset
from eqpop.train import Trainer

NETS = {
    "mlp-fmnist": dict(preset="fmnist-mlp", train_subset=10000, t_free=150),
    "conv-digits": dict(
        dataset="digits",
        net="conv",
        hidden=[16, 32],
        batch_size=64,
        t_free=60,
        t_nudge=20,
        method="hep",
        n_points=2,
        beta=0.5,
        lr=0.02,
    ),
}


#: float32 residuals below this are rounding noise (a converged phase wanders at 2e-8 .. 7e-8):
#: reaching "the residual T plain steps reach" there is luck, not convergence
FLOOR = 1e-6


def _settle_all(net, batches, **kw) -> dict:
    steps, ms, res, stalled = [], [], [], 0
    for x, _ in batches:
        start = time.perf_counter()
        out = settle(net, x, **kw)
        ms.append(1e3 * (time.perf_counter() - start))
        steps.append(out.steps)
        res.append(out.residual)
        stalled += int(out.status) == Status.MAX_STEPS
    return {
        "steps": statistics.median(steps),
        "ms": statistics.median(ms),
        "residual": max(res),
        "max_steps": stalled,
    }


def measure(name: str, trained: bool, args: argparse.Namespace, folder: Path) -> list[dict]:
    spec = dict(NETS[name])
    name_of = spec.pop("preset", None)
    base = preset(name_of) if name_of else {}
    data_dir = args.data_dir if name_of == "fmnist-mlp" else None
    cfg = build_config(**{**base, **spec, "epochs": args.epochs, "data_dir": data_dir})
    trainer = Trainer(cfg, folder / f"{name}-{trained}")
    if trained:
        trainer.fit()
    net = trainer.net
    batches = [b for _, b in zip(range(args.batches), trainer.batches)]
    plain = _settle_all(net, batches, steps=cfg.t_free)
    target = max(plain["residual"], FLOOR)
    rows = [dict(plain, solver=f"plain x{cfg.t_free}")]
    cap = 10 * cfg.t_free
    rows.append(dict(_settle_all(net, batches, steps=cap, tol=target), solver="plain to tol"))
    for memory in (3, 5):
        run = _settle_all(net, batches, steps=cap, tol=target, memory=memory)
        rows.append(dict(run, solver=f"anderson m={memory}"))
    for row in rows:
        row.update(net=name, trained=trained, target=target, ratio=row["ms"] / plain["ms"])
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, required=True, help="Fashion-MNIST (IDX files)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=2, help="training before the 'trained' rows")
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--out", type=Path, help="also write the table to this Parquet file")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in NETS:
            for trained in (False, True):
                rows += measure(name, trained, args, Path(tmp))
                print(f"{name} trained={trained} done", flush=True)
    frame = pd.DataFrame(rows)
    cols = ["net", "trained", "solver", "steps", "ms", "ratio", "residual", "target", "max_steps"]
    print(frame[cols].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    if args.out:
        frame.to_parquet(args.out, index=False)


if __name__ == "__main__":
    main()
