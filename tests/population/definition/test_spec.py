"""Study specs: validated before anything runs; the search space drawn as the papers do."""

from __future__ import annotations

import optuna
import pyarrow as pa
import pytest
from tiny_study import tiny_study

from eqpop.config import ConfigError
from eqpop.population.definition.builtin import BUILTIN
from eqpop.population.definition.spec import build_study

SPACE = {
    "method": {"choices": ["classic", "hep"]},
    "n_points": {"choices": [2, 4, 6, 8], "when": {"method": ["hep"]}},
    "lambda_homeo": {"low": 0.1, "high": 20.0, "log": True, "zero_or": True},
}


def test_draw_honours_when_and_zero_or():
    spec = build_study(name="s", preset="digits-mlp", space=SPACE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = []
    for _ in range(40):
        drawn = spec.draw(study.ask())
        assert ("n_points" in drawn) == (drawn["method"] == "hep")
        assert drawn["lambda_homeo"] == 0 or 0.1 <= drawn["lambda_homeo"] <= 20
        seen.append(drawn)
        spec.train_config(drawn)  # every draw is a valid run
    assert any(d["lambda_homeo"] == 0 for d in seen) and any(d["lambda_homeo"] > 0 for d in seen)
    assert spec.param_types() == {
        "method": pa.string(),
        "n_points": pa.int64(),
        "lambda_homeo_on": pa.bool_(),
        "lambda_homeo": pa.float64(),
    }


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_builtin_study_is_valid_given_its_data(name, tmp_path):
    values = {"name": name, **BUILTIN[name]}
    values["base"] = {**values.get("base", {}), "data_dir": tmp_path}
    spec = build_study(**values)
    assert spec.space
    if spec.schedule == "pbt":  # its budget is its population, each member a whole run
        assert spec.pbt.population >= 4 and spec.pruner == "none"
    else:
        assert spec.trials >= 12


@pytest.mark.parametrize(
    "values, field",
    [
        (dict(name="../evil"), "name"),
        (dict(name="a/b"), "name"),
        (dict(name="ok", trials=0), "trials"),
        (dict(name="ok", actors=0), "actors"),
        (dict(name="ok", preset="nope"), "preset"),
        (dict(name="ok", space={"nope": {"choices": [1]}}), "space.nope"),
        (dict(name="ok", space={"beta": {"low": 0, "high": 1, "log": True}}), "space.beta"),
        (dict(name="ok", space={"beta": {"low": 1}}), "space.beta"),
        (dict(name="ok", base={"beta": 0}), "beta"),
        (dict(name="ok", pruner="sometimes"), "pruner"),
        (dict(name="ok", space=SPACE, schedule="pbt", pbt={"perturbation_interval": 0}), "pbt"),
        (dict(name="ok", space=SPACE, schedule="pbt", pbt={"quantile_fraction": 0.6}), "pbt"),
        (dict(name="ok", space=SPACE, schedule="pbt", pbt={"quantile_fraction": 0}), "pbt"),
        (dict(name="ok", space=SPACE, schedule="pbt", pbt={"population": 1}), "pbt"),
        (dict(name="ok", space=SPACE, schedule="pbt", pbt={"mutations": ["lr"]}), "pbt.mutations"),
        (
            dict(name="ok", space={"hidden": {"choices": [8]}, **SPACE}, schedule="pbt"),
            "pbt.mutations: hidden cannot change during training",
        ),
        (dict(name="ok", space={"seed": {"choices": [0, 1]}}, schedule="pbt"), "pbt.mutations"),
        (dict(name="ok", space={"lr": {"choices": [0.1]}}, schedule="pbt", sampler="grid"), "tpe"),
        (dict(name="ok", pbt={"population": 4}), "pbt: needs schedule: pbt"),
        (dict(name="ok", probe={"n_points": [1]}), "probe.n_points"),
        (dict(name="ok", unknown=1), "unknown"),
    ],
)
def test_bad_values_name_the_field(values, field):
    with pytest.raises(ConfigError) as err:
        build_study(**values)
    assert field in str(err.value) and "\n" not in str(err.value)


def test_default_folder_and_storage(tmp_path):
    spec = build_study(name="s1")
    assert str(spec.out) == "reports/s1" and spec.storage_url == "reports/s1/optuna.journal"
    assert tiny_study(tmp_path).storage_url == str(tmp_path / "study" / "optuna.journal")
