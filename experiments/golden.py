"""Golden outputs: the same commands on one seed with another revision and with this tree, and
their results compared column by column (timings left out).

    python experiments/golden.py --baseline 97bee9e

Runs ``eqpop compare`` (every estimator on one digits batch), ``eqpop train`` (digits-mlp, 2
epochs, hEP N=4), ``eqpop study`` (3 trials of 2 epochs, one actor so that the sampler sees the
trials in the same order) and ``eqpop report`` on that study, in each tree; then for every
Parquet file and report table both wrote, the largest difference of each numeric column
relative to that column's largest magnitude. A speed change that keeps results should show
float32 rounding only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

#: columns that measure time, not results
TIMINGS = ("seconds", "samples_per_s", "wall", "busy", "datetime", "duration")
COMMANDS = {
    "compare": ["compare", "--out", "{out}/compare.parquet", "--quiet", "--seed", "0"],
    "train": [
        "train", "--preset", "digits-mlp", "--epochs", "2", "--seed", "0", "--out",
        "{out}/train", "--quiet",
    ],
    "study": [
        "study", "--trials", "3", "--actors", "1", "--set", "epochs=2", "--out",
        "{out}/study", "--quiet",
    ],
    "report": ["report", "{out}/study", "--out", "{out}/report"],
}  # fmt: skip


def run_all(tree: Path, out: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    for name, args in COMMANDS.items():
        cmd = [sys.executable, "-m", "eqpop.cli", *(a.format(out=out) for a in args)]
        done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{tree}: {name} failed:\n{done.stderr[-2000:]}")


def _table(path: Path) -> pd.DataFrame:
    return (
        pd.read_parquet(path) if path.suffix == ".parquet" or path.is_dir() else pd.read_csv(path)
    )


def differences(old: Path, new: Path) -> pd.DataFrame:
    """Per file and numeric column: the largest |new - old| over the largest |old|."""
    rows = []
    files = [
        p for p in new.rglob("*") if p.suffix in (".parquet", ".csv") and "runs" not in p.parts
    ]
    files += [new / "study" / d for d in ("trials", "metrics", "comparisons")]
    for path in sorted(set(files)):
        rel = path.relative_to(new)
        if not (old / rel).exists() or ".parts" in rel.parts:
            continue
        a, b = _table(old / rel), _table(path)
        if a.shape != b.shape:
            rows.append({"file": str(rel), "column": "(shape)", "rel_diff": np.inf})
            continue
        for col in b.columns:
            if any(t in col for t in TIMINGS) or not pd.api.types.is_numeric_dtype(b[col]):
                continue
            x, y = a[col].to_numpy(float), b[col].to_numpy(float)
            both = np.isfinite(x) & np.isfinite(y)
            scale = max(np.abs(x[both]).max(initial=0.0), 1e-30)
            diff = np.abs(x[both] - y[both]).max(initial=0.0) / scale
            same_nan = bool((np.isfinite(x) == np.isfinite(y)).all())
            rows.append({"file": str(rel), "column": col, "rel_diff": diff if same_nan else np.inf})
    return pd.DataFrame(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", required=True, help="a git revision to compare with")
    args = p.parse_args()
    here = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "tree"
        subprocess.run(
            ["git", "-C", str(here), "worktree", "add", "--detach", "-q", str(base), args.baseline],
            check=True,
        )
        try:
            run_all(base, Path(tmp) / "old")
            run_all(here, Path(tmp) / "new")
            table = differences(Path(tmp) / "old", Path(tmp) / "new")
        finally:
            subprocess.run(["git", "-C", str(here), "worktree", "remove", "--force", str(base)])
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2e}"))


if __name__ == "__main__":
    main()
