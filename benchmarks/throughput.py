"""Training-step throughput: this tree's path and another revision's side by side in one run.

    python benchmarks/throughput.py --baseline 9d46ecb          # CPU cases, 2 and 1 threads
    python benchmarks/throughput.py --device cuda --baseline 9d46ecb --out gpu.parquet
    python benchmarks/throughput.py --cases fmnist-mlp --reference $TMPDIR/jaxvenv/bin/python

Each case trains real ``Trainer`` steps on synthetic inputs of the case's shape (the step does
a fixed number of settling steps, so what the pixels hold does not change its cost) and
reports the median of the steps after ``--warmup`` ones, timed around ``Trainer.train_step``
(the same call in every revision since it existed; the GPU is synchronised around it). The
baseline revision runs from a ``git worktree``; every measurement is a fresh interpreter, the
two trees alternate case by case, and the whole plan runs ``--repeats`` times: the table gives
the median over the repeats (on the shared 2-core dev box one run can be 20 % off). With
``--reference`` the papers' own JAX code takes its turn on ``fmnist-mlp`` (the same work) and
the table gives eqpop's step as a multiple of it; one-thread runs are pinned to one core. Cases:

- ``fmnist-mlp``: Table 1's Fashion-MNIST MLP step, 784-256-256-10, batch 50, hEP N=2,
  |beta| 0.5, T 150/20, homeostasis with 5 noise draws, SGD (2 and 1 threads); ``fmnist-mlp-n4``
  the same with N=4 (complex points);
- ``conv-small``: a ConvNet 16-32-32-32 on 32x32x3, batch 16, hEP N=2, T 60/20;
- ``digits-study``: a trial of the default digits study (64-32 damped net, T 40/20, hEP N=4);
- on a GPU also ``cifar-conv`` (the paper's CIFAR-10 net 128-256-512-512, batch 256, hEP N=2 +
  homeostasis, T 250/40) and ``fmnist-mlp``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import pandas as pd

_HEP = dict(method="hep", n_points=2, beta=0.5, asymmetry_angle=0.0, lr=0.01, t_nudge=20)
_MLP = dict(_HEP, net="mlp", shape=(1, 28, 28), hidden=[256, 256], batch_size=50, t_free=150)
_FMNIST = dict(_MLP, lambda_homeo=1.0, homeo_samples=5)
_DIGITS = dict(_MLP, shape=(1, 8, 8), hidden=[64, 32], batch_size=32, dt=0.5, t_free=40)
_CONV = dict(_HEP, net="conv", shape=(3, 32, 32))
_CIFAR = dict(_CONV, hidden=[128, 256, 512, 512], batch_size=256, t_free=250, t_nudge=40)
CASES: dict[str, dict] = {
    "fmnist-mlp": _FMNIST,
    "fmnist-mlp-n4": dict(_FMNIST, n_points=4),
    "conv-small": dict(_CONV, hidden=[16, 32, 32, 32], batch_size=16, t_free=60),
    "digits-study": dict(_DIGITS, n_points=4, lr=0.05),
    "cifar-conv": dict(_CIFAR, beta=1.0, lambda_homeo=15.0, lr=0.007),
}
CPU_PLAN = [
    ("fmnist-mlp", 2),
    ("fmnist-mlp", 1),
    ("fmnist-mlp-n4", 2),
    ("conv-small", 2),
    ("digits-study", 1),
]
GPU_PLAN = [("fmnist-mlp", 2), ("cifar-conv", 2)]


def measure(case: str, threads: int, steps: int, warmup: int, device: str) -> dict:
    """Median seconds of one training step of ``case`` with the eqpop found on the path."""
    import torch

    from eqpop.config import build_config
    from eqpop.data import DATASETS
    from eqpop.train import Trainer

    torch.set_num_threads(threads)
    spec = dict(CASES[case])
    shape = spec.pop("shape")
    n = spec["batch_size"] * (steps + warmup)
    data = DATASETS["synthetic"](shape=shape, n_train=n, n_val=spec["batch_size"])
    cfg = build_config(dataset="synthetic", epochs=1, probe_batch=8, device=device, **spec)
    trainer = Trainer(cfg, None, data)
    times: list[float] = []
    original = Trainer.train_step

    class Enough(Exception):
        """Enough steps timed: skip the epoch's evaluation and measurements."""

    def timed(self, *args):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        original(self, *args)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        if len(times) == steps + warmup:
            raise Enough

    Trainer.train_step = timed
    try:
        trainer.run_epoch()
    except Enough:
        pass
    finally:
        Trainer.train_step = original
    return {
        "case": case,
        "threads": threads,
        "ms": 1e3 * statistics.median(times[warmup:]),
        "steps": len(times) - warmup,
        "torch": torch.__version__,
    }


