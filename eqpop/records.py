"""Everything eqpop keeps on disk, in one place: the names of a run's and a study's files and
folders, ``study.json`` (read, written, and the storage it names), and the Parquet schemas with
their column lists. Every writer (the Trainer, ``eqpop compare``, the study driver) and every
reader (``eqpop report``, ``eqpop compact``, the importances) goes through here, and
``reports/README.md`` documents each column.

A run folder (``eqpop train --out``) holds ``config.json``, ``metrics.parquet`` (one row per
epoch) and ``checkpoint.pt`` (and the one before it, ``checkpoint.prev.pt``). A study folder
``reports/<study>/`` holds ``study.json`` (the study, its storage, the training config its
trials start from, the estimators' descriptions), ``summary.json`` (how the last driver ended),
the default Optuna journal ``optuna.journal``, ``runs/<trial>/`` (each trial's run folder) and
three Parquet datasets (folders of part files): ``trials/`` (one row per finished trial),
``metrics/`` (one row per trial and epoch) and ``comparisons/`` (one row per trial, probe
epoch, estimate and layer).

Every Parquet file eqpop writes with pandas (a compare file, a run's ``metrics.parquet``) and
every ``study.json`` also carry the description of each estimator (``with_methods``): its label,
table order, whether it takes beta and N, and its settling cost, so that a report never needs
the code (or the plug-in) that made an estimate.

The bottom layer: it imports nothing from eqpop but the errors and the atomic writes, and no
torch, Ray or Optuna, so that the readers stay light.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from eqpop.errors import ConfigError, UserError
from eqpop.io import atomic_write

# --- a run folder ---------------------------------------------------------------------------
RUN_CONFIG = "config.json"
RUN_METRICS = "metrics.parquet"
CHECKPOINT = "checkpoint.pt"
PREVIOUS = "checkpoint.prev.pt"  # the one before: what resume falls back on
#: what ``eqpop compare`` writes by default, and a report finds in a folder
COMPARE = "compare.parquet"

# --- a study folder -------------------------------------------------------------------------
STUDY_JSON = "study.json"
SUMMARY_JSON = "summary.json"
JOURNAL = "optuna.journal"  # the default Optuna storage
RUNS = "runs"
PBT_DIR = "pbt"  # the checkpoints PBT children start from
TRIALS, METRICS, COMPARISONS, LINEAGE = "trials", "metrics", "comparisons", "lineage"
DATASETS = (TRIALS, METRICS, COMPARISONS, LINEAGE)


def is_run(folder: Path) -> bool:
    return (folder / RUN_METRICS).is_file() and (folder / RUN_CONFIG).is_file()


def run_folder(study: Path, run: int) -> Path:
    """Where a study's trial trains (a retried trial keeps its ``run``)."""
    return study / RUNS / f"{run:05d}"


def write_json(path: Path, values: dict[str, Any]) -> None:
    text = json.dumps(values, indent=1)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_study(folder: Path, described: dict[str, Any]) -> None:
    write_json(folder / STUDY_JSON, described)


def read_study(folder: Path) -> dict[str, Any] | None:
    """What ``study.json`` says (at least the study's ``name``); for a study folder of an eqpop
    from before ``study.json``, its name from the trials and the default journal; None where the
    folder holds no study. One line naming the file when it does not read."""
    path = folder / STUDY_JSON
    if not path.is_file():
        if part_files(folder / TRIALS) and (folder / JOURNAL).is_file():
            trials = pd.read_parquet(folder / TRIALS, columns=["study"])
            return {"name": str(trials.study.iloc[0]), "storage": JOURNAL}
        return None
    try:
        described = json.loads(path.read_text())
    except (ValueError, OSError) as err:
        raise UserError(f"{path}: not JSON ({err})") from None
    if not isinstance(described, dict) or not isinstance(described.get("name"), str):
        raise UserError(f"{path}: names no study")
    return described


def mask_password(url: str) -> str:
    """A storage URL fit to print: ``user:secret@`` becomes ``user:***@``."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def described_storage(storage: str | None) -> str:
    """A study's storage (None: the default journal) as ``study.json`` names it: the default
    journal relative to the study folder (so that a copy of the folder is a study of its own),
    another journal by its absolute path, a database URL with its password masked."""
    if storage is None:
        return JOURNAL
    if "://" in storage:
        return mask_password(storage)
    return str(Path(storage).resolve())


def study_storage(folder: Path, described: dict[str, Any], given: str | None = None) -> str:
    """The storage of the study in ``folder``: ``given`` (``--storage``), else the one its
    ``study.json`` names. A default journal is the folder's own, also for a ``study.json`` of
    an older eqpop that named it by the path the study ran under."""
    url = given or str(described.get("storage", ""))
    if not given and "***" in url:
        raise ConfigError(
            f"{folder}/{STUDY_JSON} names the storage without its password; give it with --storage"
        )
    if "://" in url:
        return url
    path, own = Path(url), folder / JOURNAL
    if not given and path.name == JOURNAL and own.is_file():
        return str(own)
    if not given and not path.is_absolute() and (folder / path).is_file():
        return str(folder / path)
    if not path.is_file():
        hint = "" if given else "; give the study's storage with --storage"
        raise ConfigError(f"storage {url}: no such journal file{hint}")
    return url


# --- the Parquet datasets -------------------------------------------------------------------
def part_files(folder: Path) -> list[Path]:
    """A dataset folder's parts, in name order (hidden temporary files are not parts)."""
    return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []


def unreadable(part: Path) -> str | None:
    """Why a part's footer cannot be read (cut short, overwritten, not Parquet), or None."""
    try:
        pq.read_metadata(part)
    except Exception as err:  # pyarrow's error kinds for damaged bytes vary
        text = str(err).strip().splitlines()
        return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__
    return None


