"""Chaos: a small study on 3 actors while actors and the driver are SIGKILLed at random moments,
several times; the final study has what was asked, and the Parquet agrees with the storage
with no (trial, epoch) row lost or doubled."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import yaml
from optuna.trial import TrialState
from tiny_study import assert_parquet_agrees, load, study_command, tiny_study


def _actor_pids() -> list[int]:
    """The study actors of this test session's Ray (its raylet is this process's child): never
    those of another Ray on the machine, such as a user's study running beside the suite."""
    out = subprocess.run(["pgrep", "-f", "ray::TrialActor"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split() if _descends_from(int(p), os.getpid())]


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:  # it exited meanwhile
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the parent's pid
        if pid == ancestor:
            return True
    return False


def test_study_survives_random_kills_of_actors_and_driver(ray_address, tmp_path):
    rng = random.Random(int(os.environ.get("EQPOP_CHAOS_SEED", "0")))
    spec = tiny_study(
        tmp_path,
        trials=8,
        actors=3,
        cpus_per_actor=0.5,
        pruner="median",
        pruner_startup=2,
        pruner_warmup=1,
        max_retries=3,
        # long enough that no driver run finishes the study inside its kill window
        base={**tiny_study(tmp_path).base, "epochs": 6},
    )
    path = tmp_path / "chaos.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude={"out", "address"})))
    cmd = study_command(path, spec.out, ray_address)
    kills = {"driver": 0, "actor": 0}
    for _ in range(4):  # four driver runs, each losing an actor, then cut short by SIGKILL
        driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not _actor_pids() and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.2)
        time.sleep(rng.uniform(0.5, 3.0))  # somewhere inside a trial, or between two
        pids = _actor_pids()
        if pids:
            os.kill(rng.choice(pids), signal.SIGKILL)
            kills["actor"] += 1
        time.sleep(rng.uniform(0.5, 4.0))
        if driver.poll() is None:
            driver.kill()
            kills["driver"] += 1
        driver.wait()
        assert driver.returncode in (0, -signal.SIGKILL), driver.stderr.read().decode()[-3000:]
        deadline = time.monotonic() + 30  # Ray reaps the dead driver's actors
        while _actor_pids() and time.monotonic() < deadline:
            time.sleep(0.2)
    print(f"chaos: {kills}")  # shown with -s
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    study, frames = load(spec)
    finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 8, kills
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    for t in study.trials:
        if t.state == TrialState.FAIL:
            assert t.user_attrs.get("fail_reason"), t.number
    assert_parquet_agrees(study, frames)
    assert kills["driver"] >= 2 and kills["actor"] >= 3
