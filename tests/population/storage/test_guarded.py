"""A storage that goes away under a running study: a PostgreSQL server stopped as a crash
stops it, a journal whose folder vanished. One line naming the storage (password masked),
exit 1, nothing half-written; the same command continues once it is back. A blip shorter than
the retries is not noticed."""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable

import optuna
import pytest
import yaml
from conftest import postgres_server
from optuna.trial import TrialState
from tiny_study import assert_parquet_agrees, load, study_command, tiny_study

from eqpop.errors import StorageLost
from eqpop.population.storage.store import open_storage


def _study(tmp_path, storage: str):
    spec = tiny_study(tmp_path, trials=3, pruner="none", storage=storage)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude={"out", "address"})))
    return spec, path


def _finished(url: str) -> int:
    try:
        study = optuna.load_study(study_name="tiny", storage=open_storage(url))
    except (KeyError, OSError, ValueError):  # not created yet
        return 0
    return sum(t.state.is_finished() for t in study.trials)


def _stop_mid_study(cmd, url: str, make_it_go: Callable[[], object]) -> str:
    """Start the driver, take its storage away once a trial has finished; its stderr."""
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and driver.poll() is None and _finished(url) < 1:
        time.sleep(0.2)
    assert driver.poll() is None, driver.stderr.read()[-2000:]
    make_it_go()
    _, err = driver.communicate(timeout=120)
    assert driver.returncode == 1, err[-2000:]
    return err.strip()


def _continues(cmd, spec) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    study, frames = load(spec)
    assert len([t for t in study.trials if t.state == TrialState.COMPLETE]) == 3
    assert_parquet_agrees(study, frames)


def test_postgresql_stopped_under_a_study_is_one_line_and_the_rerun_continues(
    ray_address, tmp_path
):
    """Before: ~260 lines of chained tracebacks ending in a misleading 'exceeding max length'."""
    with postgres_server() as server:
        url = server.url.replace("eqpop@", "eqpop:s3cret@")  # trust: any password is let in
        spec, path = _study(tmp_path, url)
        cmd = study_command(path, spec.out, ray_address)
        err = _stop_mid_study(cmd, url, server.stop)
        assert len(err.splitlines()) == 1, err
        assert "storage postgresql://eqpop:***@/optuna" in err and "s3cret" not in err
        assert "lost the connection" in err and "run the same command again" in err
        server.start()
        _continues(cmd, spec)


def test_a_journal_whose_folder_vanished_is_one_line_and_the_rerun_continues(ray_address, tmp_path):
    """A journal on a mount that went away. Before, Optuna would have started a new, empty
    journal at the same path as soon as the folder existed again."""
    shared = tmp_path / "shared"
    journal = shared / "optuna.journal"
    spec, path = _study(tmp_path, str(journal))
    cmd = study_command(path, spec.out, ray_address)
    err = _stop_mid_study(cmd, str(journal), lambda: shared.rename(tmp_path / "unmounted"))
    assert len(err.splitlines()) == 1, err
    assert f"storage {journal}: the journal file is gone" in err
    assert not journal.exists()
    (tmp_path / "unmounted").rename(shared)
    _continues(cmd, spec)


def test_a_blip_shorter_than_the_retries_goes_unnoticed(tmp_path):
    with postgres_server() as server:
        storage = open_storage(server.url)
        storage.pauses = (0.25, 0.5, 1.0, 2.0)  # 3.75 s in all: more than the blip
        optuna.create_study(study_name="blip", storage=storage)
        server.stop()
        back = threading.Timer(1.0, server.start)
        back.start()
        start = time.monotonic()
        assert [s.study_name for s in storage.get_all_studies()] == ["blip"]
        back.join()
        assert time.monotonic() - start >= 1.0  # it waited for the server, then went on
        server.stop()
        with pytest.raises(StorageLost, match="lost the connection"):
            storage.get_all_studies()
        server.start()
        with pytest.raises(StorageLost):  # once lost, at once: the driver stops without waiting
            storage.get_all_studies()


def test_optunas_fallback_note_is_not_printed_over_a_lost_connection(tmp_path, caplog):
    """Seen in CI: a connection cut inside ``get_all_trials`` made Optuna log its "falling
    back to a slower query" warning, the server's error over eight lines, before our one line."""
    open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    rdb = logging.getLogger("optuna.storages._rdb.storage")
    with caplog.at_level(logging.WARNING):
        rdb.warning("Caught an error from sqlalchemy: (psycopg.OperationalError) ... Falling back")
        rdb.warning("another warning")
    assert [r.getMessage() for r in caplog.records] == ["another warning"]
