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


class Server:
    """One throw-away server in ``root``, which the tests may stop and start again (an outage)."""

    def __init__(self, root: Path, initdb: str, pg_ctl: str):
        self.root, self.pg_ctl = root, pg_ctl
        self.data, self.sock = root / "data", root / "sock"
        self.sock.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
            shutil.chown(self.sock, "postgres")
        subprocess.run(
            _as_owner([initdb, "-D", str(self.data), "-A", "trust", "-U", "eqpop"]), **_RUN
        )
        self.url = f"postgresql://eqpop@/optuna?host={self.sock}"

    def start(self) -> None:
        opts = f"-c listen_addresses='' -k {self.sock}"
        log = str(self.root / "log")
        cmd = [self.pg_ctl, "-D", str(self.data), "-o", opts, "-l", log, "-w", "start"]
        subprocess.run(_as_owner(cmd), **_RUN)

    def running(self) -> bool:
        status = [self.pg_ctl, "-D", str(self.data), "status"]
        return subprocess.run(_as_owner(status), capture_output=True, timeout=60).returncode == 0

    def stop(self) -> None:
        """As a crash or a kill leaves it: no shutdown checkpoint, connections cut."""
        subprocess.run(
            _as_owner([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"]), **_RUN
        )


_RUN = dict(check=True, capture_output=True, timeout=120)


@contextmanager
def postgres(root: Path) -> Iterator[Server | None]:
    """A started server with a database ``optuna`` (its ``url``:
    ``postgresql://eqpop@/optuna?host=<socket folder>``), or None where PostgreSQL is not
    installed."""
    initdb, pg_ctl, createdb = _bin("initdb"), _bin("pg_ctl"), _bin("createdb")
    if not (initdb and pg_ctl and createdb):
        yield None
        return
    server = Server(root, initdb, pg_ctl)
    server.start()
    try:
        subprocess.run([createdb, "-h", str(server.sock), "-U", "eqpop", "optuna"], **_RUN)
        yield server
    finally:
        if server.running():  # a failed outage test may have left it stopped
            server.stop()
