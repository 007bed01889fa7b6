"""``eqpop study`` and ``eqpop compact`` as the study side receives them (``StudyRequest``,
``CompactRequest``: typed, whatever parsed the command line): build the study from a built-in
or a file plus the flags, check it all, then start Ray and run; or compact a study folder."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eqpop.config import ConfigError, TrainConfig, parse_override, read_config_file
from eqpop.population.definition.builtin import BUILTIN
from eqpop.population.definition.spec import StudyConfig, build_study

#: flags that map one to one onto study fields
FLAGS = ("trials", "timeout", "actors", "gpus_per_actor", "storage", "out", "address", "name")
#: ``--set`` keys: a training config field for every trial, or a study field (``study.`` first
#: for one that is both, ``study.seed``); dotted keys reach into a study field's mapping
_SET_KEYS = (*TrainConfig.model_fields, *StudyConfig.model_fields, "study")


def _put(values: dict[str, Any], key: str, value: Any) -> None:
    """``values[a][b] = value`` for the key ``a.b``."""
    *path, last = key.split(".")
    for part in path:
        inner = values.get(part)
        values[part] = inner = dict(inner) if isinstance(inner, dict) else {}
        values = inner
    values[last] = value


@dataclass(frozen=True)
class StudyRequest:
    """What ``eqpop study`` was asked: a built-in name or a study file, the study fields given
    as flags (``FLAGS``), the ``--set`` items, the data folder, and how to run."""

    study: str
    fields: dict[str, Any] = field(default_factory=dict)
    sets: tuple[str, ...] = ()
    data_dir: Path | None = None
    resume: bool = False
    quiet: bool = False


@dataclass(frozen=True)
class CompactRequest:
    """What ``eqpop compact`` was asked: the study folder, its storage if ``study.json`` cannot
    name it in full, and whether to repair first."""

    path: Path
    storage: str | None = None
    repair: bool = False


def study_from_request(request: StudyRequest) -> StudyConfig:
    overrides = {k: v for k, v in request.fields.items() if k in FLAGS and v is not None}
    if request.study in BUILTIN:
        values = {"name": request.study, **BUILTIN[request.study]}
    else:
        path = Path(request.study)
        if path.suffix not in (".toml", ".yaml", ".yml"):
            raise ConfigError(
                f"study: unknown {request.study!r}; choose one of "
                f"{', '.join(BUILTIN)} or give a .toml/.yaml study file"
            )
        values = {"name": path.stem, **read_config_file(path)}
    base = values.get("base", {})
    if not isinstance(base, dict):
        raise ConfigError(f"base: must be a mapping of training config fields, got {base!r}")
    base = dict(base)
    for item in request.sets:
        key, value = parse_override(item, _SET_KEYS)
        head, _, rest = key.partition(".")
        if head == "study" and rest:
            _put(values, rest, value)
        elif head in TrainConfig.model_fields and not rest:
            base[key] = value
        else:
            _put(values, key, value)
    if request.data_dir is not None:
        base["data_dir"] = request.data_dir
    values["base"] = base
    return build_study(**{**values, **overrides})


def resolve_address(address: str) -> str:
    """``detect``: join the Ray cluster this machine belongs to (``auto``) if there is one,
    else start a local Ray. Found as ``ray.init(address="auto")`` finds it (``RAY_ADDRESS``,
    the address file under Ray's temporary folder, which follows ``TMPDIR``, a running GCS),
    in a child process: Ray reads how to choose its node address once, when it is imported,
    and a local start must import it only after ``local_ray_settings``."""
    if address != "detect":
        return address
    probe = (
        "import ray, logging\n"
        "try:\n"
        "    ray.init(address='auto', include_dashboard=False, log_to_driver=False,"
        " logging_level=logging.ERROR)\n"
        "except ConnectionError:\n"
        "    print('local')\n"
        "else:\n"
        "    print('auto')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=False
    )
    found = done.stdout.split()
    return "auto" if done.returncode == 0 and found and found[-1] == "auto" else "local"


def local_ray_settings() -> None:
    """How a Ray this process starts for itself runs (call before Ray is imported: Ray reads
    these once). It listens on 127.0.0.1 only: unset, Ray gives a one-machine node the
    machine's network address and its servers listen on every interface (a node of a cluster
    needs its network address: only for a local start). Its workers run at the driver's
    priority: Ray starts them at nice 15, so that any other busy process on the machine slowed
    a local study many times over, where the training is the job. A value the user set wins."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_worker_niceness", "0")  # an increment on the driver's own


def run_study_command(request: StudyRequest) -> int:
    """Run the study; exit 1 with one line on stderr when it stopped short (its trials kept
    failing, no room, no storage: everything written so far is kept), 128 + the signal's
    number when a signal stopped it."""
    from eqpop.interrupt import StopRequest
    from eqpop.population.storage.store import stored_study
    from eqpop.records import mask_password

    spec = study_from_request(request)
    if request.resume:
        study, notes = stored_study(spec.storage_url, spec.name)  # preflight's repair, first
        for note in [] if request.quiet else notes:
            print(note)
        if study is None:
            url = mask_password(spec.storage_url)
            raise ConfigError(f"--resume: no study {spec.name!r} in {url}")
    spec = spec.model_copy(update={"address": resolve_address(spec.address)})
    if spec.address == "local":
        local_ray_settings()
    if not request.quiet:
        where = "a local Ray" if spec.address == "local" else f"the Ray cluster ({spec.address})"
        print(f"study {spec.name}: {spec.out}, on {where}")
    from eqpop.population.execution.driver import run_study

    with StopRequest() as stop:
        summary = run_study(spec, progress=not request.quiet, stop=stop)
    print(summary.table())
    if summary.stopped:
        print(f"eqpop study: stopped: {summary.stopped}", file=sys.stderr)
        return 128 + summary.signal if summary.signal else 1
    return 0


def run_compact_command(request: CompactRequest) -> int:
    """Compact a study folder's three datasets while holding the study's lease, so that no
    driver writes to it meanwhile (a live one makes this refuse, naming it); with ``--repair``
    first set aside what cannot be read (``results/repair.py``)."""
    import optuna

    from eqpop.population.results.repair import compact_study, repair_journal_of
    from eqpop.population.storage.lease import Lease
    from eqpop.population.storage.store import stored_study
    from eqpop.records import STUDY_JSON, mask_password, read_study, study_storage

    folder = request.path
    described = read_study(folder) if (folder / STUDY_JSON).is_file() else None
    if described is None:
        raise ConfigError(f"{folder}: holds no study (no {STUDY_JSON})")
    name = described["name"]
    url = study_storage(folder, described, request.storage)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if request.repair:
        for line in repair_journal_of(url):
            print(line)
    study, notes = stored_study(url, name)  # a killed driver's torn journal record dropped
    for note in notes:
        print(note)
    if study is None:
        raise ConfigError(f"storage {mask_password(url)} holds no study {name!r}")
    lease = Lease(study, float(described.get("heartbeat_seconds", 10.0)))
    lease.acquire()
    try:
        for line in compact_study(folder, study, described, request.repair, beat=lease.beat):
            print(line)
    finally:
        lease.release()
    return 0
