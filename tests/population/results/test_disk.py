"""A full disk under ``--out`` (a real 4 MiB tmpfs, filled up mid-study): the study stops with
one line naming the path it could not write, leaves no half-written file, and the same command
continues it once there is room again."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
import yaml
from optuna.trial import TrialState
from tiny_study import assert_parquet_agrees, finished_count, load, study_command, tiny_study


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        if os.environ.get("EQPOP_CI") == "1":
            pytest.fail(f"cannot mount a tmpfs: {made.stderr.decode().strip()}")
        pytest.skip("mounting a tmpfs needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def _fill(folder) -> None:
    """Write zeros until the disk is full."""
    try:
        with open(folder / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
    except OSError:
        pass


def test_a_full_disk_stops_the_study_in_one_line_and_the_rerun_continues(
    ray_address, tmp_path, small_disk
):
    out = small_disk / "study"
    spec = tiny_study(tmp_path, trials=4, actors=1, pruner="none", out=out)
    spec = spec.model_copy(update={"storage": str(tmp_path / "optuna.journal")})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude={"out", "address"})))
    cmd = study_command(path, out, ray_address)
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and first.poll() is None and finished_count(spec) < 1:
        time.sleep(0.2)
    assert first.poll() is None, first.stderr.read()[-2000:]
    _fill(small_disk)
    assert first.wait(timeout=300) == 1, subprocess.run(["df", str(small_disk)], text=True)
    err = first.stderr.read().strip()
    assert len(err.splitlines()) == 1, err
    assert f"cannot write {out}/" in err and "No space left on device" in err
    assert "run the same command again" in err
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]  # nothing half-written
    (small_disk / "filler").unlink(missing_ok=True)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    study, frames = load(spec)
    assert len([t for t in study.trials if t.state == TrialState.COMPLETE]) == 4
    assert_parquet_agrees(study, frames)
