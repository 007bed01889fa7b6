"""``eqpop study``: bad input is one line and exit 2 with nothing written; a driver killed with
SIGKILL and started again with the same command finishes the study, nothing lost or doubled."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import optuna
import pandas as pd
import pytest
import yaml
from conftest import assert_usage_error
from optuna.trial import TrialState
from tiny_study import (
    assert_parquet_agrees,
    finished_count,
    load,
    stored_states,
    study_command,
    tiny_study,
)

from eqpop.cli import main
from eqpop.population.storage.store import mask_password, open_storage
from eqpop.records import part_files


@pytest.mark.parametrize(
    "args, field",
    [
        (["nope"], "study"),
        (["digits", "--trials", "0"], "trials"),
        (["digits", "--actors", "0"], "actors"),
        (["digits", "--name", "../up"], "name"),
        (["digits", "--set", "beta=0"], "beta"),
        (["digits", "--set", "no_such=1"], "no_such"),
        (["digits", "--resume"], "--resume"),
        (["fashion_mnist"], "data_dir"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, args, field):
    out = tmp_path / "study"
    assert_usage_error(capsys, main(["study", *args, "--out", str(out)]), field, out)


def test_malformed_study_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    assert_usage_error(
        capsys, main(["study", str(bad), "--out", str(tmp_path / "o")]), "bad.yaml", tmp_path / "o"
    )
    flat = tmp_path / "flat.yaml"
    flat.write_text("base: 5\n")
    assert_usage_error(
        capsys, main(["study", str(flat), "--out", str(tmp_path / "o")]), "base", tmp_path / "o"
    )
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("space = {beta = {low = 1.0, high = 0.5}}\n")
    assert_usage_error(
        capsys,
        main(["study", str(wrong), "--out", str(tmp_path / "o")]),
        "space.beta",
        tmp_path / "o",
    )


def test_passwords_are_masked():
    assert (
        mask_password("postgresql://eq:s3cret@db:5432/optuna")
        == "postgresql://eq:***@db:5432/optuna"
    )
    assert mask_password("reports/x/optuna.journal") == "reports/x/optuna.journal"


def _study_file(tmp_path) -> tuple:
    spec = tiny_study(tmp_path, trials=5, pruner="none")
    values = spec.model_dump(mode="json", exclude={"out", "storage", "address"})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(values))
    return spec, path


def _running(spec) -> bool:
    return TrialState.RUNNING in stored_states(spec)


def test_driver_killed_with_sigkill_resumes_with_the_same_command(ray_address, tmp_path):
    spec, path = _study_file(tmp_path)
    cmd = study_command(path, spec.out, ray_address)
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:
        if finished_count(spec) >= 2 and _running(spec):
            break
        time.sleep(0.2)
    assert first.poll() is None, first.stderr.read().decode()[-2000:]
    first.kill()  # SIGKILL: no cleanup, trials left RUNNING in the journal
    first.wait()
    assert _running(spec)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("trials", "metrics"):  # the parts of both runs, compacted at the end
        assert len(part_files(spec.out / name)) == 1
    assert os.readlink(spec.out / "metrics") == ".parts/metrics/000001"  # both runs wrote
    study, frames = load(spec)
    finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 5
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert failed and all("driver stopped" in t.user_attrs["fail_reason"] for t in failed)
    retried = {t.user_attrs.get("retry_of") for t in study.trials} - {None}
    assert retried == {t.number for t in failed}
    assert_parquet_agrees(study, frames)
    assert "best trial" in done.stdout


def test_more_gpus_than_ray_has_is_refused(ray_address, tmp_path, capsys):
    out = tmp_path / "gpu"
    code = main(
        [
            "study",
            "digits",
            "--gpus-per-actor",
            "1",
            "--address",
            ray_address,
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 2 and "gpus_per_actor" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("limits, why", [
    (dict(max_failures_in_row=3), r"\d+ trials failed in a row"),
    (dict(timeout=1.0), r"the time budget ran out and all \d+ trials failed"),
])  # fmt: skip
def test_a_study_whose_trials_keep_failing_stops_with_the_reason(
    ray_address, tmp_path, capsys, limits, why
):
    """Every trial fails (its free phase cannot reach a residual of 1e-12): the study stops by
    itself, with one line naming the most frequent reason and exit 1, keeping what it wrote."""
    spec = tiny_study(tmp_path, trials=4, max_residual=1e-12, **limits)
    path = tmp_path / "failing.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude={"out", "address"})))
    code = main(["study", str(path), "--out", str(spec.out), "--address", ray_address, "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert re.search(why, err[0]) and "free phase did not converge" in err[0], err[0]
    study = optuna.load_study(study_name=spec.name, storage=open_storage(spec.storage_url))
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert failed and len(failed) == len(study.trials) <= 3 + spec.actors
    frames = {d: pd.read_parquet(spec.out / d) for d in ("trials", "metrics")}  # no probe ran
    assert_parquet_agrees(study, frames)


def test_a_second_driver_on_a_running_study_is_refused_naming_the_first(ray_address, tmp_path):
    """The same ``eqpop study`` started again while the first still runs (a repeated
    ``ray submit``): the second exits 2 with one line naming the live driver and touches
    nothing; the first finishes its study as if alone."""
    spec, path = _study_file(tmp_path)
    cmd = study_command(path, spec.out, ray_address)
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None and not _running(spec):
        time.sleep(0.2)
    assert first.poll() is None, first.stderr.read().decode()[-2000:]
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert second.returncode == 2
    line = second.stderr.strip()
    assert len(line.splitlines()) == 1 and f"run by another driver (pid {first.pid} on" in line
    assert first.wait(timeout=300) == 0, first.stderr.read().decode()[-2000:]
    study, frames = load(spec)
    assert not [t for t in study.trials if t.state == TrialState.FAIL]
    assert_parquet_agrees(study, frames)


def test_a_torn_journal_continues_and_a_changed_space_is_refused(ray_address, tmp_path):
    spec, path = _study_file(tmp_path)
    values = yaml.safe_load(path.read_text())
    values["actors"] = 1
    path.write_text(yaml.safe_dump({**values, "trials": 1}))
    cmd = study_command(path, spec.out, ray_address)
    assert subprocess.run(cmd, capture_output=True, timeout=300).returncode == 0
    journal = spec.out / "optuna.journal"
    before = journal.read_bytes()
    methods = {"choices": ["classic", "hep", "rbp"]}
    path.write_text(yaml.safe_dump({**values, "space": {**values["space"], "method": methods}}))
    changed = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert changed.returncode == 2 and len(changed.stderr.strip().splitlines()) == 1
    assert "space.method: study 'tiny' was searched over choices ['classic', 'hep']" in (
        changed.stderr
    )
    assert journal.read_bytes() == before  # no trial left RUNNING, nothing appended
    journal.write_bytes(before[:-30])  # the last record cut, as a full disk leaves it
    path.write_text(yaml.safe_dump({**values, "trials": 2}))
    resumed = subprocess.run(cmd[:-1], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "dropped a torn last record" in resumed.stdout
    assert (spec.out / "optuna.journal.torn").is_file()
    study, frames = load(spec)
    assert len([t for t in study.trials if t.state.is_finished()]) >= 2
    assert_parquet_agrees(study, frames)


def _wait_mid_study(proc, spec, finished: int = 1) -> None:
    """Until the driver has finished ``finished`` trials and runs others."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if finished_count(spec) >= finished and _running(spec):
            return
        time.sleep(0.2)
    raise AssertionError(f"never mid-study: {proc.stderr.read().decode()[-2000:]}")


