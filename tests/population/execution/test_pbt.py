"""Population-based training: its two rules without Ray (which members are replaced, how a
child perturbs its parent's settings), then a real PBT study on Ray actors with journal
storage whose driver is SIGKILLed mid-study and started again: exploits happen, a child goes on
from its parent's checkpoint with its own settings, the lineage agrees with Optuna's trials,
Parquet with the storage, and ``eqpop train --replay`` retraces a lineage."""

from __future__ import annotations

import random
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch
import yaml
from optuna.trial import TrialState
from tiny_study import assert_parquet_agrees, stored_trials, study_command, tiny_study

from eqpop.cli import main
from eqpop.data import load_dataset
from eqpop.population.definition.spec import build_study
from eqpop.population.execution.pbt import as_params, explore, quantiles
from eqpop.population.storage.store import open_storage
from eqpop.train import Trainer, checkpoint

SPACE = {
    "method": {"choices": ["classic", "hep"]},
    "n_points": {"choices": [2, 4, 6, 8], "when": {"method": ["hep"]}},
    "lambda_homeo": {"low": 0.1, "high": 20.0, "log": True, "zero_or": True},
    "lr": {"low": 0.01, "high": 0.2, "log": True},
    "seed": {"choices": [0, 1]},
}


def test_quantiles_take_ray_tune_s_share_of_the_latest_scores():
    scores = {0: 0.3, 1: 0.1, 2: 0.5, 3: 0.2, 4: 0.4}
    assert quantiles(scores, 0.25) == ([4, 2], [1, 3])  # ceil(5 / 4) = 2 each
    assert quantiles(scores, 0.5) == ([4, 2], [1, 3])  # at most half of them
    assert quantiles(scores, 0.1) == ([2], [1])
    assert quantiles({0: 0.3, 1: 0.1}, 0.5) == ([0], [1])
    assert quantiles({0: 0.3}, 0.5) == ([], [])  # nobody to compare with


def test_explore_perturbs_within_the_space_and_keeps_its_conditions():
    spec = build_study(name="p", preset="digits-mlp", space=SPACE, schedule="pbt")
    assert spec.mutations() == ["method", "n_points", "lambda_homeo", "lr"]  # not the seed
    rng = random.Random(0)
    parent = {"method": "hep", "n_points": 4, "lambda_homeo": 1.0, "lr": 0.1, "seed": 1}
    children = [explore(spec, parent, rng) for _ in range(300)]
    for child in children:
        assert child["seed"] == 1
        assert ("n_points" in child) == (child["method"] == "hep")
        assert child["lambda_homeo"] == 0 or 0.1 <= child["lambda_homeo"] <= 20
        assert 0.01 <= child["lr"] <= 0.2
        spec.train_config(child)
    rates = {round(c["lr"] / parent["lr"], 6) for c in children}
    assert {0.8, 1.2} <= rates and len(rates) > 2  # perturbed, or now and then resampled
    assert {c.get("n_points") for c in children} >= {2, 4, 6, None}  # neighbours of 4, off
    off = explore(spec, {**parent, "lambda_homeo": 0}, random.Random(1))
    assert as_params(spec, off)["lambda_homeo_on"] == (off["lambda_homeo"] != 0)


def _pbt_study(tmp_path):
    spec = tiny_study(
        tmp_path,
        name="tiny-pbt",
        schedule="pbt",
        pbt={"population": 4, "perturbation_interval": 2, "quantile_fraction": 0.5},
        actors=4,
        cpus_per_actor=0.5,
        base={**tiny_study(tmp_path).base, "epochs": 6, "train_subset": 512},
        probe={"every": 6, "batch": 8, "betas": [0.5], "n_points": [2]},
    )
    path = tmp_path / "pbt.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude={"out", "address"})))
    return spec, path


def _children(spec):
    return [t for t in stored_trials(spec) if "exploited" in t.user_attrs]


