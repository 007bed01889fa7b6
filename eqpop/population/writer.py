"""One writer for a study's three Parquet datasets: rows are buffered and appended as part files
that appear atomically (hidden temporary name, then rename), so ``pandas.read_parquet`` of a
dataset folder works at any moment, also while the study runs. Every part carries the full
schema of its dataset, so parts always concatenate."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from eqpop.io import atomic_write


class PartWriter:
    def __init__(self, root: Path, schemas: dict[str, pa.Schema], flush_seconds: float = 5.0):
        self.root = Path(root)
        self.schemas = schemas
        self.flush_seconds = flush_seconds
        self.buffers: dict[str, list[dict[str, Any]]] = {name: [] for name in schemas}
        self.last_flush = time.monotonic()
        self.parts = 0

    def add(self, dataset: str, rows: list[dict[str, Any]]) -> None:
        """Queue rows; a column the schema does not know is a bug, not data to drop quietly."""
        names = set(self.schemas[dataset].names)
        for row in rows:
            unknown = set(row) - names
            if unknown:
                raise KeyError(f"{dataset}: columns {sorted(unknown)} are not in the schema")
        self.buffers[dataset].extend(rows)

    def maybe_flush(self) -> None:
        if time.monotonic() - self.last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write every non-empty buffer as one part file per dataset."""
        for name, rows in self.buffers.items():
            if not rows:
                continue
            table = pa.Table.from_pylist(rows, schema=self.schemas[name])
            self.parts += 1
            part = f"part-{time.time_ns():020d}-{os.getpid()}-{self.parts:06d}.parquet"
            atomic_write(self.root / name / part, lambda tmp, t=table: pq.write_table(t, tmp))
            rows.clear()
        self.last_flush = time.monotonic()


def read_column(root: Path, dataset: str, column: str) -> list[Any]:
    """One column of a dataset as written so far (empty if nothing is)."""
    folder = Path(root) / dataset
    if not folder.is_dir() or not any(folder.glob("part-*.parquet")):
        return []
    return pq.read_table(folder, columns=[column]).column(column).to_pylist()
