"""Studies on a real PostgreSQL server (tests/postgres_server.py: a throw-away one started for
the session): a study completes, a SIGKILLed driver resumes with the same command, two studies
share one database, and a wrong or unreachable URL is one line, exit 2, nothing written and no
password printed."""

from __future__ import annotations

import subprocess
import time

import optuna
import pandas as pd
import yaml
from optuna.trial import TrialState
from tiny_study import assert_parquet_agrees, study_command, tiny_study

from eqpop.cli import main
from eqpop.population.execution.driver import run_study


def _load(spec):
    study = optuna.load_study(study_name=spec.name, storage=spec.storage)
    frames = {d: pd.read_parquet(spec.out / d) for d in ("trials", "metrics", "comparisons")}
    return study, frames


def _running(spec) -> bool:
    if spec.name not in optuna.get_all_study_names(spec.storage):
        return False
    study = optuna.load_study(study_name=spec.name, storage=spec.storage)
    return any(t.state == TrialState.RUNNING for t in study.trials)


def test_a_killed_driver_resumes_and_two_studies_share_the_database(
    ray_address, postgres_url, tmp_path
):
    first = tiny_study(tmp_path / "a", name="pg-a", trials=4, pruner="none", storage=postgres_url)
    path = tmp_path / "pg-a.yaml"
    path.write_text(yaml.safe_dump(first.model_dump(mode="json", exclude={"out", "address"})))
    cmd = study_command(path, first.out, ray_address)
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and driver.poll() is None and not _running(first):
        time.sleep(0.2)
    time.sleep(1.0)
    assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
    driver.kill()  # SIGKILL: its trials stay RUNNING in PostgreSQL
    driver.wait()
    assert _running(first)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    study, frames = _load(first)
    assert len([t for t in study.trials if t.state == TrialState.COMPLETE]) == 4
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert failed and all("driver stopped" in t.user_attrs["fail_reason"] for t in failed)
    assert_parquet_agrees(study, frames)

    second = tiny_study(tmp_path / "b", name="pg-b", trials=2, storage=postgres_url)
    run_study(second, progress=False)
    assert {"pg-a", "pg-b"} <= set(optuna.get_all_study_names(postgres_url))
    for spec in (first, second):
        assert_parquet_agrees(*_load(spec))


def test_a_wrong_or_unreachable_url_is_one_line_without_the_password(
    postgres_url, tmp_path, capsys
):
    host = postgres_url.split("?")[1]
    for url in (
        f"postgresql://eqpop:s3cret@/no_such_db?{host}",  # a database that does not exist
        "postgresql://eqpop:s3cret@127.0.0.1:1/optuna",  # nothing listens there
    ):
        out = tmp_path / "study"
        code = main(["study", "digits", "--storage", url, "--out", str(out), "--quiet"])
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert code == 2 and len(err.splitlines()) == 1, err
        assert "storage postgresql://eqpop:***@" in err and "cannot open it" in err
        assert "s3cret" not in captured.err + captured.out
        assert not out.exists()
