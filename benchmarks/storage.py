"""Optuna storage for a study's driver: journal file vs SQLite, the way eqpop uses it.

Only the driver writes to Optuna: per trial one ask (TPE, constant liar), the drawn parameters,
a user attribute, one report per epoch, one pruning question per epoch and one tell. This times
that pattern for each backend in the same run and prints seconds per trial and the ratio to the
journal file.

    python benchmarks/storage.py --trials 60 --epochs 10
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import optuna

from eqpop.population.storage.store import open_storage


def one_study(url: str, trials: int, epochs: int) -> float:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name="bench",
        storage=open_storage(url),
        sampler=optuna.samplers.TPESampler(seed=0, constant_liar=True),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
    )
    start = time.perf_counter()
    for _ in range(trials):
        trial = study.ask()
        beta = trial.suggest_float("beta", 0.05, 1.0, log=True)
        trial.suggest_categorical("n_points", [2, 4, 6, 8])
        trial.set_user_attr("actor", 0)
        for epoch in range(1, epochs + 1):
            trial.report(beta / epoch, epoch)
            if trial.should_prune():
                break
        study.tell(trial, beta / epochs)
    return (time.perf_counter() - start) / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        backends = {
            "journal file": str(Path(tmp) / "optuna.journal"),
            "sqlite": f"sqlite:///{tmp}/optuna.db",
        }
        seconds = {name: one_study(url, args.trials, args.epochs) for name, url in backends.items()}
    base = seconds["journal file"]
    print(f"{args.trials} trials x {args.epochs} epochs, driver only")
    for name, s in seconds.items():
        print(f"{name:>13}: {1000 * s:7.1f} ms per trial   x{s / base:.2f}")


if __name__ == "__main__":
    main()
