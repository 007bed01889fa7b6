"""Fig. 4a-d of Laborieux & Zenke (2024) on real Fashion-MNIST (the pool split): the
``fmnist-homeostasis`` preset (independent start, exact d_beta u*, Adam 1e-4) with and
without the homeostatic loss (lambda 1 and 0).

    python experiments/fmnist_homeostasis.py --data-dir ../shared/data/fashion-mnist \\
        --epochs 15 --train-subset 10000 --workers 2
    eqpop report reports/fmnist-fig4          # its Fig. 4: the curves over epochs

Prints, per epoch, the validation error, the symmetry ratio and the layer-wise cosine with RBP.
"""

from __future__ import annotations

from pathlib import Path

from runs import jobs, parser, train_all

ROOT = Path("reports/fmnist-fig4")
ARMS = {"lambda_homeo=1": dict(lambda_homeo=1.0), "lambda_homeo=0": dict(lambda_homeo=0.0)}


def main() -> None:
    a = parser(epochs=15).parse_args()
    frame = train_all(jobs(ARMS, "fmnist-homeostasis", a, ROOT), a.workers)
    cols = ["val_error", "symmetry_ratio", *sorted(c for c in frame if c.startswith("cos_rbp_l"))]
    means = frame.groupby(["run", "epoch"])[cols].mean()
    print(means.round(4).to_string())


if __name__ == "__main__":
    main()
