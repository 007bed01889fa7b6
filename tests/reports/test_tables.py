"""Table layouts on hand-made trial rows: the numbers land in the right cells."""

from __future__ import annotations

import pandas as pd

from eqpop.reports import tables


def _trials() -> pd.DataFrame:
    rows = [
        ("classic", None, 0.5, 0.10),
        ("classic", None, 0.5, 0.14),
        ("hep", 4, 0.5, 0.05),
        ("hep", 2, 0.05, 0.07),
        ("rbp", None, None, 0.04),
        ("hep", 4, 0.5, 0.90),
    ]
    frame = pd.DataFrame(rows, columns=["param_method", "param_n_points", "param_beta", "value"])
    frame["param_n_points"] = frame.param_n_points.astype("Int64")
    frame["state"] = ["COMPLETE"] * 5 + ["PRUNED"]
    return frame.assign(study="s", trial=range(6), epochs=3, duration_s=1.0)


def test_table1_rows_methods_columns_beta_mean_std():
    t = tables.table1(_trials())
    assert list(t.index) == ["classic", "hep N=2", "hep N=4", "rbp"]
    assert t.loc["classic", "0.5"] == "12.00 ± 2.83 (n=2)"
    assert t.loc["hep N=4", "0.5"] == "5.00 (n=1)"  # the pruned trial does not count
    assert t.loc["rbp", "-"] == "4.00 (n=1)" and t.loc["hep N=2", "0.05"] == "7.00 (n=1)"


def test_table2_splits_by_homeostasis_and_reads_the_last_epoch():
    metrics = pd.DataFrame(
        {
            "study": "s",
            "trial": [0, 0, 2],
            "epoch": [1, 2, 2],
            "val_error": [0.5, 0.1, 0.05],
            "val_top5_error": [0.2, 0.01, 0.0],
            "homeo_loss": [float("nan"), float("nan"), 0.3],
        }
    )
    t = tables.table2(_trials(), metrics)
    assert t.loc["classic", "top1 without homeostasis"] == "10.00 (n=1)"
    assert t.loc["hep N=4", "top1 with homeostasis"] == "5.00 (n=1)"


def test_markdown_and_beta_bins():
    md = tables.to_markdown(pd.DataFrame({"a": [1.23456, None], "b": ["x", "y"]}))
    assert md.splitlines()[0] == "| a | b |" and "| 1.23 | x |" in md and "|  | y |" in md
    many = pd.Series([0.01, 0.02, 0.05, 0.12, 0.2, 0.5, 0.9, 1.5])
    assert list(tables.beta_bins(many)) == [
        "< 0.03",
        "< 0.03",
        "0.03-0.1",
        "0.1-0.3",
        "0.1-0.3",
        "0.3-1",
        "0.3-1",
        ">= 1",
    ]
