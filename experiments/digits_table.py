"""The digits runs behind docs/results.md: estimators (Table 1's pattern), homeostasis
(Fig. 4c's pattern) and Init-EP with a short free phase (O'Connor Fig. 2, top row).

    python experiments/digits_table.py --workers 2      # ~25 min on a 2-core CPU

Each run trains the ``digits-mlp`` preset with the overrides below for 3 seeds and writes its
metrics to ``reports/digits-table/<run>-s<seed>/``; the table is printed as Markdown.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from runs import slug, train_all

RUNS: dict[str, dict] = {
    "rbp": dict(method="rbp"),
    "exact": dict(method="exact"),
    "classic |beta|=0.5": dict(method="classic", beta=0.5),
    # the one-sided nudge away from the target: the papers' code's beta > 0 (Table 1's Classic)
    "classic |beta|=0.5, away from the target": dict(method="classic", beta=-0.5),
    "hep N=2 |beta|=0.5": dict(method="hep", n_points=2, beta=0.5),
    "hep N=4 |beta|=0.5": dict(method="hep", n_points=4, beta=0.5),
    "classic |beta|=1": dict(method="classic", beta=1.0),
    "classic |beta|=1, away from the target": dict(method="classic", beta=-1.0),
    "hep N=4 |beta|=1": dict(method="hep", n_points=4, beta=1.0),
    "asym 45deg, hep N=4, lambda=0": dict(asymmetry_angle=45.0, lambda_homeo=0.0),
    "asym 45deg, hep N=4, lambda=10": dict(asymmetry_angle=45.0, lambda_homeo=10.0),
    "asym 45deg, hep N=4, lambda=30": dict(asymmetry_angle=45.0, lambda_homeo=30.0),
    # O'Connor et al. settle with damped (Euler) steps: 3 of them are far from the fixed point
    "T_free=3, dt=0.5, hep N=2": dict(t_free=3, dt=0.5, n_points=2),
    "T_free=3, dt=0.5, hep N=2, Init-EP": dict(t_free=3, dt=0.5, n_points=2, init_ep=True),
}
ROOT = Path("reports/digits-table")


def job(name: str, seed: int) -> tuple[str, str, dict, Path]:
    return (name, "digits-mlp", dict(RUNS[name], seed=seed), ROOT / f"{slug(name)}-s{seed}")


def table(df: pd.DataFrame) -> str:
    last = df.groupby(["run", "seed"]).tail(1)  # a diverged run's last recorded epoch
    first = df[df.epoch == 1]
    cols = {
        "val_error": "val error (%)",
        "symmetry_ratio": "symmetry ratio",
        "cos_rbp_l0": "cos RBP, layer 0",
    }
    rows = []
    for name in (n for n in RUNS if n in set(df.run)):
        r = last[last.run == name]
        f = first[first.run == name]
        cells = [name]
        for col in cols:
            scale = 100 if col == "val_error" else 1
            cells.append(f"{scale * r[col].mean():.2f} ± {scale * r[col].std():.2f}")
        cells.append(f"{f.symmetry_ratio.mean():.3f}")
        ratio = (f.imag_ratio.mean(), r.imag_ratio.mean())  # hEP's nudges against the poles
        cells.append("" if pd.isna(ratio[1]) else f"{ratio[0]:.2f} -> {ratio[1]:.2f}")
        if "val_error_forward" in r and r.val_error_forward.notna().any():
            cells.append(
                f"{100 * r.val_error_forward.mean():.2f} ± {100 * r.val_error_forward.std():.2f}"
            )
        else:
            cells.append("")
        stopped = r.epoch[r.epoch < df.epoch.max()].tolist()
        cells.append(f"{len(stopped)} (at epoch {stopped})" if stopped else "0")
        rows.append("| " + " | ".join(cells) + " |")
    head = [
        "run",
        *cols.values(),
        "symmetry after epoch 1",
        "imag ratio, epoch 1 -> last",
        "forward-pass val error (%)",
        "diverged runs",
    ]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *rows])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--only", nargs="*", help="runs to train and show (default all)")
    a = p.parse_args()
    names = a.only or list(RUNS)
    print(
        table(train_all([job(name, seed) for name in names for seed in range(a.seeds)], a.workers))
    )


if __name__ == "__main__":
    main()
