"""The cluster-launcher configs validate against Ray's own cluster-config schema."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

CONFIGS = sorted((Path(__file__).parents[2] / "cluster").glob("*.yaml"))


def test_there_is_a_cloud_and_an_on_premise_config():
    providers = {yaml.safe_load(p.read_text())["provider"]["type"] for p in CONFIGS}
    assert {"aws", "local"} <= providers


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_matches_rays_schema(path):
    schema = json.loads((resources.files("ray") / "autoscaler" / "ray-schema.json").read_text())
    config = yaml.safe_load(path.read_text())
    jsonschema.validate(config, schema)
    setup = " ".join(config["setup_commands"])
    assert "pip install" in setup and "~/eqpop" in setup  # every node installs eqpop
    assert config["file_mounts"]["~/eqpop"] == "."


def test_schema_check_catches_a_broken_config():
    schema = json.loads((resources.files("ray") / "autoscaler" / "ray-schema.json").read_text())
    config = yaml.safe_load(CONFIGS[0].read_text())
    config["max_workers"] = "many"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, schema)