def damaged_parts(folder: Path) -> dict[Path, str]:
    """The parts of a dataset folder whose footer cannot be read, and why."""
    found = {part: unreadable(part) for part in part_files(folder)}
    return {part: why for part, why in found.items() if why is not None}


#: the measurement columns of one comparison row (``eqpop compare``, a study's comparisons)
MEASURES = [
    "method",
    "beta",
    "n_points",
    "layer",
    "measured",
    "cos_rbp",
    "cos_exact",
    "rel_err_exact",
    "grad_cos_rbp",
    "seconds",
    "residual",
    "imag_ratio",
]

#: ``measured``: how a comparison row was measured (Fig. 2 as the paper means it, and what a
#: training step gets)
MEASURED = ("converged", "as_trained")

#: the columns of a compare file (``eqpop compare``): the measurements and what was measured
COMPARE_COLUMNS = [*MEASURES, "net", "dataset", "seed"]

#: the Trainer's per-epoch record, as float columns (integers such as ``epoch`` aside)
METRIC_FIELDS = [
    "train_loss",
    "train_error",
    "val_error",
    "val_top5_error",
    "homeo_loss",
    "residual",
    "lr",
    "symmetry_ratio",
    "homeo_probe",
    "val_error_forward",
    "init_distance",
    "seconds",
    "samples_per_s",
    "imag_ratio",
]


def _fields(names: list[str], kind: pa.DataType) -> list[pa.Field]:
    return [pa.field(n, kind) for n in names]


def trials_schema(params: dict[str, pa.DataType]) -> pa.Schema:
    """``param_<name>`` for every name the search space can suggest, typed as the space says
    (null where a conditional parameter was not drawn)."""
    return pa.schema(
        [
            pa.field("study", pa.string()),
            pa.field("trial", pa.int64()),
            pa.field("state", pa.string()),
            pa.field("value", pa.float64()),
            pa.field("epochs", pa.int64()),
            pa.field("duration_s", pa.float64()),
            pa.field("fail_reason", pa.string()),
            pa.field("retry_of", pa.int64()),
            pa.field("attempt", pa.int64()),
            pa.field("actor", pa.int64()),
            pa.field("member", pa.int64()),
            pa.field("exploited_by", pa.int64()),
            pa.field("started", pa.timestamp("us", tz="UTC")),
            pa.field("finished", pa.timestamp("us", tz="UTC")),
            *[pa.field(f"param_{p}", kind) for p, kind in params.items()],
        ]
    )


def lineage_schema(params: dict[str, pa.DataType]) -> pa.Schema:
    """One row per PBT exploit: the child ``trial`` took ``parent``'s checkpoint (of epoch
    ``epoch``) in place of ``exploited``, slot ``member`` of the population; both scores, and
    the settings before (``parent_param_<name>``) and after (``param_<name>``)."""
    return pa.schema(
        [
            pa.field("study", pa.string()),
            pa.field("trial", pa.int64()),
            pa.field("parent", pa.int64()),
            pa.field("exploited", pa.int64()),
            pa.field("member", pa.int64()),
            pa.field("epoch", pa.int64()),
            pa.field("parent_score", pa.float64()),
            pa.field("exploited_score", pa.float64()),
            *[pa.field(f"parent_param_{p}", kind) for p, kind in params.items()],
            *[pa.field(f"param_{p}", kind) for p, kind in params.items()],
        ]
    )


def metrics_schema(n_layers: int) -> pa.Schema:
    """Per-layer columns ``weight_angle_l<k>`` (k < n_layers - 1: one per feedback pair) and
    ``cos_rbp_l<k>`` (k < n_layers) for the study's deepest net."""
    per_layer = [f"weight_angle_l{k}" for k in range(n_layers - 1)]
    per_layer += [f"cos_rbp_l{k}" for k in range(n_layers)]
    return pa.schema(
        [
            pa.field("study", pa.string()),
            pa.field("trial", pa.int64()),
            pa.field("epoch", pa.int64()),
            pa.field("resumed", pa.bool_()),
            *_fields(METRIC_FIELDS, pa.float64()),
            *_fields(per_layer, pa.float64()),
        ]
    )


def comparisons_schema() -> pa.Schema:
    kinds = {
        "method": pa.string(),
        "beta": pa.float64(),
        "n_points": pa.int64(),
        "layer": pa.int64(),
        "measured": pa.string(),
    }
    return pa.schema(
        [
            pa.field("study", pa.string()),
            pa.field("trial", pa.int64()),
            pa.field("epoch", pa.int64()),
            pa.field("init_ep", pa.bool_()),
            *[pa.field(m, kinds.get(m, pa.float64())) for m in MEASURES],
        ]
    )


def with_methods(frame: pd.DataFrame, described: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """``frame`` with the estimators' descriptions in its attrs, which pandas stores in the
    Parquet file and restores on reading: ``frame.attrs["eqpop"]["methods"]``."""
    frame.attrs["eqpop"] = {"methods": described}
    return frame


def methods_of(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The descriptions a frame read from Parquet carries (empty when it carries none)."""
    return frame.attrs.get("eqpop", {}).get("methods", {})


#: what a method's settling cost may be written with: config field names, numbers, + - * / //
#: and parentheses (reports evaluate it on each trial's config, from files they are pointed at)
_COST = re.compile(r"(?:\s|[A-Za-z_]\w*|\d+(?:\.\d+)?|[-+*/()])+")


def check_cost(expr: str) -> str:
    """``expr`` if it is a plain arithmetic cost expression, else a ``ConfigError``."""
    if not _COST.fullmatch(expr):
        raise ConfigError(f"cost {expr!r}: only config field names, numbers, + - * / and ()")
    return expr
