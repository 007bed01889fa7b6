"""A tiny digits study for the population tests."""

from __future__ import annotations

import sys

from eqpop.population.spec import StudyConfig, build_study


def tiny_study(tmp_path, **kw) -> StudyConfig:
    """Seconds per trial: a 16-unit MLP, few steps, 3 epochs, probes at epochs 2 and 3."""
    values = dict(
        name="tiny",
        preset="digits-mlp",
        base=dict(
            hidden=[16],
            epochs=3,
            t_free=10,
            t_nudge=5,
            batch_size=64,
            probe_batch=16,
            periods=1,
            steps_per_point=4,
        ),
        space={
            "lr": {"low": 0.02, "high": 0.2, "log": True},
            "method": {"choices": ["classic", "hep"]},
        },
        trials=4,
        actors=2,
        out=tmp_path / "study",
        flush_seconds=0.5,
        probe={"every": 2, "batch": 8, "betas": [0.5], "n_points": [2]},
    )
    return build_study(**{**values, **kw})


def study_command(path, out, address) -> list[str]:
    """``eqpop study`` on a study file, as a separate driver process joining ``address``."""
    cli = [sys.executable, "-m", "eqpop.cli", "study", str(path), "--out", str(out)]
    return [*cli, "--address", address, "--quiet"]
