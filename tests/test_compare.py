"""`eqpop compare` end to end: real settling, real Parquet written and read back."""

import pandas as pd
import pytest
from conftest import assert_usage_error

from eqpop.cli import main
from eqpop.records import COMPARE_COLUMNS as COLUMNS

FAST = [
    "--batch",
    "8",
    "--t-free",
    "60",
    "--t-nudge",
    "40",
    "--periods",
    "1",
    "--steps-per-point",
    "10",
    "--quiet",
]


def test_compare_writes_one_row_per_method_beta_n_layer(tmp_path):
    out = tmp_path / "c.parquet"
    code = main(["compare", "--betas", "0.05,0.5", "--n-points", "2,4", "--out", str(out), *FAST])
    assert code == 0
    frame = pd.read_parquet(out)
    assert list(frame.columns) == COLUMNS
    # rbp + exact, then per beta: classic + 2 hep + 2 hep_continuous; 3 layers each
    assert len(frame) == 2 * (2 + 2 * 5) * 3  # converged and as trained
    rbp = frame[frame.method == "rbp"]
    assert (rbp.cos_rbp > 0.999999).all() and (rbp.grad_cos_rbp > 0.999999).all()
    exact = frame[frame.method == "exact"]
    assert (exact.rel_err_exact < 1e-12).all()
    hep = frame[(frame.method == "hep") & (frame.beta == 0.5)].groupby("n_points").rel_err_exact
    assert hep.max()[4] < hep.max()[2]
    assert frame.n_points.dtype == "Int64" and set(frame.net) == {"mlp"}
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize("net", ["conv", "pcn", "output-feedback", "clipped"])
def test_compare_runs_every_architecture(tmp_path, net):
    """Every estimator the net can take: no complex nudge on the clipped net."""
    out = tmp_path / f"{net}.parquet"
    hidden = ["--hidden", "4,6"] if net == "conv" else ["--hidden", "16"]
    assert (
        main(
            [
                "compare",
                "--net",
                net,
                *hidden,
                "--betas",
                "0.1",
                "--n-points",
                "2",
                "--out",
                str(out),
                *FAST,
            ]
        )
        == 0
    )
    real = {"rbp", "exact", "classic"}
    complex_nudged = set() if net == "clipped" else {"hep", "hep_continuous"}
    assert set(pd.read_parquet(out).method) == real | complex_nudged


@pytest.mark.parametrize(
    "args, field",
    [
        (["--betas", "0.1,-1"], "betas"),
        (["--betas", "nan"], "betas"),
        (["--n-points", "1"], "n_points"),
        (["--batch", "0"], "batch"),
        (["--batch", "100000"], "batch"),
        (["--net", "resnet"], "--net"),
        (["--betas", "a,b"], "--betas"),
        (["--symmetric", "--asymmetry-angle", "10"], "--asymmetry-angle"),
        (["--out", "x.csv"], "out"),
    ],
)
def test_bad_arguments_give_one_line_exit_2_and_no_file(tmp_path, capsys, args, field):
    out = tmp_path / "sub" / "c.parquet"
    code = main(["compare", "--out", str(out), *FAST, *args])
    assert_usage_error(capsys, code, field, tmp_path / "sub")


def test_converged_and_as_trained_each_have_their_own_truth(tmp_path):
    """Fig. 2 as the paper means it. Converged (nudged phases and the exact derivative run 10 x
    t_free steps): hEP approaches the exact derivative as N grows and beats classic at every
    |beta|. As trained (5 nudged steps): each estimate is compared with the exact derivative
    through the same 5 steps, which a tiny nudge reaches, not with the converged one."""
    out = tmp_path / "m.parquet"
    fast = ["--batch", "8", "--t-free", "60", "--periods", "1", "--steps-per-point", "10"]
    args = ["--betas", "0.001,0.1,0.5", "--n-points", "2,4", "--t-nudge", "5", "--quiet"]
    assert main(["compare", *fast, *args, "--out", str(out)]) == 0
    frame = pd.read_parquet(out)
    converged, trained = (frame[frame.measured == m] for m in ("converged", "as_trained"))
    assert len(converged) == len(trained) == len(frame) // 2

    def cosine(rows, method, beta, n=None):
        picked = rows[(rows.method == method) & (rows.beta == beta)]
        return picked[picked.n_points == n] if n else picked

    assert cosine(converged, "hep", 0.1, 4).cos_exact.min() >= 0.99
    for beta in (0.001, 0.1, 0.5):
        hep = cosine(converged, "hep", beta, 4).cos_exact.mean()
        assert hep > cosine(converged, "classic", beta).cos_exact.mean()
    assert cosine(trained, "hep", 0.001, 2).rel_err_exact.max() < 1e-3
    exact = {
        m: rows[rows.method == "exact"].cos_rbp.to_numpy() for m, rows in frame.groupby("measured")
    }
    assert abs(exact["as_trained"] - exact["converged"]).max() > 1e-3  # 2.5e-3 after 5 steps
    # hep_continuous has no free or nudged phase to shorten: one estimate, in both measurements
    cont = [rows[rows.method == "hep_continuous"] for rows in (converged, trained)]
    assert cont[0].grad_cos_rbp.tolist() == cont[1].grad_cos_rbp.tolist()
    assert cont[0].seconds.tolist() == cont[1].seconds.tolist()
