"""A grid study (``sampler: grid``): the papers' tables as study files. Every cell runs once
(concurrent actors never take one twice), a conditional field is left out where its ``when``
fails, and ``eqpop report`` draws the table from the trials."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest
import yaml
from tiny_study import study_command, tiny_study

from eqpop.cli import main
from eqpop.errors import ConfigError
from eqpop.population.definition.spec import build_study
from eqpop.population.execution.driver import run_study

TABLE = {"method": {"choices": ["classic", "hep"]}, "beta": {"choices": [0.1, 0.5]}}


def grid_study(tmp_path, **kw):
    """The tiny study as a grid over ``TABLE``, its size and pruner left to the grid."""
    values = tiny_study(tmp_path).model_dump(exclude={"trials", "pruner", "space"})
    return build_study(**{**values, "sampler": "grid", "space": TABLE, **kw})


def test_a_grids_cells_cross_the_space_with_the_cells_honouring_when(tmp_path):
    spec = grid_study(
        tmp_path,
        cells=[{"method": "rbp"}, {"method": "hep", "lr": 0.05}],
        space={
            "beta": {"choices": [0.1, 0.5], "when": {"method": ["hep"]}},
            "seed": {"choices": [0, 1]},
        },
    )
    assert spec.grid() == [
        {"method": "rbp", "seed": 0},
        {"method": "rbp", "seed": 1},
        {"method": "hep", "lr": 0.05, "beta": 0.1, "seed": 0},
        {"method": "hep", "lr": 0.05, "beta": 0.1, "seed": 1},
        {"method": "hep", "lr": 0.05, "beta": 0.5, "seed": 0},
        {"method": "hep", "lr": 0.05, "beta": 0.5, "seed": 1},
    ]
    assert spec.trials == 6 and spec.pruner == "none"  # the grid's size; every cell to the end
    assert set(spec.param_types()) == {"method", "lr", "beta", "seed"}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"space": {"lr": {"low": 0.01, "high": 0.1}}}, "space.lr: a grid needs choices"),
        ({"trials": 5}, "trials: the grid has 4 cells, got 5"),
        ({"cells": [{"method": "hep"}]}, "cells: method is in the space too"),
        ({"cells": [{"colour": 1}]}, "cells.colour: not a training config field"),
        ({"sampler": "tpe", "cells": [{"lr": 0.1}]}, "cells: only a grid"),
        ({"cells": [{"method": "bptt"}], "space": {}}, "method"),
    ],
)
def test_a_bad_grid_is_one_line(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        grid_study(tmp_path, **change)


def test_a_2x2_grid_study_runs_every_cell_once_and_reports_the_table(ray_address, tmp_path):
    base = {**tiny_study(tmp_path).base, "epochs": 1}
    spec = grid_study(tmp_path, actors=2, base=base)
    path = tmp_path / "table.yaml"
    values = spec.model_dump(mode="json", exclude={"out", "address", "trials", "pruner"})
    path.write_text(yaml.safe_dump(values))
    cmd = study_command(path, spec.out, ray_address)
    for _ in range(2):  # the second run finds every cell done and trains nothing
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    trials = pd.read_parquet(spec.out / "trials")
    assert len(trials) == 4 and set(trials.state) == {"COMPLETE"}
    cells = set(zip(trials.param_method, trials.param_beta))
    assert cells == {("classic", 0.1), ("classic", 0.5), ("hep", 0.1), ("hep", 0.5)}
    assert main(["report", str(spec.out), "--out", str(tmp_path / "report")]) == 0
    table = pd.read_csv(tmp_path / "report" / "table1.csv", index_col=0)
    assert list(table.columns) == ["0.1", "0.5"]
    assert len(table) == 2 and table.map(lambda cell: "(n=1)" in cell).all().all()
    cells = pd.read_csv(tmp_path / "report" / "cells.csv", index_col=0)
    assert list(cells.method) == ["classic", "classic", "hep", "hep"]  # N is not a setting here
    assert list(cells.beta) == [0.1, 0.5, 0.1, 0.5]
    assert cells["val error %"].str.endswith("(n=1)").all()


def test_a_grid_that_does_not_search_the_method_has_its_cells_table(ray_address, tmp_path):
    """Fig. 4's grid (homeostasis strength by seed) searches no method. Before: its cells.md
    said "(no rows)", as the tables found no ``param_method`` to label the trials by."""
    base = {**tiny_study(tmp_path).base, "epochs": 1, "method": "rbp"}
    space = {"lambda_homeo": {"choices": [0.0, 1.0]}, "seed": {"choices": [0]}}
    spec = grid_study(tmp_path, actors=2, base=base, space=space)
    assert run_study(spec, progress=False).counts == {"COMPLETE": 2}
    assert main(["report", str(spec.out), "--out", str(tmp_path / "report")]) == 0
    cells = pd.read_csv(tmp_path / "report" / "cells.csv", index_col=0)
    assert list(cells.method) == ["rbp", "rbp"] and list(cells.lambda_homeo) == [0, 1]
    assert cells["symmetry ratio"].str.endswith("(n=1)").all()


def test_a_cell_field_given_as_1_and_0_5_is_one_float_column(tmp_path):
    spec = grid_study(tmp_path, cells=[{"lr": 1}, {"lr": 0.5}], space={})
    assert str(spec.param_types()["lr"]) == "double"  # was string: ints and floats mixed
