"""Wall time per estimate for every method, on the MLP and the ConvNet.

Each method is also reported as a ratio to one plain free phase (``settle`` for T_free steps)
measured in the same run, so numbers from different machines compare as costs, not seconds.

    python benchmarks/estimators.py                      # CPU, reduced conv batch
    python benchmarks/estimators.py --device cuda --conv-batch 256
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from eqpop import estimate, settle
from eqpop.nets import ConvNet, LayeredMLP

# rbp and exact run exactly T adjoint / tangent steps here (rtol 0), so that every method is
# timed for a fixed amount of work; by default they iterate to a tolerance instead.
METHODS = [
    ("rbp", {"rtol": 0.0}),
    ("exact", {"rtol": 0.0}),
    ("classic", {"beta": 0.5}),
    ("hep", {"beta": 0.5, "n_points": 2}),
    ("hep", {"beta": 0.5, "n_points": 4}),
    ("hep", {"beta": 0.5, "n_points": 6}),
    ("hep_continuous", {"beta": 0.5, "n_points": 4, "periods": 5, "steps_per_point": 60}),
]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time(fn, device: str, repeats: int) -> float:
    fn()  # warm-up
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / repeats


def bench(name, net, x, y, steps, nudge_steps, device, repeats, methods) -> list[dict]:
    base = _time(lambda: settle(net, x, steps=steps), device, repeats)
    rows = [
        {
            "net": name,
            "method": "free phase (baseline)",
            "hyper": f"T={steps}",
            "batch": len(x),
            "ms": base * 1e3,
            "ratio": 1.0,
        }
    ]
    for method, hyper in methods:
        kw = dict(t_free=steps, t_nudge=nudge_steps, t_adjoint=steps, **hyper)
        t = _time(lambda m=method, k=kw: estimate(net, x, y, m, **k), device, repeats)
        label = ",".join(f"{k}={v}" for k, v in hyper.items())
        rows.append(
            {
                "net": name,
                "method": method,
                "hyper": label,
                "batch": len(x),
                "ms": t * 1e3,
                "ratio": t / base,
            }
        )
        print(
            f"  {name:22s} {method:15s} {label:55s} {t * 1e3:10.1f} ms  x{t / base:.2f}", flush=True
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--mlp-batch", type=int, default=50)
    p.add_argument("--conv-batch", type=int, default=8)
    p.add_argument("--conv-steps", type=int, default=None, help="T_free for the conv net")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument(
        "--skip-continuous-conv",
        action="store_true",
        help="hep_continuous runs 1200 steps: skip it on the conv net on slow devices",
    )
    p.add_argument("--out", default=None, help="also write the table to this Parquet file")
    a = p.parse_args()
    torch.manual_seed(0)
    dev = a.device
    rows = []
    # an MLP on Fashion-MNIST inputs (twice Table 1's 256 widths), T_free=150, T_nudge=20
    mlp = LayeredMLP([784, 512, 512, 10], asymmetry_angle=45.0).to(dev)
    x, y = (
        torch.randn(a.mlp_batch, 784, device=dev),
        torch.randint(0, 10, (a.mlp_batch,), device=dev),
    )
    rows += bench("mlp 784-512-512-10", mlp, x, y, 150, 20, dev, a.repeats, METHODS)
    # CIFAR-10 ConvNet of Table 2: 128-256-512-512, T_free=250, T_nudge=40
    conv = ConvNet(asymmetry_angle=45.0).to(dev)
    xc = torch.randn(a.conv_batch, 3, 32, 32, device=dev)
    yc = torch.randint(0, 10, (a.conv_batch,), device=dev)
    methods = [m for m in METHODS if not (a.skip_continuous_conv and m[0] == "hep_continuous")]
    rows += bench(
        "conv 128-256-512-512", conv, xc, yc, a.conv_steps or 250, 40, dev, a.repeats, methods
    )
    frame = pd.DataFrame(rows)
    print(
        f"device: {dev} ({torch.cuda.get_device_name() if dev.startswith('cuda') else 'cpu'}),"
        f" torch {torch.__version__}, float32, threads {torch.get_num_threads()}"
    )
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    if a.out:
        frame.to_parquet(a.out, index=False)


if __name__ == "__main__":
    main()