#: the papers' own code (JAX), timed on ``fmnist-mlp``: the yardstick (../shared/anchors)
ANCHOR = Path(__file__).resolve().parents[2] / "shared" / "anchors" / "holo_cpu_bench.py"


def _pinned(threads: int) -> list[str]:
    """One core for a one-thread run: XLA sizes its pool from the cores it may use and ignores
    OMP_NUM_THREADS, so both sides run under ``taskset -c 0`` where it exists."""
    return ["taskset", "-c", "0"] if threads == 1 and shutil.which("taskset") else []


def _reference(job: tuple[str, int], args: argparse.Namespace) -> dict:
    """One training step of the papers' JAX code (median over ``--steps``), fresh interpreter."""
    case, threads = job
    cmd = [str(args.reference), str(args.anchor), "--steps", str(args.steps), "--no-jac-sym"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(_pinned(threads) + cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"reference failed:\n{done.stderr[-2000:]}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    ms = 1e3 * found["step_s_median"]
    return {"case": case, "threads": threads, "ms": ms, "steps": args.steps, "torch": None}


def box_state() -> float:
    """Milliseconds of a fixed pure-Python loop: how fast the box is right now (it varies up
    to 5x from day to day), printed beside the table."""
    start = time.perf_counter()
    sum(i * i for i in range(1_000_000))
    return 1e3 * (time.perf_counter() - start)


def _in_tree(tree: Path, job: tuple[str, int], args: argparse.Namespace) -> dict:
    """``measure`` with the eqpop of ``tree``, in a fresh interpreter."""
    case, threads = job
    code = (
        f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        f"from throughput import measure; import eqpop; assert eqpop.__file__.startswith("
        f"{str(tree)!r}); print(json.dumps(measure({case!r}, {threads}, {args.steps}, "
        f"{args.warmup}, {args.device!r})))"
    )
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(threads)}
    # run in the tree: the interpreter puts the working directory first on the path
    done = subprocess.run(
        [*_pinned(threads), sys.executable, "-c", code],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"{tree}: {case} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", help="a git revision to time beside this tree")
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=20, help="timed steps per case (median)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3, help="runs of the whole plan")
    p.add_argument("--cases", help="comma-separated case names: only those of the device's plan")
    p.add_argument("--out", type=Path, help="also write the table to this Parquet file")
    p.add_argument(
        "--reference",
        type=Path,
        help="a JAX virtualenv's python: also time the papers' own code on fmnist-mlp, "
        "alternating with eqpop (set-up: ../shared/anchors/README.md)",
    )
    p.add_argument("--anchor", type=Path, default=ANCHOR, help="the reference's timing script")
    args = p.parse_args()
    plan = GPU_PLAN if args.device.startswith("cuda") else CPU_PLAN
    if args.cases:
        plan = [(case, threads) for case, threads in plan if case in args.cases.split(",")]
    here = Path(__file__).resolve().parents[1]
    trees = {"this tree": here}
    with tempfile.TemporaryDirectory() as tmp:
        if args.baseline:
            base = Path(tmp) / "baseline"
            subprocess.run(
                [
                    "git",
                    "-C",
                    str(here),
                    "worktree",
                    "add",
                    "--detach",
                    "-q",
                    str(base),
                    args.baseline,
                ],
                check=True,
            )
            trees = {args.baseline: base, **trees}
        try:
            rows = []
            print(f"box state: a fixed Python loop takes {box_state():.0f} ms", flush=True)
            for repeat in range(args.repeats):
                for job in plan:
                    runs = {n: partial(_in_tree, tree, args=args) for n, tree in trees.items()}
                    if args.reference and job[0] == "fmnist-mlp":
                        runs = {"reference": partial(_reference, args=args), **runs}
                    for name, run in runs.items():
                        row = run(job) | {"path": name, "repeat": repeat}
                        print(
                            f"{row['case']:14s} {row['threads']} threads  {name:12s} "
                            f"{row['ms']:9.1f} ms",
                            flush=True,
                        )
                        rows.append(row)
        finally:
            if args.baseline:
                subprocess.run(
                    ["git", "-C", str(here), "worktree", "remove", "--force", str(base)],
                    check=False,
                )
    print(f"box state: a fixed Python loop takes {box_state():.0f} ms")
    frame = pd.DataFrame(rows)
    if args.baseline or args.reference:
        keys = ["case", "threads"]
        wide = frame.pivot_table(index=keys, columns="path", values="ms", aggfunc="median")
        if args.baseline:
            wide["speed-up"] = wide[args.baseline] / wide["this tree"]
        if args.reference:
            wide["x reference"] = wide["this tree"] / wide["reference"]
        print(wide.round(2).to_string())
    if args.out:
        frame.to_parquet(args.out, index=False)


if __name__ == "__main__":
    main()
