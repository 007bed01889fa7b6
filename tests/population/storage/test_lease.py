"""A driver's claim on its study: refused while another driver's heartbeat is live, taken over
once that driver is gone (its process exited here, or its heartbeat stopped elsewhere)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import asdict, replace

import optuna
import pytest

from eqpop.population.storage.lease import KEY, Holder, Lease, StudyBusy
from eqpop.population.storage.store import open_storage


@pytest.fixture
def study(tmp_path):
    return optuna.create_study(study_name="s", storage=open_storage(str(tmp_path / "j")))


def _held_by(study, holder: Holder) -> None:
    study.set_user_attr(KEY, asdict(holder))


def test_a_live_driver_here_is_named_and_left_alone(study):
    first = Lease(study, every=0.1)
    first.acquire()
    second = Lease(study, every=0.1)
    second.me = replace(second.me, pid=os.getpid() + 1, token="other")
    with pytest.raises(StudyBusy, match=rf"run by another driver \(pid {os.getpid()} on "):
        second.acquire()
    assert first.holder() == first.holder() and first.holder().token == first.me.token
    first.release()
    assert first.holder() is None


def test_a_driver_whose_process_exited_is_taken_over_at_once(study):
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = replace(Lease(study, every=60).me, pid=int(gone.stdout), token="dead")
    _held_by(study, dead)
    lease = Lease(study, every=60)
    start = time.monotonic()
    lease.acquire()
    assert time.monotonic() - start < 5 and lease.holder().token == lease.me.token


def test_another_hosts_driver_counts_while_its_heartbeat_moves(study):
    now = time.time()
    elsewhere = Holder("another-host", 1, "far", now, now)
    _held_by(study, elsewhere)

    def beating(seconds: float) -> None:  # the other driver beats while we wait
        time.sleep(seconds)
        _held_by(study, replace(elsewhere, beat=time.time()))

    with pytest.raises(StudyBusy, match="pid 1 on another-host"):
        Lease(study, every=0.2, sleep=beating).acquire()
    _held_by(study, replace(elsewhere, beat=time.time() - 10))  # silent for 50 beats: gone
    lease = Lease(study, every=0.2)
    lease.acquire()
    assert lease.holder().token == lease.me.token
