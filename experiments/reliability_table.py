"""The bad-input table of docs/reliability.md: each input through the real CLI, its one-line
message and exit code, and whether anything was written.

    python experiments/reliability_table.py
"""

from __future__ import annotations

import contextlib
import io
import pickle
import tempfile
from pathlib import Path

from eqpop.cli import main


def _files(root: Path) -> dict[str, Path]:
    """Bad files a user might hand over."""
    (root / "mnist").mkdir()
    header = b"\x00\x00\x08\x03" + (4).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    labels = b"\x00\x00\x08\x01" + (4).to_bytes(4, "big") + bytes(4)
    for prefix in ("train", "t10k"):
        (root / "mnist" / f"{prefix}-images-idx3-ubyte").write_bytes(header + bytes(4 * 784))
        (root / "mnist" / f"{prefix}-labels-idx1-ubyte").write_bytes(labels)
    # a download cut short: the header promises 4 images, half of the bytes are there
    (root / "mnist" / "train-images-idx3-ubyte").write_bytes(header + bytes(2 * 784))
    (root / "cifar" / "cifar-10-batches-py").mkdir(parents=True)

    class RunsCode:
        def __reduce__(self):
            return (print, ("this must never print",))

    batch = root / "cifar" / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(pickle.dumps(RunsCode()))
    (root / "bad.yaml").write_text("name: [unclosed\n")
    (root / "bad.toml").write_bytes(b"\x80\x81 not utf-8")
    return {
        "mnist": root / "mnist",
        "cifar": root / "cifar",
        "yaml": root / "bad.yaml",
        "toml": root / "bad.toml",
    }


def cases(f: dict[str, Path]) -> list[tuple[str, list[str]]]:
    t = ["train", "--preset", "digits-mlp", "--quiet"]
    s = ["study", "--quiet"]
    return [
        ("unknown method", [*t, "--method", "foo"]),
        ("unknown preset", ["train", "--preset", "nope"]),
        ("unknown data set", [*t, "--dataset", "foo"]),
        ("unknown net", [*t, "--net", "transformer"]),
        ("hEP on a net that is not holomorphic", [*t, "--net", "clipped"]),
        ("hep with N < 2", [*t, "--n-points", "1"]),
        ("beta = 0", [*t, "--beta", "0"]),
        ("beta not finite", [*t, "--beta", "inf"]),
        ("zero steps", [*t, "--set", "t_free=0"]),
        ("zero epochs", [*t, "--epochs", "0"]),
        ("zero batch size", [*t, "--batch-size", "0"]),
        ("lambda_homeo < 0", [*t, "--lambda-homeo", "-1"]),
        ("unknown --set key", [*t, "--set", "colour=blue"]),
        ("anderson without a tolerance", [*t, "--set", "solver=anderson"]),
        ("--set without '='", [*t, "--set", "t_free"]),
        ("config file not UTF-8", [*t, "--config", str(f["toml"])]),
        ("zero actors", [*s, "--actors", "0"]),
        ("zero trials", [*s, "--trials", "0"]),
        ("study name with '..'", [*s, "--name", "../../etc"]),
        ("study name with '/'", [*s, "--name", "a/b"]),
        ("malformed study file", ["study", str(f["yaml"])]),
        ("unknown built-in study", ["study", "mnist-of-doom"]),
        ("--resume of no study", [*s, "--resume", "--name", "never-ran"]),
        ("data set needing --data-dir", ["study", "cifar10"]),
        ("truncated IDX file", [*t, "--dataset", "mnist", "--data-dir", str(f["mnist"])]),
        ("pickle that runs code", [*t, "--dataset", "cifar10", "--data-dir", str(f["cifar"])]),
        ("compare: N < 2", ["compare", "--n-points", "1,2", "--quiet"]),
        ("report of an empty folder", ["report", str(f["mnist"].parent / "nothing")]),
    ]


def main_table() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = _files(root)
        (root / "nothing").mkdir()
        print("| bad input | command | message (stderr) | exit | written |")
        print("|---|---|---|---|---|")
        for what, argv in cases(files):
            out = root / "out"
            argv = [*argv, "--out", str(out)]
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(argv)
            shown = " ".join(a if not a.startswith(tmp) else Path(a).name for a in argv[:-2])
            msg = err.getvalue().strip().replace(tmp + "/", "").replace("|", "\\|")
            written = "nothing" if not out.exists() else "OUTPUT WRITTEN"
            print(f"| {what} | `eqpop {shown}` | {msg} | {code} | {written} |")


if __name__ == "__main__":
    main_table()
