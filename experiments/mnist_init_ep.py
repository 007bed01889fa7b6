"""O'Connor et al. (2019) Fig. 2, top left, on MNIST: 784-500-10 trained with 4 free steps,
with and without the initializing network (the ``mnist-init-ep`` preset).

    python experiments/mnist_init_ep.py --data-dir ../shared/data/mnist --epochs 20 --workers 2

Prints the test error per epoch: the settled state (Algorithm 3; plain EP's only one) and,
with the initializer, its forward pass (Algorithm 2). A run that stops converging is recorded
as diverged at the epoch it failed, as the paper's shortened curves are.
"""

from __future__ import annotations

from pathlib import Path

from runs import jobs, parser, train_all

ROOT = Path("reports/mnist-init-ep")
ARMS = {"Init-EP": dict(init_ep=True), "plain EP": dict(init_ep=False, init_ep_lambda=0.0)}


def main() -> None:
    a = parser(epochs=20).parse_args()
    frame = train_all(jobs(ARMS, "mnist-init-ep", a, ROOT), a.workers)
    cols = [c for c in ("val_error", "val_error_forward", "diverged") if c in frame]
    print(frame.set_index(["run", "seed", "epoch"])[cols].to_string())


if __name__ == "__main__":
    main()
