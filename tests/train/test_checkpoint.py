"""Checkpoints of older eqpop are converted in ``train/checkpoint.py``: a run resumed from one
continues exactly as from today's."""

from __future__ import annotations

import torch
from test_trainer import assert_same_run, small, tiny  # noqa: F401  (``small``: a fixture)

from eqpop.records import CHECKPOINT
from eqpop.train import Trainer


def test_a_checkpoint_from_before_runs_owned_their_generators_resumes(tmp_path, small):  # noqa: F811
    """Before, a checkpoint saved the process's global generators as ``torch_rng`` and
    ``python_rng``; on the CPU they are exactly the run's own (noise shares ``rng``)."""
    cfg = tiny(epochs=2, lambda_homeo=0.3, random_sign=True, method="classic")
    straight = Trainer(cfg, tmp_path / "a", small)
    straight.fit()
    first = Trainer(tiny(epochs=1, lambda_homeo=0.3, random_sign=True, method="classic"),
                    tmp_path / "b", small)  # fmt: skip
    first.fit()
    sd = torch.load(tmp_path / "b" / CHECKPOINT, weights_only=True)
    old = {k: v for k, v in sd.items() if k not in ("rng", "noise_rng", "sign_rng")}
    torch.save({**old, "torch_rng": sd["rng"], "python_rng": sd["sign_rng"]},
               tmp_path / "b" / CHECKPOINT)  # fmt: skip
    resumed = Trainer(cfg, tmp_path / "b", small)
    assert resumed.resume() and resumed.epoch == 1
    resumed.fit()
    assert_same_run(straight, resumed)
