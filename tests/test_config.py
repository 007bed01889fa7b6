import pytest

from eqpop.config import ConfigError, build_config, parse_override, read_config_file
from eqpop.presets import PRESETS, preset


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_a_valid_config(name, tmp_path):
    values = preset(name)
    if values["dataset"] not in ("digits", "synthetic"):
        values["data_dir"] = tmp_path
    cfg = build_config(**values)
    if cfg.lr_scales is not None:
        assert len(cfg.lr_scales) == cfg.n_layers + 1


@pytest.mark.parametrize(
    "name", ["fmnist-mlp", "fmnist-homeostasis", "fmnist-output-feedback", "fmnist-pcn"]
)
def test_fashion_mnist_presets_draw_and_feed_as_the_papers_code(name):
    cfg = build_config(**preset(name), data_dir=".")
    assert (cfg.init, cfg.inputs, cfg.hidden, cfg.batch_size) == (
        "lecun_normal",
        "unit",
        [256, 256],
        50,
    )


def test_a_negative_beta_is_a_direction_for_classic_and_a_radius_for_the_others():
    assert build_config(method="classic", beta=-0.5).beta == -0.5
    assert build_config(method="hep", beta=-0.5).beta == -0.5  # hEP reads |beta|


def test_paper_conv_scales_are_one_per_layer_plus_readout():
    cfg = build_config(**preset("cifar10-conv"), data_dir=".")
    assert cfg.n_layers == 4 and cfg.lr_scales == [25, 15, 10, 8, 5]


@pytest.mark.parametrize(
    "values, field",
    [
        ({"method": "bptt"}, "method: got 'bptt'"),
        ({"beta": float("inf")}, "beta"),
        ({"beta": 0.0}, "beta: must be non-zero"),
        ({"init": "xavier"}, "init: got 'xavier'"),
        ({"inputs": "centre"}, "inputs: got 'centre'"),
        ({"train_subset": 0}, "train_subset"),
        ({"sample": "middle"}, "sample: got 'middle'"),
        ({"hidden": []}, "hidden"),
        ({"symmetric": True, "asymmetry_angle": 3.0}, "asymmetry_angle"),
        ({"feedback_scale": "own"}, "feedback_scale: needs asymmetry_angle"),
        ({"feedback_scale": "fan_in", "asymmetry_angle": 90.0}, "feedback_scale: got 'fan_in'"),
        ({"init_ep": True, "method": "hep_continuous"}, "init_ep"),
        ({"net": "clipped", "method": "hep"}, "is not holomorphic"),
        ({"net": "clipped", "method": "hep_continuous"}, "is not holomorphic"),
        ({"init_ep_optimizer": "rmsprop"}, "init_ep_optimizer"),
        ({"colour": 1}, "colour: unknown field"),
    ],
)
def test_errors_are_one_line_naming_the_field(values, field):
    with pytest.raises(ConfigError) as err:
        build_config(**values)
    assert field in str(err.value) and "\n" not in str(err.value)


def test_overrides_are_typed():
    assert parse_override("hidden=[3, 4]") == ("hidden", [3, 4])
    assert parse_override("lr=1e-3") == ("lr", 1e-3)
    assert parse_override("init-ep=true") == ("init_ep", True)
    assert parse_override("data_dir=/x/y") == ("data_dir", "/x/y")
    with pytest.raises(ConfigError, match="unknown field"):
        parse_override("colour=red")


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="missing"):
        read_config_file(tmp_path / "none.toml")
    bad = tmp_path / "c.json"
    bad.write_text("{}")
    with pytest.raises(ConfigError, match="must end in"):
        read_config_file(bad)
    listy = tmp_path / "c.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        read_config_file(listy)
