"""What a study checks before Ray starts: here, the data its trials will train on, with the
one-line errors of ``eqpop train`` (the storage, space, Parquet and journal checks: see
test_storage.py, test_repair.py and test_cli_study.py)."""

from __future__ import annotations

import pytest
from conftest import assert_usage_error
from tiny_study import tiny_study

from eqpop.cli import main
from eqpop.data import DataError
from eqpop.population.execution.preflight import check_data


def test_missing_data_are_one_line_before_ray_starts(tmp_path, capsys):
    """Before: the actor raised, the driver crashed with a 60-line RayTaskError, exit 1, the
    trial left RUNNING."""
    out = tmp_path / "study"
    argv = ["study", "digits", "--set", "dataset=mnist", "--data-dir", "/nonexistent"]
    code = main([*argv, "--out", str(out), "--quiet"])
    assert_usage_error(capsys, code, "/nonexistent", out)


def test_every_data_set_the_space_can_draw_is_checked(tmp_path):
    space = {"dataset": {"choices": ["digits", "mnist"]}}
    spec = tiny_study(tmp_path, space=space, base={"data_dir": str(tmp_path / "none")})
    with pytest.raises(DataError, match="none"):
        check_data(spec)
    check_data(tiny_study(tmp_path))  # digits, bundled: fine
