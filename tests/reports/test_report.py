"""``eqpop report`` on a real (tiny) study and a compare run: every table and figure is in
report.html and none is empty; also on a study that is still running."""

from __future__ import annotations

import base64
import re

import pytest
from tiny_study import tiny_study

from eqpop.cli import main
from eqpop.compare import CompareConfig, run_compare
from eqpop.io import write_parquet_atomic
from eqpop.population.execution.driver import run_study
from eqpop.reports import load
from eqpop.reports.html import FIGURES

SPACE = {
    "method": {"choices": ["classic", "hep"]},
    "n_points": {"choices": [2, 4], "when": {"method": ["hep"]}},
    "beta": {"low": 0.1, "high": 1.0, "log": True},
    "lambda_homeo": {"low": 0.5, "high": 5.0, "log": True, "zero_or": True},
}
TABLES = ["table1", "table2", "best_trials", "states", "importances"]


@pytest.fixture(scope="module")
def outputs(ray_address, tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    spec = tiny_study(root, trials=6, pruner="none", space=SPACE, sampler="random")
    run_study(spec, progress=False)
    cfg = CompareConfig(
        batch=8,
        t_free=60,
        t_nudge=30,
        betas=(0.1, 0.5),
        n_points=(2, 4),
        periods=1,
        steps_per_point=10,
        out=root / "cmp" / "compare.parquet",
    )
    write_parquet_atomic(run_compare(cfg, progress=False), cfg.out)
    return spec.out, cfg.out


def test_report_html_holds_every_table_and_figure(outputs, tmp_path, capsys):
    study, compare = outputs
    out = tmp_path / "rep"
    assert main(["report", str(study), str(compare), "--out", str(out)]) == 0
    assert "report.html" in capsys.readouterr().out
    page = (out / "report.html").read_text()
    images = dict(re.findall(r"<h2 id=(\w+)>.*?src='data:image/png;base64,([^']+)'", page))
    assert set(images) == set(FIGURES) - {"pbt_lineages"}  # a search: no lineage to draw
    for data in images.values():
        png = base64.b64decode(data)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    for stem in TABLES:
        section = page.split(f"<h2 id={stem}>")[1].split("<h2")[0]
        assert section.count("<tr") >= 2, stem  # a header and at least one row
        assert (out / f"{stem}.md").read_text().count("\n|") >= 2
        assert (out / f"{stem}.csv").stat().st_size > 0
    assert "No data" not in page


def test_load_types_and_a_study_still_running(outputs, tmp_path):
    study, compare = outputs
    report = load(study, compare)
    assert str(report.trials.state.dtype) == "category"
    assert str(report.comparisons.method.dtype) == "category"
    assert str(report.metrics.epoch.dtype) == "Int64"
    assert str(report.comparisons.n_points.dtype) == "Int64"
    assert {"tiny", "compare:cmp"} <= set(report.comparisons.study.astype(str))
    # a study in progress: metrics without trial rows yet, a temporary part file beside them
    partial = tmp_path / "running"
    (partial / "metrics").mkdir(parents=True)
    for part in (study / "metrics").glob("part-*.parquet"):
        (partial / "metrics" / part.name).write_bytes(part.read_bytes())
        break
    (partial / "metrics" / ".part-x.parquet.tmp").write_bytes(b"half")
    assert main(["report", str(partial)]) == 0
    page = (partial / "report" / "report.html").read_text()
    assert "fig4_homeostasis" in page and "No data for this table" in page


def test_a_path_with_nothing_eqpop_wrote_is_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "holds no study" in capsys.readouterr().err
    assert not (tmp_path / "empty" / "report").exists()
