"""Population-based training against the TPE search with median pruning at equal compute: on
digits (the built-in ``digits`` and ``digits-pbt`` studies, several seeds) and, given
``--fmnist``, on a Fashion-MNIST subset (one seed). Each seed runs the search first; its epochs
trained (every metrics row but those a PBT child inherited) set the PBT population, so that both
train about as many epochs. The measure is the best validation error seen against the epochs
trained so far (the metrics rows in the order the driver received them), and each study's best
complete trial.

    OMP_NUM_THREADS=1 python benchmarks/pbt_vs_tpe.py --seeds 0 1 2 \\
        --fmnist ../shared/data/fashion-mnist --out /tmp/pbt-bench

Writes ``curves.csv``, ``table.md`` (``trials``: the search's budget, PBT's population) and
``pbt_vs_tpe.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from eqpop.population.definition.builtin import BUILTIN  # noqa: E402
from eqpop.population.definition.spec import build_study  # noqa: E402
from eqpop.population.execution.driver import run_study  # noqa: E402
from eqpop.reports.tables import to_markdown  # noqa: E402

#: the Fashion-MNIST pair: the paper's MLP on a subset, a short run per trial
FMNIST = dict(
    preset="fmnist-mlp",
    base={"epochs": 4, "train_subset": 4000, "t_free": 60, "probe_batch": 32},
    space=BUILTIN["digits"]["space"],
)
#: one small probe per complete trial (the last epoch's): the comparison is about training
PROBE = {"every": 1000, "batch": 16, "betas": [0.5], "n_points": [2]}


def _run(values: dict[str, Any], out: Path) -> tuple[pd.DataFrame, float, float]:
    """Run a study (a finished one is only read: run again, it has nothing left to do); its
    epochs trained in arrival order (best so far), its best complete trial's value and its
    wall time (first trial start to last trial end)."""
    spec = build_study(**{**values, "probe": PROBE}, out=out, flush_seconds=2.0)
    run_study(spec, progress=False)
    metrics = pd.read_parquet(out / "metrics")
    trained = metrics[~metrics.resumed].reset_index(drop=True)
    curve = pd.DataFrame(
        {"epochs": range(1, len(trained) + 1), "best": trained.val_error.cummin().to_numpy()}
    )
    trials = pd.read_parquet(out / "trials")
    best = trials[trials.state == "COMPLETE"].value.min()
    wall = (trials.finished.max() - trials.started.min()).total_seconds()
    return curve, float(best), wall


def _pair(name: str, search: dict[str, Any], pbt: dict[str, Any], seed: int, out: Path):
    rows, curves = [], []
    common = {"seed": seed, "base": {**search.get("base", {}), "seed": seed}}
    slug = name.split()[0]
    tpe = {**search, **common, "name": f"{slug}-tpe-s{seed}"}
    curve, best, wall = _run(tpe, out / tpe["name"])
    epochs = len(curve)
    curves.append(curve.assign(data=name, method="TPE + median pruning", seed=seed))
    rows.append(dict(data=name, seed=seed, method="TPE + median pruning",
                     trials=search["trials"], epochs=epochs, best=best, wall_s=wall))  # fmt: skip
    per_member = pbt["base"]["epochs"]
    population = max(4, round(epochs / per_member))
    values = {**pbt, **common, "name": f"{slug}-pbt-s{seed}"}
    values["base"] = {**pbt["base"], "seed": seed}
    values["pbt"] = {**pbt["pbt"], "population": population}
    curve, best, wall = _run(values, out / values["name"])
    curves.append(curve.assign(data=name, method="PBT", seed=seed))
    rows.append(dict(data=name, seed=seed, method="PBT", trials=population,
                     epochs=len(curve), best=best, wall_s=wall))  # fmt: skip
    return rows, curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=12, help="the digits search's budget")
    parser.add_argument("--fmnist", type=Path, help="Fashion-MNIST folder: add its pair")
    parser.add_argument("--out", type=Path, default=Path("reports/pbt-bench"))
    args = parser.parse_args()
    rows, curves = [], []
    digits_pbt = BUILTIN["digits-pbt"]
    for seed in args.seeds:
        search = {**BUILTIN["digits"], "trials": args.trials}
        r, c = _pair("digits", search, digits_pbt, seed, args.out)
        rows += r
        curves += c
    if args.fmnist is not None:
        base = {**FMNIST["base"], "data_dir": str(args.fmnist)}
        search = {**FMNIST, "base": base, "trials": 8, "actors": 2, "pruner": "median",
                  "pruner_warmup": 1, "pruner_startup": 3}  # fmt: skip
        pbt = {**FMNIST, "base": base, "schedule": "pbt", "actors": 4, "cpus_per_actor": 0.5,
               "pbt": {"perturbation_interval": 1}}  # fmt: skip
        r, c = _pair("fmnist subset", search, pbt, args.seeds[0], args.out)
        rows += r
        curves += c
    table = pd.DataFrame(rows)
    table["best"] = 100 * table["best"]
    frame = pd.concat(curves, ignore_index=True)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / "curves.csv", index=False)
    summary = table.groupby(["data", "method"], sort=False).agg(
        seeds=("seed", "count"),
        trials=("trials", "mean"),
        epochs=("epochs", "mean"),
        best_mean=("best", "mean"),
        best_std=("best", "std"),
        wall_s=("wall_s", "mean"),
    )
    text = to_markdown(table, 2) + "\n\n" + to_markdown(summary.reset_index(), 2)
    (args.out / "table.md").write_text(text + "\n")
    print(text)
    data = list(dict.fromkeys(frame.data))
    fig, axes = plt.subplots(1, len(data), figsize=(6 * len(data), 4), squeeze=False)
    for ax, name in zip(axes[0], data):
        for (method, seed), rows_ in frame[frame.data == name].groupby(["method", "seed"]):
            style = "-" if method.startswith("PBT") else "--"
            ax.step(rows_.epochs, 100 * rows_.best, style, where="post", label=f"{method}, s{seed}")
        ax.set(xlabel="epochs trained", ylabel="best validation error so far (%)", title=name,
               yscale="log")  # fmt: skip
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(args.out / "pbt_vs_tpe.png", dpi=110)


if __name__ == "__main__":
    main()
