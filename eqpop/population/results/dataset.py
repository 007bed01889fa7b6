"""One of a study's Parquet datasets on disk, readable with ``pandas.read_parquet(<out>/<name>)``
at any moment, also while it is written or compacted.

``<out>/<name>`` is a symlink to the dataset's current *generation*, a folder
``<out>/.parts/<name>/<NNNNNN>/`` of part files. Compaction copies every part into a few large
files in the next generation, which stays hidden (``.<NNNNNN>.tmp``) until it is complete, then
points the link at it with one rename: a reader sees every old part or every new file, never
both and never neither. A compaction killed at any point leaves the old generation current or a
complete new one, and ``repair`` (run before anything else touches the dataset) finishes the
job: unfinished generations go, the link points at the newest complete one, older ones go.

Only a study's one writer changes a dataset: the driver holding the study's lease, or
``eqpop compact`` holding it. A study written before generations existed (``<out>/<name>`` a
plain folder) is read and appended as it is and moved into a generation by its first compaction.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from eqpop.errors import Damaged, WriteFailed
from eqpop.io import atomic_write
from eqpop.records import part_files, unreadable

PARTS = ".parts"
#: rows per compacted file (about 200 MB for the widest dataset): "a handful of files"
FILE_ROWS = 1 << 20
_GENERATION = re.compile(r"\d{6}")


class Dataset:
    def __init__(self, root: Path, name: str):
        self.root, self.name = Path(root), name
        self.link = self.root / name
        self.generations_dir = self.root / PARTS / name

    def _generation(self, number: int) -> Path:
        return self.generations_dir / f"{number:06d}"

    def generations(self) -> list[int]:
        """Complete generations, oldest first."""
        if not self.generations_dir.is_dir():
            return []
        names = (p.name for p in self.generations_dir.iterdir() if p.is_dir())
        return sorted(int(n) for n in names if _GENERATION.fullmatch(n))

    def _point(self, number: int) -> None:
        """Make ``number`` the current generation: one rename of a fresh link onto the old."""
        tmp = self.root / f".{self.name}.link.tmp"
        tmp.unlink(missing_ok=True)
        os.symlink(self._generation(number).relative_to(self.root), tmp)
        os.replace(tmp, self.link)

    def repair(self) -> None:
        """Finish what a killed start or compaction left (see the module's docstring)."""
        if self.link.is_dir() and not self.link.is_symlink():
            return  # a plain folder of an older study: nothing of ours to finish
        if self.generations_dir.is_dir():
            for unfinished in self.generations_dir.glob(".*"):
                shutil.rmtree(unfinished)
        generations = self.generations()
        if not generations:
            return
        newest = self._generation(generations[-1])
        if not self.link.is_symlink() or self.link.resolve() != newest.resolve():
            self._point(generations[-1])
        for older in generations[:-1]:
            # hidden by one rename first: a reader that resolved the link before the switch
            # then finds the folder gone (and reads again), never an emptied folder of no rows
            hidden = self.generations_dir / f".{older:06d}.old"
            os.rename(self._generation(older), hidden)
            shutil.rmtree(hidden)

    def folder(self) -> Path:
        """Where new parts go: the current generation, made on first use."""
        if not self.link.is_dir():
            self._generation(0).mkdir(parents=True, exist_ok=True)
            self._point(0)
        return self.link

    def compact(self) -> tuple[int, int]:
        """All parts as ``ceil(rows / FILE_ROWS)`` files in a new generation, made current at
        once; returns the number of files before and after. A study with one file per
        dataset or none is left as it is."""
        self.repair()
        parts = part_files(self.link)
        if len(parts) <= 1:
            return len(parts), len(parts)
        return len(parts), self._rewrite(parts)

    def drop_trials(self, trials: set[int], aside: Path) -> int:
        """The dataset without the rows of ``trials``, switched in at once as a compaction is;
        the rows taken out are written to a file in ``aside``. Returns how many."""
        self.repair()
        parts = part_files(self.link)
        if not trials or not parts:
            return 0
        gone = pc.field("trial").isin(sorted(trials))
        taken = _source(parts).to_table(filter=gone)
        if not taken.num_rows:
            return 0
        aside_file = aside / f"dropped-{time.time_ns()}.parquet"
        atomic_write(aside_file, lambda tmp: pq.write_table(taken, tmp))
        self._rewrite(parts, keep=~gone)
        return taken.num_rows

    def _rewrite(self, parts: list[Path], keep: pc.Expression | None = None) -> int:
        """``parts`` (their rows that match ``keep``) as the next generation, made current with
        one rename; returns its number of files."""
        for part in parts:
            why = unreadable(part)
            if why is not None:
                raise Damaged.part(part, why, self.root)
        try:
            if not self.link.is_symlink():  # an older study's plain folder: make it generation 0
                self.generations_dir.mkdir(parents=True, exist_ok=True)
                os.rename(self.link, self._generation(0))
                self._point(0)
                parts = part_files(self.link)
            number = self.generations()[-1] + 1
            tmp = self.generations_dir / f".{number:06d}.tmp"
            written = _copy(parts, tmp, keep)
            os.rename(tmp, self._generation(number))
            self._point(number)
        except OSError as err:
            raise WriteFailed(self.link, err) from err
        self.repair()  # the older generation goes
        return written


def _source(parts: list[Path]) -> ds.Dataset:
    """The parts as one dataset, in their order. The schema is the union of the parts' (a part
    from an older eqpop may lack a column)."""
    schema = pa.unify_schemas([pq.read_schema(p) for p in parts])
    return ds.dataset([str(p) for p in parts], schema=schema, format="parquet")


def _copy(parts: list[Path], folder: Path, keep: pc.Expression | None = None) -> int:
    """Stream ``parts`` (the rows matching ``keep``) in their order into ``folder`` as few
    large files; returns how many."""
    source = _source(parts)
    files: list[str] = []
    ds.write_dataset(
        source.scanner(filter=keep) if keep is not None else source,
        folder,
        format="parquet",
        basename_template=f"part-{time.time_ns():020d}-compact-{{i}}.parquet",
        preserve_order=True,
        max_rows_per_file=FILE_ROWS,
        min_rows_per_group=1 << 16,
        max_rows_per_group=FILE_ROWS,
        file_visitor=lambda written: files.append(written.path),
    )
    return len(files)
