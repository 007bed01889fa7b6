"""A study folder with something unreadable in it: a damaged Parquet part, a damaged journal
record. The study refuses to start in one line (naming the file and ``eqpop compact
--repair``) before writing anything; the repair sets aside what cannot be kept, keeps every
row that still reads, and the same command then continues the study with the storage and the
Parquet in agreement: no trial number handed out again lands on an old trial's rows or run
folder. ``eqpop report`` says what it leaves out and reports the rest. A copied study folder
is a study of its own."""

from __future__ import annotations

import json
import shutil
import subprocess

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from optuna.trial import TrialState
from tiny_study import assert_parquet_agrees, load, study_command, tiny_study

from eqpop.cli import main
from eqpop.population.results.repair import Aside, _set_aside_parts
from eqpop.population.results.writer import PartWriter
from eqpop.records import part_files

SCHEMA = pa.schema([pa.field("trial", pa.int64()), pa.field("epoch", pa.int64())])


@pytest.fixture(scope="module")
def finished(ray_address, tmp_path_factory):
    """A finished study of 4 trials (its default journal in the folder) and its study file."""
    root = tmp_path_factory.mktemp("finished")
    spec = tiny_study(root, trials=4, pruner="none")
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude={"out", "address"})))
    # a driver process of its own, gone when it ends (as a user's): a journal cut back to a
    # record before its lease was released names a holder that is no longer there
    done = subprocess.run(study_command(path, spec.out, ray_address), capture_output=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return spec, path


@pytest.fixture
def study(finished, tmp_path):
    """A copy of the finished study to damage (``cp -a``: its links stay relative)."""
    spec, path = finished
    shutil.copytree(spec.out, tmp_path / "study", symlinks=True)
    return spec.model_copy(update={"out": tmp_path / "study"}), path


def _study_cmd(study, ray_address, trials: int) -> list[str]:
    spec, path = study
    return [*study_command(path, spec.out, ray_address), "--trials", str(trials)]


def _snapshot(folder) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def _refused(cmd, folder) -> str:
    """The command exits 2 with one line and leaves the folder as it was."""
    before = _snapshot(folder)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert _snapshot(folder) == before
    return done.stderr.strip()


def test_a_damaged_metrics_part_is_refused_set_aside_and_the_study_continues(
    study, ray_address, capsys
):
    """Before: two more trials trained, then compaction failed without naming the file, and
    every later run failed the same way."""
    spec, _ = study
    (part,) = part_files(spec.out / "metrics")
    cut = part.read_bytes()[:-100]  # cut short: no footer
    part.write_bytes(cut)
    cmd = _study_cmd(study, ray_address, 6)
    line = _refused(cmd, spec.out)
    assert f"{part}: damaged Parquet part" in line
    assert f"eqpop compact --repair {spec.out}" in line
    assert main(["compact", "--repair", str(spec.out)]) == 0
    said = capsys.readouterr().out
    assert f"{part}: damaged" in said and "none of its rows could be read" in said
    aside = list((spec.out / "quarantine").glob(f"*/metrics/{part.name}"))
    assert len(aside) == 1 and aside[0].read_bytes() == cut
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    study_, frames = load(spec)
    assert len([t for t in study_.trials if t.state == TrialState.COMPLETE]) == 6
    assert set(frames["trials"].trial) == {t.number for t in study_.trials}
    assert set(frames["metrics"].trial) == {4, 5}  # the old trials' epochs were in that part
    assert not frames["metrics"].duplicated(["trial", "epoch"]).any()


def test_a_part_with_one_damaged_row_group_keeps_the_others(tmp_path):
    writer = PartWriter(tmp_path, {"metrics": SCHEMA}, part_bytes=1)
    writer.add("metrics", [{"trial": 0, "epoch": e} for e in (1, 2)])
    writer.flush()
    (part,) = part_files(tmp_path / "metrics")
    rows = pa.Table.from_pylist([{"trial": t, "epoch": 1} for t in range(1, 7)], schema=SCHEMA)
    pq.write_table(rows, part, row_group_size=3, compression="none")
    meta = pq.read_metadata(part)
    second = meta.row_group(1).column(0)
    data = bytearray(part.read_bytes())
    start = second.data_page_offset
    data[start : start + 8] = b"\xff" * 8  # the second group's page header garbled
    part.write_bytes(bytes(data))
    said = list(_set_aside_parts(tmp_path, Aside(tmp_path)))
    assert len(said) == 1 and "kept 3 of its 6 rows" in said[0], said
    assert sorted(pd.read_parquet(tmp_path / "metrics").trial) == [1, 2, 3]


def test_a_damaged_comparisons_part_leaves_the_rest_of_the_report(study, capsys):
    """Before: ``eqpop report`` refused the whole report."""
    spec, _ = study
    (part,) = part_files(spec.out / "comparisons")
    part.write_bytes(b"PAR1 not a parquet file")
    assert main(["report", str(spec.out), "--out", str(spec.out / "r")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{part}: damaged Parquet part" in err[0]
    assert "compact --repair" in err[0]
    table = (spec.out / "r" / "best_trials.md").read_text()
    assert "trial" in table and len(table.splitlines()) > 3  # the trials still reported


def test_a_damaged_journal_record_is_repaired_without_reusing_trial_numbers(
    study, ray_address, capsys
):
    """A record in the middle that still parses but lost a key. Before: a 35-line KeyError in
    study, report and compact; and the ``head -n`` advice left trial numbers reused onto old
    rows and an old checkpoint folder."""
    spec, _ = study
    journal = spec.out / "optuna.journal"
    lines = journal.read_bytes().split(b"\n")
    record = next(k for k, line in enumerate(lines, 1) if b'"trial_id":2,' in line)
    lines[record - 1] = lines[record - 1].replace(b'"trial_id"', b'"trial_ix"')
    journal.write_bytes(b"\n".join(lines))
    cmd = _study_cmd(study, ray_address, 6)
    line = _refused(cmd, spec.out)
    assert f"{journal}: record {record} of {len(lines) - 1} is damaged (KeyError" in line
    assert f"eqpop compact --repair {spec.out}" in line
    assert main(["report", str(spec.out), "--out", str(spec.out / "r")]) == 0
    assert f"{journal}: record {record} of" in capsys.readouterr().err
    runs = {p.name: (p / "checkpoint.pt").read_bytes() for p in (spec.out / "runs").iterdir()}
    assert main(["compact", "--repair", str(spec.out)]) == 0
    said = capsys.readouterr().out
    assert f"record {record} of" in said and f"{journal}.damaged" in said
    kept, _ = load(spec)
    gone = set(range(4)) - {t.number for t in kept.trials}  # started by the dropped records
    assert gone and "rows of trials" in said
    assert all(f"runs/{n:05d}: no trial of the storage runs in it" in said for n in gone)
    assert {p.name for p in (spec.out / "runs").iterdir()} == set(runs) - {f"{n:05d}" for n in gone}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    study_, frames = load(spec)
    assert_parquet_agrees(study_, frames)  # one row per trial, no (trial, epoch) twice
    for name in (f"{n:05d}" for n in gone):  # the old checkpoint aside, never resumed
        (aside,) = (spec.out / "quarantine").glob(f"*/runs/{name}/checkpoint.pt")
        assert aside.read_bytes() == runs[name]
        again = spec.out / "runs" / name / "checkpoint.pt"
        assert not again.exists() or again.read_bytes() != runs[name]


def test_a_copied_study_folder_is_a_study_of_its_own(study, finished, capsys):
    """Before: study.json named the journal by absolute path, so compacting a copy appended
    the copy's lease records to the original's journal."""
    spec, _ = study
    original = finished[0].out / "optuna.journal"
    before = original.read_bytes()
    assert json.loads((spec.out / "study.json").read_text())["storage"] == "optuna.journal"
    copy_journal = (spec.out / "optuna.journal").read_bytes()
    assert main(["compact", str(spec.out)]) == 0
    assert original.read_bytes() == before
    assert (spec.out / "optuna.journal").read_bytes() != copy_journal  # the lease came here
    assert main(["report", str(spec.out), "--out", str(spec.out / "r")]) == 0
    assert "warning" not in capsys.readouterr().err