def test_a_pbt_study_exploits_explores_survives_a_driver_sigkill_and_replays(
    ray_address, tmp_path, capsys
):
    spec, path = _pbt_study(tmp_path)
    cmd = study_command(path, spec.out, ray_address)
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and first.poll() is None:
        running = any(t.state == TrialState.RUNNING for t in stored_trials(spec))
        if _children(spec) and running:
            break
        time.sleep(0.2)
    assert first.poll() is None, first.stderr.read().decode()[-2000:]
    first.kill()  # SIGKILL mid-study: members left RUNNING, children maybe still waiting
    first.wait()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]

    # a trial whose last epoch a SIGKILL caught unrecorded completes on restart without
    # training again, so without its probe: comparisons need not exist
    study = optuna.load_study(study_name=spec.name, storage=open_storage(spec.storage_url))
    frames = {d: pd.read_parquet(spec.out / d) for d in ("trials", "metrics")}
    assert_parquet_agrees(study, frames)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(t.user_attrs["member"] for t in complete) == [0, 1, 2, 3]
    assert all(t.last_step == 6 for t in complete)

    # the lineage dataset is the storage's: every child once, naming an existing parent and
    # the trial it replaced, which ended pruned by that parent
    lineage = pd.read_parquet(spec.out / "lineage")
    children = [t for t in trials if "exploited" in t.user_attrs]
    assert children and sorted(lineage.trial) == sorted(t.number for t in children)
    assert lineage.trial.is_unique
    for row in lineage.itertuples():
        child, replaced = trials[row.trial], trials[row.exploited]
        assert row.parent < len(trials) and row.parent != row.exploited
        assert (
            child.user_attrs["parent"] == row.parent and row.member == replaced.user_attrs["member"]
        )
        assert replaced.state == TrialState.PRUNED
        assert replaced.user_attrs["exploited_by"] == row.parent
        # the child's first epochs are its parent's, as the checkpoint it copied holds them
        # (either's epochs reported by itself, or by its retry when the SIGKILL caught it)
        child_rows = _curve(frames["metrics"], trials, row.trial, row.epoch)
        assert child_rows.resumed.all() and list(child_rows.epoch) == list(range(1, row.epoch + 1))
        parent_rows = _curve(frames["metrics"], trials, row.parent, row.epoch)
        assert list(child_rows.val_error) == list(parent_rows.val_error)

    # the child went on from exactly that checkpoint with its own settings: one epoch from the
    # copied checkpoint, here, gives the child's next record
    metrics = frames["metrics"]
    row, theirs = next(
        (r, found)
        for r in lineage.itertuples()
        for found in [metrics[metrics.trial.isin(_attempts(trials, r.trial))]]
        if (found.epoch == r.epoch + 1).any()
    )
    theirs = theirs[theirs.epoch == row.epoch + 1]
    child = trials[row.trial]
    cfg = spec.train_config(spec.draw(optuna.trial.FixedTrial(child.system_attrs["fixed_params"])))
    snapshot = Path(child.user_attrs["inherit"])
    with _one_thread():  # as the actors train
        trainer = Trainer(cfg, None, load_dataset("digits"))
        checkpoint.inherit(snapshot, trainer.state, cfg)
        saved = torch.load(snapshot, weights_only=True)["net"]
        for name, value in trainer.net.state_dict().items():
            assert torch.equal(value, saved[name]), name
        record = trainer.run_epoch()
    assert record["val_error"] == pytest.approx(float(theirs.val_error.iloc[0]), abs=1e-9)
    assert record["train_loss"] == pytest.approx(float(theirs.train_loss.iloc[0]), rel=1e-5)

    # the report draws the lineages and tabulates the best one's schedule
    assert main(["report", str(spec.out), "--out", str(tmp_path / "rep")]) == 0
    best = (tmp_path / "rep" / "best_lineage.md").read_text()
    assert best.count("\n| tiny-pbt |") >= 1 and (tmp_path / "rep" / "pbt_lineages.png").is_file()

    # a lineage replayed from scratch retraces its curve, its settings changing where recorded
    last = next(t for t in complete if _lineage_of(lineage, trials, t.number))
    out = tmp_path / "replay"
    with _one_thread():
        replay = ["--replay", str(spec.out), "--trial", str(last.number), "--out", str(out)]
        assert main(["train", *replay, "--quiet"]) == 0
    replayed = pd.read_parquet(out / "metrics.parquet").set_index("epoch")
    study_curve = frames["metrics"].query("trial == @last.number").set_index("epoch")
    assert list(replayed.index) == list(range(1, 7))
    assert replayed.val_error.tolist() == pytest.approx(study_curve.val_error.tolist(), abs=1e-9)
    assert replayed.lr.tolist() == pytest.approx(study_curve.lr.tolist(), rel=1e-9)
    assert replayed.segment.nunique() >= 2
    pruned = next(t.number for t in trials if t.state == TrialState.PRUNED)
    capsys.readouterr()  # what the report and the replay printed
    assert main(["train", "--replay", str(spec.out), "--trial", str(pruned), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"no complete trial {pruned}" in err


@contextmanager
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _attempts(trials, number) -> list[int]:
    """A trial and every retry of it (a retry of a retry included)."""
    found = [number]
    for t in trials:
        if t.user_attrs.get("retry_of") in found:
            found.append(t.number)
    return found


def _curve(metrics, trials, number, until):
    """A trial's epochs up to ``until``, as it or its retries reported them."""
    mine = metrics[metrics.trial.isin(_attempts(trials, number)) & (metrics.epoch <= until)]
    return mine.sort_values("epoch").drop_duplicates("epoch")


def _lineage_of(lineage, trials, number) -> bool:
    """Whether trial ``number`` (or the trial it retried) is a child."""
    while trials[number].user_attrs.get("retry_of") is not None:
        number = trials[number].user_attrs["retry_of"]
    return number in set(lineage.trial)


def test_replay_refuses_a_wrong_trial_or_study_in_one_line(tmp_path, capsys):
    code = main(["train", "--replay", str(tmp_path / "none"), "--trial", "1", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "does not exist" in err
    code = main(["train", "--trial", "1", "--quiet"])
    assert code == 2 and "--replay and --trial go together" in capsys.readouterr().err