def _ray_processes() -> set[int]:
    found = subprocess.run(["pgrep", "-f", "raylet|gcs_server"], capture_output=True, text=True)
    return {int(pid) for pid in found.stdout.split()}


def _assert_stopped_cleanly(proc, spec, signum: int) -> None:
    """One line naming the signal and the way on, 128 + its number, summary.json saying so,
    the running trials failed "interrupted" and queued again without using up a retry."""
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err.decode()[-2000:]
    line = err.decode().strip()
    assert len(line.splitlines()) == 1, line
    name = signal.Signals(signum).name
    assert f"interrupted ({name})" in line and "the same command continues" in line
    summary = json.loads((spec.out / "summary.json").read_text())
    assert summary["signal"] == signum and summary["stopped"].startswith(f"interrupted ({name})")
    study, frames = load(spec)
    stopped = [t for t in study.trials if t.user_attrs.get("fail_reason") == "interrupted"]
    queued = [t for t in study.trials if t.state == TrialState.WAITING]
    assert stopped and {t.user_attrs["retry_of"] for t in queued} == {t.number for t in stopped}
    attempts = {t.number: t.user_attrs.get("attempt", 0) for t in stopped}
    assert all(t.user_attrs["attempt"] == attempts[t.user_attrs["retry_of"]] for t in queued)
    assert_parquet_agrees(study, frames)


def test_ctrl_c_stops_the_study_cleanly_and_the_restart_draws_new_settings(ray_address, tmp_path):
    """Before: a traceback, exit 1, trials left RUNNING, no summary; and the restarted study
    drew its first run's settings again (the sampler started from the same seed)."""
    spec, path = _study_file(tmp_path)
    values = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**values, "trials": 7, "sampler": "random"}))
    cmd = study_command(path, spec.out, ray_address)
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_mid_study(first, spec, finished=2)
    first.send_signal(signal.SIGINT)
    _assert_stopped_cleanly(first, spec, signal.SIGINT)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    study, frames = load(spec)
    assert len([t for t in study.trials if t.state == TrialState.COMPLETE]) == 7
    drawn = [
        tuple(sorted(t.params.items())) for t in study.trials if "retry_of" not in t.user_attrs
    ]
    assert len(drawn) == len(set(drawn)), drawn  # nothing measured twice
    assert_parquet_agrees(study, frames)


def test_sigterm_stops_a_study_and_the_ray_it_started(tmp_path):
    """What a batch scheduler or ``timeout`` sends. Before: exit 134 and Ray's C++ signal dump
    on stderr. The study's own local Ray is shut down with it."""
    spec, path = _study_file(tmp_path)
    values = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**values, "trials": 20}))
    before = _ray_processes()
    cmd = [sys.executable, "-m", "eqpop.cli", "study", str(path), "--out", str(spec.out)]
    proc = subprocess.Popen([*cmd, "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_mid_study(proc, spec)
    assert _ray_processes() - before  # its own Ray runs
    proc.send_signal(signal.SIGTERM)
    _assert_stopped_cleanly(proc, spec, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _ray_processes() - before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _ray_processes() - before
