"""Parquet parts: atomic, full schema in every part, readable with pandas at any moment."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from eqpop import records
from eqpop.population.results.writer import PartWriter, read_column


def test_parts_concatenate_and_hidden_files_are_ignored(tmp_path):
    metrics = records.metrics_schema(n_layers=2)
    w = PartWriter(tmp_path, {records.METRICS: metrics}, flush_seconds=60)
    w.add(
        records.METRICS,
        [{"study": "s", "trial": 0, "epoch": 1, "val_error": 0.5, "cos_rbp_l1": 0.9}],
    )
    w.flush()
    w.add(records.METRICS, [{"study": "s", "trial": 1, "epoch": 1, "val_error_forward": 0.3}])
    w.flush()
    # a half-written part of a crashed writer: a hidden temporary name
    (tmp_path / records.METRICS / ".part-x.parquet.tmp").write_bytes(b"PAR1 garbage")
    frame = pd.read_parquet(tmp_path / records.METRICS)
    assert sorted(frame.trial) == [0, 1] and list(frame.columns) == metrics.names
    assert frame.loc[frame.trial == 1, "cos_rbp_l1"].isna().all()
    assert read_column(tmp_path, records.METRICS, "trial") in ([0, 1], [1, 0])
    assert read_column(tmp_path, records.TRIALS, "trial") == []


def test_unknown_columns_are_refused(tmp_path):
    w = PartWriter(tmp_path, {records.METRICS: records.metrics_schema(2)})
    with pytest.raises(KeyError, match="cos_rbp_l7"):
        w.add(records.METRICS, [{"trial": 0, "cos_rbp_l7": 1.0}])


def test_flush_waits_for_its_interval(tmp_path):
    w = PartWriter(tmp_path, {"x": pa.schema([pa.field("a", pa.int64())])}, flush_seconds=3600)
    w.add("x", [{"a": 1}])
    w.maybe_flush()
    assert not (tmp_path / "x").exists()
    w.flush()
    assert pd.read_parquet(tmp_path / "x").a.tolist() == [1]
