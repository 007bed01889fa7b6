"""Optuna's parameter importances for a study (its default evaluator over the complete
trials; PED-ANOVA in Optuna 5)."""

from __future__ import annotations

import warnings

import optuna
import pandas as pd

from eqpop.population.driver import open_storage

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
