"""Probe rows: every estimator on the trial's current net, Init-EP variants when it uses them."""

from __future__ import annotations

import torch

from eqpop.config import build_config
from eqpop.data import load_dataset
from eqpop.population.definition.spec import Probe
from eqpop.records import MEASURED
from eqpop.train import Trainer


def test_probe_rows_cover_every_estimator_and_init_ep_variants():
    cfg = build_config(
        hidden=[12],
        t_free=30,
        t_nudge=10,
        periods=1,
        steps_per_point=8,
        init_ep=True,
        epochs=1,
        batch_size=64,
        probe_batch=8,
    )
    trainer = Trainer(cfg, None, load_dataset("digits"))
    before = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    rows = trainer.probe_rows(Probe(batch=6, betas=[0.1, 0.5], n_points=[2, 4]))
    for k, v in trainer.net.state_dict().items():
        assert torch.equal(v, before[k])  # measured on a copy
    keys = {(r["method"], r["beta"], r["n_points"], r["init_ep"]) for r in rows}
    assert ("rbp", None, None, False) in keys and ("exact", None, None, False) in keys
    for beta in (0.1, 0.5):
        assert ("classic", beta, None, True) in keys
        for n in (2, 4):
            assert {
                ("hep", beta, n, False),
                ("hep_continuous", beta, n, False),
                ("hep", beta, n, True),
            } <= keys
    assert not any(m == "hep_continuous" and ie for m, _, _, ie in keys)
    # every estimate measured converged and as trained; Init-EP's variants as trained only
    measured = {(r["method"], r["beta"], r["n_points"], r["init_ep"], r["measured"]) for r in rows}
    assert {k[4] for k in measured if k[3]} == {"as_trained"}
    assert {k[:4] + (m,) for k in keys if not k[3] for m in MEASURED} <= measured
    assert len(rows) == len(measured) * 2  # two layers each
    rbp = [r for r in rows if r["method"] == "rbp"]
    assert all(abs(r["cos_rbp"] - 1) < 1e-9 for r in rbp)
