"""``eqpop compact``: a study folder's datasets as a handful of files, only while no driver runs
the study, and one line for a folder or storage it cannot use."""

from __future__ import annotations

import json

import optuna
import pandas as pd
import pytest

from eqpop import records
from eqpop.cli import main
from eqpop.population.results.writer import PartWriter
from eqpop.population.storage.lease import Lease
from eqpop.population.storage.store import open_storage
from eqpop.records import part_files

DATASETS = {
    records.TRIALS: records.trials_schema({}),
    records.METRICS: records.metrics_schema(1),
    records.COMPARISONS: records.comparisons_schema(),
}


@pytest.fixture
def folder(tmp_path):
    """A study folder as a killed driver leaves it: a journal, study.json, 5 parts a dataset."""
    out = tmp_path / "study"
    journal = out / "optuna.journal"
    optuna.create_study(study_name="s", storage=open_storage(str(journal)))
    (out / "study.json").write_text(json.dumps({"name": "s", "storage": str(journal)}))
    writer = PartWriter(out, DATASETS, part_bytes=1)
    for trial in range(5):
        keys = {"study": "s", "trial": trial}
        writer.add(records.TRIALS, [{**keys, "state": "COMPLETE"}])
        writer.add(records.METRICS, [{**keys, "epoch": 1, "val_error": 0.5}])
        writer.add(records.COMPARISONS, [{**keys, "epoch": 1, "method": "rbp", "layer": 0}])
        writer.flush()
    return out


def test_compact_leaves_one_file_per_dataset_with_every_row(folder, capsys):
    before = {name: pd.read_parquet(folder / name) for name in DATASETS}
    assert main(["compact", str(folder)]) == 0
    out = capsys.readouterr().out
    for name, frame in before.items():
        assert f"{folder / name}: 5 files -> 1" in out
        assert len(part_files(folder / name)) == 1
        after = pd.read_parquet(folder / name)
        pd.testing.assert_frame_equal(after, frame)


def test_compact_refuses_while_a_driver_holds_the_study(folder, capsys):
    study = optuna.load_study(study_name="s", storage=open_storage(str(folder / "optuna.journal")))
    driver = Lease(study, every=0.1)  # this test's process: a live driver on this host
    driver.acquire()
    assert main(["compact", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is run by another driver (pid" in err
    assert all(len(part_files(folder / name)) == 5 for name in DATASETS)
    driver.release()


def test_a_folder_or_storage_it_cannot_use_is_one_line(folder, tmp_path, capsys):
    assert main(["compact", str(tmp_path)]) == 2
    assert "holds no study (no study.json)" in capsys.readouterr().err
    described = (folder / "study.json").read_text()
    for text, says in (("[1]", "names no study"), ("{", "not JSON")):
        (folder / "study.json").write_text(text)
        assert main(["compact", str(folder)]) == 2
        assert f"study.json: {says}" in capsys.readouterr().err
    (folder / "study.json").write_text(described)
    url = "postgresql://eqpop:secret@localhost/optuna"
    (folder / "study.json").write_text(
        json.dumps({"name": "s", "storage": url.replace("secret", "***")})
    )
    assert main(["compact", str(folder)]) == 2
    assert "without its password; give it with --storage" in capsys.readouterr().err
    other = tmp_path / "other.journal"
    assert main(["compact", str(folder), "--storage", str(other)]) == 2
    assert f"storage {other}: no such journal file\n" in capsys.readouterr().err
    optuna.create_study(study_name="not-s", storage=open_storage(str(other)))
    assert main(["compact", str(folder), "--storage", str(other)]) == 2
    err = capsys.readouterr().err
    assert "holds no study 's'" in err and err.count("\n") == 1
    assert all(len(part_files(folder / name)) == 5 for name in DATASETS)
