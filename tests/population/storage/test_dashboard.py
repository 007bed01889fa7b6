"""optuna-dashboard serves a study's storage, bound to 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tiny_study import tiny_study

from eqpop.population.execution.driver import run_study


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dashboard_serves_the_study_journal_on_localhost(ray_address, tmp_path):
    spec = tiny_study(
        tmp_path, trials=1, actors=1, base=dict(hidden=[8], epochs=1, t_free=5, t_nudge=3)
    )
    run_study(spec, progress=False)
    exe = shutil.which("optuna-dashboard") or str(Path(sys.executable).parent / "optuna-dashboard")
    port = _free_port()
    server = subprocess.Popen(
        [exe, spec.storage_url, "--port", str(port), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        body, deadline = None, time.monotonic() + 30
        while body is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies") as r:
                    body = json.load(r)
            except OSError:
                time.sleep(0.2)
        assert body is not None, "dashboard did not answer on 127.0.0.1"
        assert [s["study_name"] for s in body["study_summaries"]] == ["tiny"]
        out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():  # where ss exists: loopback only
            assert all("127.0.0.1:" in line for line in out.stdout.splitlines())
    finally:
        server.terminate()
        server.wait(timeout=10)
