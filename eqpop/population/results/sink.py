"""Everything a study writes besides its Optuna storage: the Parquet datasets (trials, metrics,
comparisons and, under PBT, lineage) and the two JSON files, ``study.json`` (what the study
is, with its base training config and the description of every estimator) and
``summary.json`` (what the last driver run did).

Nothing lost, nothing doubled: a finished trial's metrics and comparisons are flushed *before*
Optuna is told that it ended and its trial row is written *after*, so a restarted driver adds
the trial rows it finds missing and never writes a (trial, epoch) twice.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
from optuna.trial import FrozenTrial

from eqpop import records
from eqpop.config import TrainConfig
from eqpop.estimators import registry
from eqpop.population.definition.spec import StudyConfig
from eqpop.population.results.writer import PartWriter, read_column


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(timezone.utc) if moment is not None else None


class Sink:
    def __init__(self, spec: StudyConfig, base: TrainConfig, params: dict[str, pa.DataType]):
        self.spec, self.base, self.params = spec, base, params
        self.out = Path(spec.out)
        schemas = {
            records.TRIALS: records.trials_schema(params),
            records.METRICS: records.metrics_schema(base.n_layers),
            records.COMPARISONS: records.comparisons_schema(),
            records.LINEAGE: records.lineage_schema(params),
        }
        self.writer = PartWriter(self.out, schemas, spec.flush_seconds)

    def open(self) -> None:
        """Once the study is this driver's: finish a compaction a killed process left, and
        write ``study.json``: the study (its storage as ``described_storage`` names it), the
        training config its trials start from and the estimators' descriptions for reports."""
        self.writer.repair()
        described = self.spec.model_dump(mode="json")
        described["storage"] = records.described_storage(self.spec.storage)
        described["train_config"] = self.base.model_dump(mode="json")
        described["methods"] = registry.describe()
        records.write_study(self.out, described)

    def epoch(self, trial: int, record: dict[str, Any], resumed: bool) -> None:
        row = {k: v for k, v in record.items() if k != "epoch"}
        keys = {"study": self.spec.name, "trial": trial, "epoch": int(record["epoch"])}
        self.writer.add(records.METRICS, [{**keys, "resumed": resumed, **row}])

    def comparisons(self, trial: int, epoch: int, rows: list[dict[str, Any]]) -> None:
        keys = {"study": self.spec.name, "trial": trial, "epoch": epoch}
        self.writer.add(records.COMPARISONS, [{**keys, **row} for row in rows])

    def trial(self, frozen: FrozenTrial) -> None:
        """A finished trial's row (queued after Optuna recorded the end, written with the next
        flush; a driver stopped before that writes it at its next start)."""
        start, end = frozen.datetime_start, frozen.datetime_complete
        attrs = frozen.user_attrs
        row = {
            "study": self.spec.name,
            "trial": frozen.number,
            "state": frozen.state.name,
            "value": frozen.value,
            "epochs": frozen.last_step,
            "duration_s": (end - start).total_seconds() if start and end else None,
            "fail_reason": attrs.get("fail_reason"),
            "retry_of": attrs.get("retry_of"),
            "attempt": attrs.get("attempt", 0),
            "actor": attrs.get("actor"),
            "member": attrs.get("member"),
            "exploited_by": attrs.get("exploited_by"),
            "started": _utc(start),
            "finished": _utc(end),
            **{f"param_{k}": frozen.params.get(k) for k in self.params},
        }
        self.writer.add(records.TRIALS, [row])

    def lineage(self, child: FrozenTrial, parent: FrozenTrial) -> None:
        """A PBT child's row (its user attributes say whom it replaced, from which epoch and
        with which scores), queued for the next flush."""
        attrs = child.user_attrs
        row = {
            "study": self.spec.name,
            "trial": child.number,
            "parent": parent.number,
            "exploited": attrs["exploited"],
            "member": attrs["member"],
            "epoch": attrs["copied_epoch"],
            "parent_score": attrs["parent_score"],
            "exploited_score": attrs["exploited_score"],
            **{f"parent_param_{k}": parent.params.get(k) for k in self.params},
            **{f"param_{k}": child.system_attrs["fixed_params"].get(k) for k in self.params},
        }
        self.writer.add(records.LINEAGE, [row])

    def missing_lineage(self, children: list[tuple[FrozenTrial, FrozenTrial]]) -> None:
        """Rows for PBT children (with their parents) a stopped driver had no time to write."""
        written = set(read_column(self.out, records.LINEAGE, "trial"))
        for child, parent in children:
            if child.number not in written:
                self.lineage(child, parent)
        self.flush()

    def missing_trials(self, done: list[FrozenTrial]) -> None:
        """Rows for finished trials a stopped driver had no time to write."""
        written = set(read_column(self.out, records.TRIALS, "trial"))
        for frozen in done:
            if frozen.number not in written:
                self.trial(frozen)
        self.flush()

    def flush(self) -> None:
        self.writer.flush()

    def flush_epochs(self) -> None:
        """What must be on disk before Optuna hears that a trial ended: its epochs (metrics
        and comparisons). Its trial row follows with the next periodic flush."""
        self.writer.flush(records.METRICS, records.COMPARISONS)

    def maybe_flush(self) -> None:
        self.writer.maybe_flush()

    def compact(self) -> dict[str, tuple[int, int]]:
        """Every dataset as a handful of files (files before and after, by dataset)."""
        return self.writer.compact()

    def summary(self, values: dict[str, Any]) -> None:
        records.write_json(self.out / records.SUMMARY_JSON, values)
