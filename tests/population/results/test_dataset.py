"""A study's datasets on disk: rolled live parts, and compaction that switches a dataset to a
handful of files at once, finished by ``repair`` whenever it was killed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eqpop.population.results.dataset import PARTS, Dataset
from eqpop.population.results.writer import PartWriter
from eqpop.records import part_files

SCHEMA = pa.schema([pa.field("trial", pa.int64()), pa.field("epoch", pa.int64())])


def rows(trials: range, epochs: int = 3) -> list[dict[str, int]]:
    return [{"trial": t, "epoch": e} for t in trials for e in range(1, epochs + 1)]


def read(folder) -> list[tuple[int, int]]:
    """The dataset as pandas reads it, in a fixed order (duplicates kept)."""
    frame = pd.read_parquet(folder)
    return sorted(zip(frame.trial, frame.epoch, strict=True))


def written(root, parts: int, per_part: int = 3) -> list[tuple[int, int]]:
    """``parts`` flushes of a writer that closes its part at every flush: ``parts`` files."""
    writer = PartWriter(root, {"metrics": SCHEMA}, part_bytes=1)
    for k in range(parts):
        writer.add("metrics", rows(range(k * per_part, (k + 1) * per_part)))
        writer.flush()
    return sorted((r["trial"], r["epoch"]) for r in rows(range(parts * per_part)))


def test_a_live_part_grows_until_it_is_rolled(tmp_path):
    writer = PartWriter(tmp_path, {"metrics": SCHEMA}, part_bytes=200)
    for k in range(4):  # 3 rows of 2 int64 columns: 48 bytes per flush
        writer.add("metrics", rows(range(k, k + 1)))
        writer.flush()
        assert len(part_files(tmp_path / "metrics")) == 1  # rewritten, never half
    for k in range(4, 8):
        writer.add("metrics", rows(range(k, k + 1)))
        writer.flush()
    assert len(part_files(tmp_path / "metrics")) == 2  # the first reached 200 bytes
    assert read(tmp_path / "metrics") == sorted((r["trial"], r["epoch"]) for r in rows(range(8)))
    assert (tmp_path / "metrics").is_symlink()  # to its generation in .parts/


def test_compaction_keeps_every_row_once_and_later_rows_follow(tmp_path):
    expected = written(tmp_path, parts=40)
    assert len(part_files(tmp_path / "metrics")) == 40
    assert Dataset(tmp_path, "metrics").compact() == (40, 1)
    assert read(tmp_path / "metrics") == expected
    assert os.readlink(tmp_path / "metrics") == f"{PARTS}/metrics/000001"
    assert [p.name for p in (tmp_path / PARTS / "metrics").iterdir()] == ["000001"]
    writer = PartWriter(tmp_path, {"metrics": SCHEMA})
    writer.add("metrics", rows(range(1000, 1001)))
    writer.flush()
    assert len(part_files(tmp_path / "metrics")) == 2
    assert len(read(tmp_path / "metrics")) == len(expected) + 3


def test_an_older_studys_plain_folder_is_appended_then_moved_into_a_generation(tmp_path):
    (tmp_path / "metrics").mkdir()
    for k in range(3):
        table = pa.Table.from_pylist(rows(range(k, k + 1)), schema=SCHEMA)
        pq.write_table(table, tmp_path / "metrics" / f"part-{k}.parquet")
    writer = PartWriter(tmp_path, {"metrics": SCHEMA})
    writer.repair()
    writer.add("metrics", rows(range(3, 4)))
    writer.flush()
    assert not (tmp_path / "metrics").is_symlink()
    assert writer.compact() == {"metrics": (4, 1)}
    assert (tmp_path / "metrics").is_symlink()
    assert read(tmp_path / "metrics") == sorted((r["trial"], r["epoch"]) for r in rows(range(4)))


def test_repair_finishes_each_state_a_killed_compaction_leaves(tmp_path):
    expected = written(tmp_path, parts=5)
    dataset = Dataset(tmp_path, "metrics")
    generations = tmp_path / PARTS / "metrics"
    # killed while writing generation 1: a hidden, unfinished folder; readers see generation 0
    shutil.copytree(generations / "000000", generations / ".000001.tmp")
    assert read(tmp_path / "metrics") == expected
    dataset.repair()
    assert sorted(p.name for p in generations.iterdir()) == ["000000"]
    # killed after generation 1 was complete, before the link moved: both are whole
    shutil.copytree(generations / "000000", generations / "000001")
    assert read(tmp_path / "metrics") == expected
    dataset.repair()
    assert os.readlink(tmp_path / "metrics") == f"{PARTS}/metrics/000001"
    assert sorted(p.name for p in generations.iterdir()) == ["000001"]
    assert read(tmp_path / "metrics") == expected


_COMPACT = """
import sys
from eqpop.population.results.dataset import Dataset
print("ready", flush=True)
sys.stdin.readline()
Dataset(sys.argv[1], "metrics").compact()
print("done", flush=True)
"""


def _compaction(root) -> subprocess.Popen:
    """A compaction in its own process, started (imports done) and waiting for a line."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _COMPACT, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline() == "ready\n"
    return proc


def _go(proc: subprocess.Popen) -> float:
    proc.stdin.write("go\n")
    proc.stdin.flush()
    return time.monotonic()


def test_compaction_killed_at_any_moment_loses_and_doubles_nothing(tmp_path):
    """SIGKILL at moments spread over a real compaction's length: every time, pandas reads
    every row once, before and after ``repair``, and the next compaction completes."""
    source = tmp_path / "source"
    expected = written(source, parts=300)
    timing = tmp_path / "timing"
    shutil.copytree(source, timing, symlinks=True)
    proc = _compaction(timing)
    began = _go(proc)
    assert proc.stdout.readline() == "done\n"
    length = time.monotonic() - began
    proc.wait()
    for fraction in (0.05, 0.2, 0.4, 0.6, 0.8, 0.95):
        root = tmp_path / f"killed-{fraction}"
        shutil.copytree(source, root, symlinks=True)
        proc = _compaction(root)
        began = _go(proc)
        time.sleep(max(0.0, began + fraction * length - time.monotonic()))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert read(root / "metrics") == expected, fraction
        Dataset(root, "metrics").repair()
        assert read(root / "metrics") == expected, fraction
        assert Dataset(root, "metrics").compact()[1] == 1
        assert read(root / "metrics") == expected, fraction


def test_readers_during_a_compaction_see_every_row_once_or_a_missing_file(tmp_path):
    """A read whose listing precedes the switch may find an old part gone (read again); no
    read ever returns a row twice or misses one."""
    expected = written(tmp_path, parts=300)
    proc = _compaction(tmp_path)
    _go(proc)
    reads, missing = 0, 0
    while proc.poll() is None:
        try:
            assert read(tmp_path / "metrics") == expected
            reads += 1
        except FileNotFoundError:
            missing += 1
    assert proc.wait() == 0 and reads >= 1
    assert read(tmp_path / "metrics") == expected
    assert len(part_files(tmp_path / "metrics")) == 1


@pytest.mark.parametrize("parts", [0, 1])
def test_nothing_to_gain_is_left_alone(tmp_path, parts):
    written(tmp_path, parts=parts)
    assert Dataset(tmp_path, "metrics").compact() == (parts, parts)
