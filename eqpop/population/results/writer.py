"""One writer for a study's three Parquet datasets (``dataset.py``). Rows are buffered and
written every ``flush_seconds`` (and whenever the driver must have them on disk) into the
dataset's *live* part, which is rewritten whole under its name each time, a temporary file
renamed onto it: a reader sees the part before or after a flush, never half of one, and a row
once flushed stays. A live part that has grown to ``part_bytes`` is left as it is and the next
rows start a new one, so a study of thousands of trials holds a few parts, not one per flush,
and the writer holds at most ``part_bytes`` per dataset. Every part carries the full schema of
its dataset, so parts always concatenate."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from eqpop.io import atomic_write
from eqpop.population.results.dataset import Dataset
from eqpop.records import part_files

#: a live part this large (in memory, about its size on disk) is closed and a new one started
PART_BYTES = 1 << 20


@dataclass
class _Live:
    """The part rows are appended to: its path and everything written to it so far."""

    path: Path
    table: pa.Table


class PartWriter:
    def __init__(
        self,
        root: Path,
        schemas: dict[str, pa.Schema],
        flush_seconds: float = 5.0,
        part_bytes: int = PART_BYTES,
    ):
        self.schemas = schemas
        self.datasets = {name: Dataset(root, name) for name in schemas}
        self.flush_seconds, self.part_bytes = flush_seconds, part_bytes
        self.buffers: dict[str, list[dict[str, Any]]] = {name: [] for name in schemas}
        self.live: dict[str, _Live] = {}
        self.last_flush = time.monotonic()
        self.parts = 0

    def repair(self) -> None:
        """Before the first write: finish what a killed compaction left."""
        for dataset in self.datasets.values():
            dataset.repair()

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

    def flush(self, *names: str) -> None:
        """Append the non-empty buffers of ``names`` (default: every dataset) to their
        datasets' live parts."""
        for name in names or self.buffers:
            rows = self.buffers[name]
            if not rows:
                continue
            table = pa.Table.from_pylist(rows, schema=self.schemas[name])
            live = self.live.get(name) or _Live(self._new_part(name), table.slice(0, 0))
            table = pa.concat_tables([live.table, table]).combine_chunks()
            atomic_write(live.path, lambda tmp, t=table: pq.write_table(t, tmp))
            rows.clear()
            if table.nbytes >= self.part_bytes:
                self.live.pop(name, None)
            else:
                self.live[name] = _Live(live.path, table)
        if not names:
            self.last_flush = time.monotonic()

    def _new_part(self, name: str) -> Path:
        self.parts += 1
        stamp = f"{time.time_ns():020d}-{os.getpid()}-{self.parts:06d}"
        return self.datasets[name].folder() / f"part-{stamp}.parquet"

    def compact(self) -> dict[str, tuple[int, int]]:
        """Flush, then compact every dataset (``Dataset.compact``): files before and after."""
        self.flush()
        self.live.clear()  # later rows start a part in the new generation
        return {name: dataset.compact() for name, dataset in self.datasets.items()}


def read_column(root: Path, dataset: str, column: str) -> list[Any]:
    """One column of a dataset as written so far (empty if nothing is)."""
    folder = Path(root) / dataset
    if not part_files(folder):
        return []
    return pq.read_table(folder, columns=[column]).column(column).to_pylist()
