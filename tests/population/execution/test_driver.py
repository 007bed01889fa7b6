"""The driver on a real local Ray (2 CPUs) and a real Optuna journal: asynchronous trials,
pruning, divergence, an actor killed mid-trial, and Parquet that agrees with the storage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import optuna
from optuna.trial import TrialState
from tiny_study import assert_parquet_agrees, load, tiny_study

from eqpop.population.execution.driver import run_study
from eqpop.population.storage.store import open_storage
from eqpop.records import part_files


def test_two_actors_fill_the_budget_and_parquet_agrees(ray_address, tmp_path):
    spec = tiny_study(tmp_path, trials=4, pruner="none")
    summary = run_study(spec, progress=False)
    study, frames = load(spec)
    assert summary.counts == {"COMPLETE": 4}
    assert_parquet_agrees(study, frames)
    assert set(frames["trials"].param_method) <= {"classic", "hep"}
    comps = frames["comparisons"]
    assert set(comps.epoch) == {2, 3} and set(comps.trial) == set(range(4))
    assert {"rbp", "exact", "classic", "hep", "hep_continuous"} == set(comps.method)
    assert (spec.out / "summary.json").is_file() and 0 < summary.busy_fraction <= 1
    for name in frames:  # the finished study is compacted: one file per dataset
        assert (spec.out / name).is_symlink() and len(part_files(spec.out / name)) == 1
    # started again with the same budget: the study is complete, nothing runs, nothing doubles
    again = run_study(spec, progress=False)
    assert again.counts == {"COMPLETE": 4}
    assert_parquet_agrees(*load(spec))


def _enqueue(spec, lrs):
    study = optuna.create_study(study_name=spec.name, storage=open_storage(spec.storage_url))
    for lr in lrs:
        study.enqueue_trial({"lr": lr})


def test_pruning_and_divergence_end_trials_and_the_study_goes_on(ray_address, tmp_path):
    spec = tiny_study(
        tmp_path,
        trials=3,
        actors=1,
        pruner="median",
        pruner_startup=1,
        pruner_warmup=0,
        space={"lr": {"choices": [0.1, 1e-7, 1e38]}},
        base=dict(hidden=[16], epochs=3, t_free=10, t_nudge=5, batch_size=64, method="rbp"),
    )
    _enqueue(spec, [0.1, 1e-7, 1e38, 0.1])
    summary = run_study(spec, progress=False)
    study, frames = load(spec)
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.COMPLETE]
    assert "non-finite" in study.trials[2].user_attrs["fail_reason"]
    assert frames["trials"].set_index("trial").fail_reason[2].startswith("diverged")
    assert summary.counts == {"COMPLETE": 2, "PRUNED": 1, "FAIL": 1}
    assert_parquet_agrees(study, frames)


def test_actor_killed_mid_trial_is_retried_from_its_checkpoint(ray_address, tmp_path):
    spec = tiny_study(tmp_path, trials=2, actors=1, pruner="none")
    killed = []

    def kill_once(kind, info):
        if kind == "epoch" and info["trial"] == 0 and info["epoch"] == 1 and not killed:
            os.kill(info["pid"], signal.SIGKILL)
            killed.append(info["pid"])

    run_study(spec, progress=False, on_event=kill_once)
    study, frames = load(spec)
    first = study.trials[0]
    assert first.state == TrialState.FAIL and "actor died" in first.user_attrs["fail_reason"]
    retry = next(t for t in study.trials if t.user_attrs.get("retry_of") == 0)
    assert retry.state == TrialState.COMPLETE and retry.params == first.params
    rows = frames["metrics"].query("trial == @retry.number").sort_values("epoch")
    assert rows.epoch.tolist() == [1, 2, 3] and rows.resumed.tolist() == [True, False, False]
    assert len([t for t in study.trials if t.state == TrialState.COMPLETE]) == 2
    assert_parquet_agrees(study, frames)


def test_an_sqlalchemy_url_works_as_storage(ray_address, tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    spec = tiny_study(tmp_path, trials=2, pruner="none", storage=url)
    assert run_study(spec, progress=False).counts == {"COMPLETE": 2}
    assert_parquet_agrees(*load(spec))
    assert not (spec.out / "optuna.journal").exists()


def test_trials_of_a_method_without_a_free_phase_complete(ray_address, tmp_path):
    """hep_continuous has no free phase: its epochs carry no free residual, which is no reason
    to fail the trial (it was, when a NaN residual was compared with max_residual)."""
    space = {"method": {"choices": ["hep_continuous"]}, "lr": {"low": 0.02, "high": 0.2}}
    spec = tiny_study(tmp_path, trials=2, pruner="none", space=space)
    summary = run_study(spec, progress=False)
    study, frames = load(spec)
    assert summary.counts == {"COMPLETE": 2} and summary.stopped is None
    assert set(frames["trials"].param_method) == {"hep_continuous"}
    assert frames["metrics"].residual.isna().all() and len(frames["metrics"]) == 6
    assert_parquet_agrees(study, frames)


_LOCAL_RAY = """
import json, shutil, subprocess
import os
from eqpop.population.cli import local_ray_settings
local_ray_settings()
from eqpop.population.execution.pool import connect
connect("local", 1)
import ray
node = ray.nodes()[0]
ports = [ray.get_runtime_context().gcs_address.rsplit(":", 1)[1], str(node["NodeManagerPort"])]
listening = []
if shutil.which("ss"):
    for port in ports:
        out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True)
        listening += [line.split()[3] for line in out.stdout.splitlines()]
nice = ray.get(ray.remote(lambda: os.nice(0)).options(num_cpus=1).remote())
print(json.dumps({"node": node["NodeManagerAddress"], "listening": listening, "nice": nice}))
"""


def test_a_local_ray_starts_quietly_and_listens_on_loopback_only():
    """Users see eqpop's lines, not Ray's (its token-authentication notice at every start), the
    Ray that ``eqpop study`` starts on one machine is not reachable from the network, and its
    workers run at the driver's priority (Ray's default nice 15 starved a local study)."""
    done = subprocess.run(  # the driver at nice 3: its workers too (Ray's default: 18)
        ["nice", "-n", "3", sys.executable, "-c", _LOCAL_RAY],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "WARNING" not in done.stderr and "authentication" not in done.stderr, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["node"] in ("127.0.0.1", "::1")  # Ray's loopback, IPv4 or IPv6
    assert seen["nice"] == min(os.nice(0) + 3, 19)  # nice caps at 19
    for address in seen["listening"]:  # where ss exists: the GCS and the raylet
        assert address.rsplit(":", 1)[0] in ("127.0.0.1", "[::ffff:127.0.0.1]", "[::1]"), seen
