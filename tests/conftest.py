"""Tiny float64 nets of every architecture, dense-Jacobian ground truth, usage-error checks, and
one local Ray instance (2 CPUs) shared by the whole test session (tests only)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from hypothesis import settings

from eqpop.nets import ConvNet, LayeredMLP, OutputFeedbackMLP, PredictiveCodingNet

ARCHITECTURES = ["mlp", "output-feedback", "conv", "pcn"]

# Property tests: the same examples on every CI run (a red CI is then reproducible);
# HYPOTHESIS_PROFILE=explore draws new ones, to hunt for bugs.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def tiny_net(name: str, symmetric: bool = False, seed: int = 0, angle: float | None = 60.0):
    """A small net whose dynamics contract quickly, in float64."""
    torch.manual_seed(seed)
    if name == "mlp":
        net = LayeredMLP([12, 9, 7, 10], symmetric=symmetric, asymmetry_angle=angle)
    elif name == "output-feedback":
        net = OutputFeedbackMLP([12, 9, 7, 10])
    elif name == "conv":
        net = ConvNet(1, 8, (3, 4), symmetric=symmetric, asymmetry_angle=angle, gain=0.8)
    elif name == "pcn":
        net = PredictiveCodingNet([12, 9, 7, 10], symmetric=symmetric, asymmetry_angle=angle)
    else:
        raise KeyError(name)
    return net.double()


def tiny_batch(name: str, batch: int = 3, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    shape = (batch, 1, 8, 8) if name == "conv" else (batch, 12)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (batch,), generator=g)
    return x, y


def steps_for(net) -> int:
    """Enough steps for a float64 fixed point of the tiny nets (PCN integrates with dt < 1)."""
    return int(300 / net.dt)


@pytest.fixture(params=ARCHITECTURES)
def arch(request) -> str:
    return request.param


def assert_usage_error(capsys, code: int, field: str, must_not_exist) -> None:
    """A bad input: exit code 2, one line on stderr naming the field, nothing written."""
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err, err
    assert not must_not_exist.exists()


@pytest.fixture(scope="session")
def ray_address():
    """Start Ray once; tests that run drivers in subprocesses join it by this address."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server for the session."""
    with postgres_server() as server:
        yield server.url


@contextmanager
def postgres_server():
    """A throw-away PostgreSQL server of its own (``tests/postgres_server.py``); skipped where
    PostgreSQL is missing, except under CI (``EQPOP_CI=1``, set by .ci/run after installing
    it)."""
    import shutil
    import tempfile

    from postgres_server import postgres

    root = Path(tempfile.mkdtemp(prefix="eqpop-pg-"))  # pytest's folders are root's alone
    try:
        with postgres(root) as server:
            if server is None:
                if os.environ.get("EQPOP_CI") == "1":
                    pytest.fail("PostgreSQL is not installed (initdb, pg_ctl, createdb)")
                pytest.skip("PostgreSQL is not installed")
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)
