"""``eqpop study``: build the study from a built-in or a file plus the flags, check it all, then
start Ray and run."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from eqpop.config import ConfigError, parse_override, read_config_file
from eqpop.population.builtin import BUILTIN
from eqpop.population.spec import StudyConfig, build_study

#: flags that map one to one onto study fields
_FLAGS = ("trials", "timeout", "actors", "gpus_per_actor", "storage", "out", "address", "name")
_CLUSTER_FILE = Path("/tmp/ray/ray_current_cluster")


def study_from_args(args: argparse.Namespace) -> StudyConfig:
    overrides: dict[str, Any] = {f: getattr(args, f) for f in _FLAGS}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    base_extra = dict(parse_override(item) for item in args.set)
    if args.data_dir is not None:
        base_extra["data_dir"] = args.data_dir
    if args.study in BUILTIN:
        values = {"name": args.study, **BUILTIN[args.study]}
    else:
        path = Path(args.study)
        if path.suffix not in (".toml", ".yaml", ".yml"):
            raise ConfigError(
                f"study: unknown {args.study!r}; choose one of "
                f"{', '.join(BUILTIN)} or give a .toml/.yaml study file"
            )
        values = {"name": path.stem, **read_config_file(path)}
    base = values.get("base", {})
    if not isinstance(base, dict):
        raise ConfigError(f"base: must be a mapping of training config fields, got {base!r}")
    values["base"] = {**base, **base_extra}
    return build_study(**{**values, **overrides})


def resolve_address(address: str) -> str:
    """``detect``: join the Ray cluster running here (``ray submit``), else start a local one."""
    if address != "detect":
        return address
    return "auto" if os.environ.get("RAY_ADDRESS") or _CLUSTER_FILE.exists() else "local"


def loopback_ray() -> None:
    """Make a Ray this process starts for itself listen on 127.0.0.1 only (call before Ray is
    imported: Ray reads the variable once, at import). Unset, Ray gives a one-machine node the
    machine's network address and its servers listen on every interface. Only for a local
    start: a node of a cluster needs its network address."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def run_study_command(args: argparse.Namespace) -> int:
    """Run the study; exit 1 with one line on stderr when it stopped because its trials kept
    failing (everything written so far is kept)."""
    from eqpop.population.storage import mask_password, stored_study

    spec = study_from_args(args)
    if args.resume:
        study, notes = stored_study(spec.storage_url, spec.name)  # preflight's repair, first
        for note in [] if args.quiet else notes:
            print(note)
        if study is None:
            url = mask_password(spec.storage_url)
            raise ConfigError(f"--resume: no study {spec.name!r} in {url}")
    spec = spec.model_copy(update={"address": resolve_address(spec.address)})
    if spec.address == "local":
        loopback_ray()
    from eqpop.population.driver import run_study

    summary = run_study(spec, progress=not args.quiet)
    print(summary.table())
    if summary.stopped:
        print(f"eqpop study: stopped: {summary.stopped}", file=sys.stderr)
        return 1
    return 0


def _compact_storage(folder: Path, described: dict[str, Any], given: str | None) -> str:
    """The study's storage: ``--storage``, else the one ``study.json`` names (a journal path
    written relative to where the study ran is also looked for in the folder)."""
    url = given or str(described.get("storage", ""))
    if not given and "***" in url:
        raise ConfigError(
            f"{folder}/study.json names the storage without its password; give it with --storage"
        )
    if "://" in url or Path(url).is_file():
        return url
    if not given and (folder / "optuna.journal").is_file():
        return str(folder / "optuna.journal")
    hint = "" if given else "; give the study's storage with --storage"
    raise ConfigError(f"storage {url}: no such journal file{hint}")


def run_compact_command(args: argparse.Namespace) -> int:
    """Compact a study folder's three datasets while holding the study's lease, so that no
    driver writes to it meanwhile (a live one makes this refuse, naming it)."""
    import json

    import optuna

    from eqpop.population.dataset import Dataset
    from eqpop.population.lease import Lease
    from eqpop.population.storage import mask_password, stored_study
    from eqpop.reports import schema

    folder: Path = args.path
    if not (folder / "study.json").is_file():
        raise ConfigError(f"{folder}: holds no study (no study.json)")
    try:
        described = json.loads((folder / "study.json").read_text())
    except ValueError as err:
        raise ConfigError(f"{folder}/study.json: not JSON ({err})") from None
    name = described.get("name") if isinstance(described, dict) else None
    if not isinstance(name, str):
        raise ConfigError(f"{folder}/study.json: names no study")
    url = _compact_storage(folder, described, args.storage)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study, notes = stored_study(url, name)  # a killed driver's torn journal record dropped
    for note in notes:
        print(note)
    if study is None:
        raise ConfigError(f"storage {mask_password(url)} holds no study {name!r}")
    lease = Lease(study, float(described.get("heartbeat_seconds", 10.0)))
    lease.acquire()
    try:
        for dataset in schema.DATASETS:
            before, after = Dataset(folder, dataset).compact()
            print(f"{folder / dataset}: {before} files -> {after}")
            lease.beat()
    finally:
        lease.release()
    return 0
