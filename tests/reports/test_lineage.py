"""PBT lineages from the trials and lineage frames: the chain of trials a network passed through
(a retried child included), each surviving lineage's settings epoch by epoch, the best one's
schedule, and its figure."""

import pandas as pd

from eqpop.reports import figures
from eqpop.reports.lineage import best_schedule, chain, schedules, settings

# member 0: trial 0 (epochs 1-2), replaced by child 4 copying trial 1 at epoch 2, whose run was
# retried as trial 5; member 1: trial 1 all along; trial 2's member replaced by 3 from 1 at 4
TRIALS = pd.DataFrame(
    {
        "study": "s",
        "trial": [0, 1, 2, 3, 4, 5],
        "state": ["PRUNED", "COMPLETE", "PRUNED", "COMPLETE", "FAIL", "COMPLETE"],
        "retry_of": pd.array([None, None, None, None, None, 4], dtype="Int64"),
        "param_method": ["hep", "hep", "classic", "classic", "classic", "classic"],
        "param_n_points": pd.array([4, 6, None, None, None, None], dtype="Int64"),
        "param_lambda_homeo_on": [True, False, True, False, True, True],
        "param_lambda_homeo": [1.0, None, 2.0, None, 1.2, 1.2],
        "param_lr": [0.1, 0.05, 0.02, 0.06, 0.04, 0.04],
    }
)
LINEAGE = pd.DataFrame(
    {"study": "s", "trial": [4, 3], "parent": [1, 1], "exploited": [0, 2], "epoch": [2, 4]}
)


def _metrics() -> pd.DataFrame:
    rows = [(t, e, 0.5 / e + 0.01 * t) for t in (1, 3, 5) for e in range(1, 7)]
    return pd.DataFrame(rows, columns=["trial", "epoch", "val_error"]).assign(study="s")


def test_settings_are_the_config_values_the_trials_trained_with():
    values = settings(TRIALS).set_index("trial")
    assert values.loc[1, "lambda_homeo"] == 0  # its flag was off
    assert values.loc[0, "lambda_homeo"] == 1.0 and values.loc[0, "n_points"] == 4


def test_a_chain_follows_parents_and_retries_back_to_a_first_member():
    assert chain(TRIALS, LINEAGE, 1) == [(1, 1)]
    assert chain(TRIALS, LINEAGE, 3) == [(1, 1), (3, 5)]
    assert chain(TRIALS, LINEAGE, 5) == [(1, 1), (5, 3)]  # the retry of child 4


def test_schedules_and_the_best_lineage_table():
    schedule = schedules(TRIALS, LINEAGE, _metrics())
    assert sorted(set(schedule.lineage)) == [1, 3, 5] and len(schedule) == 18
    five = schedule[schedule.lineage == 5].set_index("epoch")
    assert list(five.segment) == [1, 1, 5, 5, 5, 5]
    assert list(five.lr) == [0.05, 0.05, 0.04, 0.04, 0.04, 0.04]
    best = best_schedule(schedule)  # lineage 1: the lowest last error (0.5 / 6 + 0.01)
    assert (
        list(best.trial) == [1] and list(best.first_epoch) == [1] and list(best.last_epoch) == [6]
    )
    assert figures.lineages(schedule) is not None
    assert figures.lineages(schedules(TRIALS, LINEAGE.iloc[:0], _metrics())) is None
