"""A throw-away PostgreSQL server for the tests: initdb in a temporary folder, listening on a
Unix socket there only (no TCP port), trust authentication, one database ``optuna``. The
commands are the ones cluster/README.md shows. As root it runs as the ``postgres`` user."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def postgres(root: Path) -> Iterator[str | None]:
    """The server's URL (``postgresql://eqpop@/optuna?host=<socket folder>``), or None where
    PostgreSQL is not installed."""
    initdb, pg_ctl, createdb = _bin("initdb"), _bin("pg_ctl"), _bin("createdb")
    if not (initdb and pg_ctl and createdb):
        yield None
        return
    data, sock = root / "data", root / "sock"
    sock.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    run = dict(check=True, capture_output=True, timeout=120)
    subprocess.run(_as_owner([initdb, "-D", str(data), "-A", "trust", "-U", "eqpop"]), **run)
    opts = f"-c listen_addresses='' -k {sock}"
    start = [pg_ctl, "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"]
    subprocess.run(_as_owner(start), **run)
    try:
        subprocess.run([createdb, "-h", str(sock), "-U", "eqpop", "optuna"], **run)
        yield f"postgresql://eqpop@/optuna?host={sock}"
    finally:
        subprocess.run(_as_owner([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), **run)
