"""Optuna's parameter importances for the studies of a report (its default evaluator over the
complete trials; PED-ANOVA in Optuna 5). Optuna lives in ``population/``: ``eqpop report``
asks for this table here and hands it to the report, which imports no Optuna itself."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
import pandas as pd

from eqpop.errors import StorageLost, UserError
from eqpop.population.storage.store import open_storage
from eqpop.records import read_study, study_storage

#: the parameters the papers ask about
PARAMS = ("beta", "n_points", "lambda_homeo")


def importances(storage: str, study: str) -> pd.DataFrame:
    """Importance of each searched parameter (those of ``PARAMS`` first) for the validation
    error; empty when the study has too few complete trials to tell."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    loaded = optuna.load_study(study_name=study, storage=open_storage(storage))
    complete = loaded.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return pd.DataFrame(columns=["parameter", "importance"])
    with warnings.catch_warnings():  # "few trials in a regime": the report's note says so
        warnings.simplefilter("ignore")
        scores = optuna.importance.get_param_importances(loaded)
    rows = sorted(scores.items(), key=lambda kv: (kv[0] not in PARAMS, -kv[1]))
    return pd.DataFrame(rows, columns=["parameter", "importance"])


def study_importances(paths: list[Path], warn: Callable[[str], None]) -> pd.DataFrame:
    """The importances of every study folder among ``paths`` whose storage can be opened from
    here (a journal file, or a URL without a masked password), with a ``study`` column; a
    study whose storage cannot say is left out, with one ``warn`` line naming why."""
    frames = []
    for root in paths:
        try:
            described = read_study(root)
            if described is None:
                continue
            name = described["name"]
            storage = study_storage(root, described)
            frames.append(importances(storage, name).assign(study=name))
        except (UserError, StorageLost) as err:
            warn(f"{root}: no parameter importances: {err}")
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
