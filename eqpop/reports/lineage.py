"""Population-based training's lineages, from a study's ``trials`` and ``lineage`` datasets
(pandas only): which trials a member's network passed through and from which epoch each one's
settings held (``chain``), every surviving lineage's settings and validation error epoch by
epoch (``schedules``) and the best one's schedule (``best_schedule``).

A child trial's metrics start with the epochs it inherited (``resumed``), so the last trial of a
lineage holds its whole validation curve.
"""

from __future__ import annotations

import pandas as pd

#: the settings a lineage's figure draws, where the study searched them
DRAWN = ("beta", "n_points", "lambda_homeo", "lr", "method")


def settings(trials: pd.DataFrame) -> pd.DataFrame:
    """Each trial's searched settings as config values (by ``study``, ``trial``): a field
    whose ``<name>_on`` flag is off is 0, as the trial trained with it."""
    params = [c for c in trials.columns if c.startswith("param_") and not c.endswith("_on")]
    out = trials[["study", "trial"]].copy()
    for col in params:
        value = trials[col].astype(object)
        flag = f"{col}_on"
        if flag in trials:
            value = value.where(trials[flag].astype("boolean").fillna(True), 0.0)
        out[col[len("param_") :]] = value
    return out


def _first_attempt(trials: pd.DataFrame, trial: int) -> int:
    """A retried trial's lineage is the one of the trial it re-ran."""
    retry_of = trials.set_index("trial")["retry_of"] if "retry_of" in trials else pd.Series()
    while trial in retry_of.index and pd.notna(retry_of.get(trial)):
        trial = int(retry_of[trial])
    return trial


def chain(trials: pd.DataFrame, lineage: pd.DataFrame, trial: int) -> list[tuple[int, int]]:
    """``(trial, first epoch)`` of every segment of the lineage ending in ``trial`` (one
    study's frames), root first: the trial whose settings held from that epoch on (the first
    ``first epoch`` is 1)."""
    found: list[tuple[int, int]] = []
    by_child = lineage.set_index("trial") if len(lineage) else pd.DataFrame()
    while True:
        original = _first_attempt(trials, trial)
        if original not in by_child.index:
            found.append((trial, 1))
            return found[::-1]
        row = by_child.loc[original]
        found.append((trial, int(row["epoch"]) + 1))
        trial = int(row["parent"])


def schedules(trials: pd.DataFrame, lineage: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Every surviving lineage (a complete trial of a study that has lineage rows), epoch by
    epoch: ``study``, ``lineage`` (its last trial), ``epoch``, ``segment`` (the trial whose
    settings trained that epoch), ``val_error`` and the settings."""
    if not len(lineage):
        return pd.DataFrame()
    values = settings(trials).set_index(["study", "trial"])
    rows = []
    for study, group in trials[trials.study.isin(set(lineage.study))].groupby("study"):
        mine = lineage[lineage.study == study]
        curves = metrics[metrics.study == study]
        for last in group[group.state == "COMPLETE"].trial:
            segments = chain(group, mine, int(last))
            starts = [start for _, start in segments]
            curve = curves[curves.trial == last].sort_values("epoch")
            for epoch, error in zip(curve.epoch, curve.val_error):
                k = max(i for i, start in enumerate(starts) if start <= epoch)
                segment = segments[k][0]
                found = values.loc[(study, segment)].to_dict()
                rows.append(
                    {
                        "study": study,
                        "lineage": int(last),
                        "epoch": int(epoch),
                        "segment": segment,
                        "val_error": error,
                        **found,
                    }
                )
    return pd.DataFrame(rows)


def best_schedule(schedule: pd.DataFrame) -> pd.DataFrame:
    """The schedule of each study's best surviving lineage (lowest last validation error): one
    row per segment, the epochs it trained and its settings."""
    if not len(schedule):
        return pd.DataFrame()
    last = schedule.sort_values("epoch").groupby(["study", "lineage"]).tail(1)
    best = last.loc[last.groupby("study").val_error.idxmin(), ["study", "lineage"]]
    keep = schedule.merge(best, on=["study", "lineage"])
    keys = ("study", "lineage", "epoch", "segment", "val_error")
    fields = [c for c in keep.columns if c not in keys]
    spans = keep.groupby(["study", "lineage", "segment"], sort=False).agg(
        first_epoch=("epoch", "min"), last_epoch=("epoch", "max"), val_error=("val_error", "last")
    )
    settled = keep.groupby(["study", "lineage", "segment"], sort=False)[fields].first()
    table = spans.join(settled).reset_index().sort_values(["study", "first_epoch"])
    table["val_error"] = 100 * table["val_error"]
    return table.rename(columns={"segment": "trial", "val_error": "val error % (segment end)"})
