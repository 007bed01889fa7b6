"""The method registry: a new estimator, registered from its own module, runs through
``eqpop compare``, a training epoch, the study probe and a report without touching another
file; installed plug-ins register through the ``eqpop.estimators`` entry points."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from eqpop.cli import main
from eqpop.config import build_config
from eqpop.data import load_dataset
from eqpop.estimators import registry
from eqpop.estimators.base import Diagnostics, Estimate
from eqpop.estimators.classic import classic
from eqpop.population.definition.spec import Probe
from eqpop.reports import load
from eqpop.train import Trainer

FAST = ["--batch", "8", "--t-free", "60", "--t-nudge", "40", "--periods", "1",
        "--steps-per-point", "10", "--quiet"]  # fmt: skip


def centred(net, x, y, *, beta=0.1, t_free=100, t_nudge=20, free=None) -> Estimate:
    """A toy estimator: the symmetric difference (s*_beta - s*_-beta) / 2 beta, the average of
    classic EP nudged both ways (the same as hEP with N = 2, which the test uses)."""
    start = time.perf_counter()
    kw = dict(t_free=t_free, t_nudge=t_nudge, free=free)
    up, down = classic(net, x, y, beta=beta, **kw), classic(net, x, y, beta=-beta, **kw)
    grads = {k: (up.grads[k] + down.grads[k]) / 2 for k in up.grads}
    error = tuple((a + b) / 2 for a, b in zip(up.error, down.error))
    stats = Diagnostics(free=up.stats.free, nudge=up.stats.nudge,
                        seconds=time.perf_counter() - start)  # fmt: skip
    return Estimate(error, grads, stats)


CENTRED = registry.Method(
    "centred", centred, cost="t_free + 2 * t_nudge", order=15, label="centred EP",
)  # fmt: skip


@pytest.fixture
def with_centred(monkeypatch):
    """The registry as it is, plus the toy method, for this test only."""
    monkeypatch.setattr(registry, "_METHODS", dict(registry._METHODS))
    registry.register(CENTRED)


def test_a_new_method_runs_through_compare_training_probe_and_report(with_centred, tmp_path):
    out = tmp_path / "cmp" / "compare.parquet"
    assert main(["compare", "--betas", "0.1", "--n-points", "2", "--out", str(out), *FAST]) == 0
    for _, frame in pd.read_parquet(out).groupby("measured"):  # converged, as trained
        mine = frame[frame.method == "centred"].set_index("layer").rel_err_exact
        hep2 = frame[(frame.method == "hep") & (frame.n_points == 2)]
        hep2 = hep2.set_index("layer").rel_err_exact
        assert len(mine) == 3 and frame[frame.method == "centred"].n_points.isna().all()
        pd.testing.assert_series_equal(mine, hep2, rtol=1e-6)  # it is hEP with N = 2
    # the report labels and orders it from the description stored with the data
    methods = load(out.parent).methods
    assert methods.label("centred", None) == "centred EP"
    assert methods.order(["rbp", "hep N=2", "centred EP", "classic"]) == [
        "classic", "centred EP", "hep N=2", "rbp"]  # fmt: skip

    cfg = build_config(method="centred", hidden=[12], epochs=1, batch_size=64, t_free=10,
                       t_nudge=5, probe_batch=8, init_ep=True)  # fmt: skip
    trainer = Trainer(cfg, None, load_dataset("digits"))
    record = trainer.run_epoch()
    assert 0 <= record["val_error"] <= 1 and trainer.health.free_residual is not None
    rows = trainer.probe_rows(Probe(batch=6, betas=[0.5], n_points=[2]))
    assert {(r["method"], r["init_ep"]) for r in rows if r["method"] == "centred"} == {
        ("centred", False), ("centred", True)}  # fmt: skip


def test_a_method_record_is_checked_when_it_is_made():
    with pytest.raises(ValueError, match="cost"):
        registry.Method("x", centred, cost="__import__('os')", order=1)
    with pytest.raises(ValueError, match="registered already"):
        registry.register(registry.Method("hep", centred, cost="1", order=1))
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        registry.get("nope")


def test_an_installed_plug_in_registers_through_its_entry_point(tmp_path):
    """A package that declares ``[eqpop.estimators]`` in its entry points is loaded by every
    eqpop process (here ``eqpop compare`` run as a user would, in a fresh interpreter)."""
    (tmp_path / "toy_plugin.py").write_text(
        textwrap.dedent("""
        from eqpop.estimators.classic import classic
        from eqpop.estimators.registry import Method, register

        def mirrored(net, x, y, *, beta=0.1, t_free=100, t_nudge=20, free=None):
            return classic(net, x, y, beta=-beta, t_free=t_free, t_nudge=t_nudge, free=free)

        register(Method("mirrored", mirrored, cost="t_free", order=12))
    """)
    )
    info = tmp_path / "toy_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[eqpop.estimators]\nmirrored = toy_plugin\n")
    out = tmp_path / "c.parquet"
    cmd = [sys.executable, "-m", "eqpop.cli", "compare", "--betas", "0.1", "--n-points", "2",
           "--out", str(out), *FAST]  # fmt: skip
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    frame = pd.read_parquet(out)
    assert "mirrored" in set(frame.method) and "mirrored" not in registry.names()
