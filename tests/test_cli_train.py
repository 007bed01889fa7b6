"""`eqpop train`: config from preset, file, flags and --set; bad input is one line, exit 2,
nothing written; a finished run resumes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import assert_usage_error

from eqpop.cli import main

FAST = [
    "--set",
    "hidden=[12]",
    "--set",
    "t_free=8",
    "--set",
    "t_nudge=4",
    "--set",
    "probe_batch=8",
    "--batch-size",
    "256",
    "--quiet",
]


def test_train_from_preset_with_overrides_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--preset", "digits-mlp", "--epochs", "1", "--out", str(out), *FAST]
    assert main(argv) == 0
    frame = pd.read_parquet(out / "metrics.parquet")
    assert len(frame) == 1 and (out / "config.json").is_file()
    assert main(argv) == 2  # the run exists: refuse to overwrite it
    assert "--resume" in capsys.readouterr().err
    argv[argv.index("1")] = "2"
    assert main([*argv, "--resume"]) == 0
    assert list(pd.read_parquet(out / "metrics.parquet").epoch) == [1, 2]


@pytest.mark.parametrize(
    "suffix, text",
    [
        (".toml", 'method = "classic"\nbeta = 0.2\nhidden = [10]\n'),
        (".yaml", "method: classic\nbeta: 0.2\nhidden: [10]\n"),
    ],
)
def test_config_files(tmp_path, suffix, text):
    cfg = tmp_path / f"c{suffix}"
    cfg.write_text(text)
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--epochs", "1", "--out", str(out), *FAST]) == 0
    saved = (out / "config.json").read_text()
    assert '"method": "classic"' in saved and '"beta": 0.2' in saved


@pytest.mark.parametrize(
    "args, field",
    [
        (["--method", "bptt"], "method"),
        (["--n-points", "1"], "n_points"),
        (["--beta", "0"], "beta"),
        (["--beta", "nan"], "beta"),
        (["--epochs", "0"], "epochs"),
        (["--batch-size", "0"], "batch_size"),
        (["--lambda-homeo", "-0.1"], "lambda_homeo"),
        (["--set", "t_free=0"], "t_free"),
        (["--set", "colour=blue"], "colour"),
        (["--set", "novalue"], "key=value"),
        (["--preset", "nope"], "preset"),
        (["--dataset", "cifar10"], "data_dir"),
        (["--dataset", "mnist", "--data-dir", "/nonexistent"], "/nonexistent"),
        (["--set", "lr_scales=[1,2]"], "lr_scales"),
        (["--net", "resnet"], "net"),
    ],
)
def test_bad_values_one_line_exit_2_nothing_written(tmp_path, capsys, args, field):
    out = tmp_path / "run"
    code = main(["train", "--out", str(out), "--quiet", *args])
    assert_usage_error(capsys, code, field, out)


def test_malformed_config_file(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("method = = 3")
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert "bad.toml" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_diverging_run_is_one_line_exit_1_and_keeps_its_records(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--preset",
            "digits-mlp",
            "--method",
            "rbp",
            "--lr",
            "1e38",
            "--epochs",
            "3",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "diverged" in err
    assert (out / "config.json").is_file() or not (out / "metrics.parquet").exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_training_in_one_line_keeping_the_finished_epochs(tmp_path, signum):
    """Before: SIGINT gave a traceback, SIGTERM ended the run without a word. Now: one line,
    128 + the signal's number, the finished epochs on disk, and --resume continues."""
    out = tmp_path / "run"
    argv = ["train", "--preset", "digits-mlp", "--out", str(out), *FAST]
    cmd = [sys.executable, "-m", "eqpop.cli", *argv, "--epochs", "200"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "metrics.parquet").exists():
        time.sleep(0.1)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum
    line = err.strip()
    assert len(line.splitlines()) == 1, line
    assert f"interrupted ({signal.Signals(signum).name})" in line and "--resume" in line
    kept = list(pd.read_parquet(out / "metrics.parquet").epoch)
    assert kept == list(range(1, len(kept) + 1)) and f"{len(kept)} epochs kept" in line
    assert main([*argv, "--epochs", str(len(kept) + 1), "--resume"]) == 0
    assert list(pd.read_parquet(out / "metrics.parquet").epoch) == [*kept, len(kept) + 1]


def test_a_valueerror_inside_a_step_is_a_bug_not_a_usage_error(tmp_path, monkeypatch, capsys):
    """Before: every ValueError was one line and exit 2, so a fault of eqpop or a library (here
    numpy's, raised inside the free phase) looked like a mistake of the user's and lost its
    traceback. Now it propagates: ``python -m eqpop`` prints it and exits 1."""
    import numpy as np

    import eqpop.train.step

    def broken_settle(*args, **kwargs):
        return np.ones(3) + np.ones(4)  # ValueError: operands could not be broadcast

    monkeypatch.setattr(eqpop.train.step, "settle", broken_settle)
    argv = ["train", "--preset", "digits-mlp", "--epochs", "1", "--out", str(tmp_path / "r")]
    with pytest.raises(ValueError, match="could not be broadcast"):
        main([*argv, *FAST])
    assert "error:" not in capsys.readouterr().err
