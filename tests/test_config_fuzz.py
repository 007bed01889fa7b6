"""The config and study parsers fed random text and values (hypothesis): a valid config, or a
ConfigError of one line naming a field; never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from eqpop.config import ConfigError, TrainConfig, build_config, parse_override, read_config_file
from eqpop.population.definition.spec import StudyConfig, build_study

FIELDS = sorted(TrainConfig.model_fields)
values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _one_line(err: ConfigError) -> None:
    text = str(err)
    assert text and "\n" not in text


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), values, max_size=4))
def test_build_config_gives_a_config_or_one_line(fields):
    try:
        cfg = build_config(**fields)
    except ConfigError as err:
        _one_line(err)
    else:
        assert cfg.beta > 0 and cfg.t_free >= 1 and cfg.epochs >= 1


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40) | st.builds("{}\n={}".format, st.text(max_size=5), st.text(max_size=5)))
def test_set_overrides_parse_or_refuse(text):
    try:
        key, _ = parse_override(text)
    except ConfigError as err:
        _one_line(err)
    else:
        assert key in TrainConfig.model_fields


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([".toml", ".yaml"]))
def test_config_files_of_random_bytes(data, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"c{suffix}"
        path.write_bytes(data)
        try:
            fields = read_config_file(path)
        except ConfigError as err:
            _one_line(err)
            assert path.name in str(err)
        else:
            assert isinstance(fields, dict)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(sorted(StudyConfig.model_fields)) | st.text(max_size=6), values, max_size=4
    )
)
def test_study_specs_validate_or_refuse(fields):
    try:
        spec = build_study(**{"name": "s", **fields})
    except ConfigError as err:
        _one_line(err)
    else:
        assert spec.trials >= 1 and spec.actors >= 1 and "/" not in spec.name
