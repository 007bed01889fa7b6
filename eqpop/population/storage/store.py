"""The Optuna side of a study: where it is stored (a journal file, or any RDB URL, printed
without its password), how its trials are asked, told and failed with a reason, how a driver
restarted after a crash recovers the trials it left running, and the retry policy.

Optuna's public API only: trials are addressed by number, through the storage's own lookups.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    check_distribution_compatibility,
)
from optuna.storages.journal import (
    BaseJournalBackend,
    JournalFileBackend,
    JournalFileSymlinkLock,
    JournalStorage,
)
from optuna.trial import FrozenTrial, TrialState

from eqpop.errors import ConfigError, Damaged
from eqpop.population.storage.guarded import GuardedStorage
from eqpop.records import JOURNAL, mask_password

if TYPE_CHECKING:  # the spec imports the training config and with it torch; reports do not
    from eqpop.population.definition.spec import StudyConfig

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
DONE = (*FINISHED, TrialState.FAIL)


def open_storage(url: str) -> GuardedStorage:
    """An SQLAlchemy URL (``sqlite:///...``, ``postgresql://...``) or a journal file path, as a
    ``GuardedStorage``: a storage that goes away mid-study is one ``StorageLost`` line."""
    if "://" in url:
        try:  # pre-ping: a connection the server dropped meanwhile is replaced, not used
            rdb = optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
        except Exception as err:  # the driver's import, a refused connection, a missing db
            why = mask_password(str(err).strip().splitlines()[0] if str(err).strip() else "")
            raise ConfigError(
                f"storage {mask_password(url)}: cannot open it ({type(err).__name__}: {why})"
            ) from None
        return GuardedStorage(optuna.storages.get_storage(rdb), mask_password(url))  # cached
    path = Path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        journal = JournalStorage(JournalFileBackend(url))
    except OSError:
        raise
    except Exception as err:  # a record that parses but does not replay (a key overwritten)
        found = damaged_record(path)
        if found is None:
            raise
        raise JournalDamaged(path, *found) from err
    return GuardedStorage(journal, url, journal=path)


def sampler_seed(seed: int, stored: int) -> int:
    """The sampler's seed for a driver run that finds ``stored`` trials in the study: the
    study's own seed at first, then one drawn from both, so that a restarted study goes on with
    new settings instead of drawing its first run's again."""
    if stored == 0:
        return seed
    return int(np.random.SeedSequence([seed, stored]).generate_state(1)[0])


def make_sampler(spec: StudyConfig, stored: int = 0) -> optuna.samplers.BaseSampler:
    seed = sampler_seed(spec.seed, stored)
    if spec.sampler in ("random", "grid"):  # a grid's trials are all queued (``queue``)
        return optuna.samplers.RandomSampler(seed=seed)
    startup = min(10, max(4, spec.trials // 3))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)


def make_pruner(spec: StudyConfig, epochs: int) -> optuna.pruners.BasePruner:
    first = max(1, spec.pruner_warmup)
    if spec.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=spec.pruner_startup, n_warmup_steps=spec.pruner_warmup
        )
    if spec.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=first)
    if spec.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=first, max_resource=epochs)
    return optuna.pruners.NopPruner()


#: what a retry carries besides its run folder: a PBT trial's place in the population and the
#: checkpoint it starts from when its folder has none yet
CARRIED = ("member", "inherit")


@dataclass(frozen=True)
class RetryPolicy:
    """A trial whose actor (or driver) died runs again with the same parameters in the same run
    folder, so it resumes from its last checkpoint, at most ``max_retries`` times (Optuna's
    ``RetryFailedTrialCallback``, with the run folder carried along): user attributes ``run``
    (the folder), ``retry_of`` (the trial it re-runs) and ``attempt``."""

    max_retries: int

    def requeue(self, study: optuna.Study, frozen: FrozenTrial, counted: bool = True) -> bool:
        """Queue the trial again; ``counted=False`` (a stop the user asked for, not the
        trial's fault) does not use up one of its retries."""
        attempt = int(frozen.user_attrs.get("attempt", 0))
        if counted and attempt >= self.max_retries:
            return False
        run = int(frozen.user_attrs.get("run", frozen.number))
        attrs = {"run": run, "retry_of": frozen.number, "attempt": attempt + int(counted)}
        attrs |= {k: frozen.user_attrs[k] for k in CARRIED if k in frozen.user_attrs}
        study.enqueue_trial(frozen.params, user_attrs=attrs)
        return True


class JournalDamaged(Damaged):
    """A journal record Optuna cannot read or replay (a flipped byte, an overwritten key, a
    record cut short with others written after it): what follows it cannot be trusted."""

    def __init__(self, path: Path, record: int, total: int, why: str):
        self.path, self.record = path, record
        default = path.name == JOURNAL
        folder = str(path.parent) if default else f"<study folder> --storage {path}"
        super().__init__(
            f"{path}: record {record} of {total} is damaged ({why}); `eqpop compact --repair "
            f"{folder}` keeps the {record - 1} records before it and sets aside the Parquet "
            "rows and run folders of the trials it drops"
        )


class _Replay(BaseJournalBackend):
    """Journal records replayed by Optuna one by one, counting them, to find the first that
    breaks the replay."""

    def __init__(self, lines: list[bytes]):
        self.lines, self.served = lines, 0

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        for line in self.lines[log_number_from:]:
            self.served += 1
            yield json.loads(line)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        raise RuntimeError("a replay is read-only")


def damaged_record(path: Path) -> tuple[int, int, str] | None:
    """The first record of a journal that does not parse or that Optuna cannot replay (its
    number from 1, the number of records, why), or None."""
    lines = path.read_bytes().split(b"\n")[:-1]  # what follows the last newline is torn
    replay = _Replay(lines)
    try:
        JournalStorage(replay)
    except Exception as err:
        return replay.served, len(lines), f"{type(err).__name__}: {err}".splitlines()[0]
    return None


def _lock(path: Path) -> JournalFileSymlinkLock:
    """The lock Optuna's own appends take."""
    return JournalFileSymlinkLock(str(path))


def repair_journal(path: Path) -> str | None:
    """Drop a torn last record (a write cut by a crash or a full disk) so that the next append
    does not glue onto it; the cut bytes are kept in ``<journal>.torn``. Returns what it did,
    or None. A damaged record *before* the last one is ``JournalDamaged``: what follows it
    cannot be trusted, and ``eqpop compact --repair`` is the way out."""
    if not path.is_file() or path.stat().st_size == 0:
        return None
    lock = _lock(path)
    lock.acquire()
    try:
        data = path.read_bytes()
        *complete, _ = data.split(b"\n")  # the part after the last newline is torn if any
        end = 0  # where the last sound record ends
        for number, line in enumerate(complete, 1):
            try:
                json.loads(line)
            except ValueError:
                if number < len(complete):
                    raise JournalDamaged(path, number, len(complete), "not JSON") from None
                break  # a damaged last record is a torn one
            end += len(line) + 1
        torn = data[end:]
        if not torn:
            return None
        with open(f"{path}.torn", "ab") as f:
            f.write(torn.rstrip(b"\n") + b"\n")
        with open(path, "r+b") as f:
            f.truncate(end)
            os.fsync(f.fileno())
        return f"{path}: dropped a torn last record ({len(torn)} bytes, kept in {path}.torn)"
    finally:
        lock.release()


def drop_records(path: Path, first: int) -> int:
    """Keep the records of a journal before record ``first`` (counted from 1); the others go
    to ``<journal>.damaged``. Returns how many were dropped."""
    lock = _lock(path)
    lock.acquire()
    try:
        data = path.read_bytes()
        lines = data.split(b"\n")
        keep = sum(len(line) + 1 for line in lines[: first - 1])
        dropped = data[keep:]
        with open(f"{path}.damaged", "ab") as f:
            f.write(dropped.rstrip(b"\n") + b"\n")
        with open(path, "r+b") as f:
            f.truncate(keep)
            os.fsync(f.fileno())
        return len(lines[first - 1 :]) - (1 if data.endswith(b"\n") else 0)
    finally:
        lock.release()


def space_distributions(spec: StudyConfig) -> dict[str, BaseDistribution]:
    """The Optuna distributions the study's space draws from (as ``Param.suggest`` does)."""
    out: dict[str, BaseDistribution] = {}
    for name, p in spec.searched().items():
        if p.choices is not None:
            out[name] = CategoricalDistribution(p.choices)
            continue
        if p.zero_or:
            out[f"{name}_on"] = CategoricalDistribution([False, True])
        if p.integer:
            out[name] = IntDistribution(int(p.low), int(p.high), log=p.log)
        else:
            out[name] = FloatDistribution(p.low, p.high, log=p.log)
    return out


def _shown(dist: BaseDistribution) -> str:
    if isinstance(dist, CategoricalDistribution):
        return f"choices {list(dist.choices)}"
    kind = "integers" if isinstance(dist, IntDistribution) else "floats"
    return f"{kind} {dist.low:g}..{dist.high:g}" + (" (log)" if dist.log else "")


def check_space(study: optuna.Study, spec: StudyConfig) -> None:
    """Refuse, before anything is written, a space Optuna cannot continue the stored study
    with (other choices, another kind of value): one line naming the parameter, the stored
    and the new values, and the way out. Changed float or integer ranges are fine."""
    stored: dict[str, BaseDistribution] = {}
    for trial in study.get_trials(deepcopy=False):
        for name, dist in trial.distributions.items():
            stored.setdefault(name, dist)
    for name, new in space_distributions(spec).items():
        old = stored.get(name)
        if old is None:
            continue
        try:
            check_distribution_compatibility(old, new)
        except ValueError:
            raise ConfigError(
                f"space.{name}: study {spec.name!r} was searched over {_shown(old)}, this run "
                f"asks for {_shown(new)}; give the changed study a new --name"
            ) from None


def stored_study(url: str, name: str) -> tuple[optuna.Study | None, list[str]]:
    """The study ``name`` as ``url`` stores it (None if it holds none, or the journal file
    does not exist yet), once a torn last journal record is dropped; and what was repaired."""
    if "://" not in url and not Path(url).is_file():
        return None, []
    notes = [] if "://" in url else [n for n in [repair_journal(Path(url))] if n]
    storage = open_storage(url)
    if name not in optuna.get_all_study_names(storage):
        return None, notes
    return optuna.load_study(study_name=name, storage=storage), notes


class TrialStore:
    """One study in its storage: created on first use, continued by every later driver (run
    ``preflight`` first: this creates the study)."""

    def __init__(self, spec: StudyConfig, epochs: int):
        self.storage = open_storage(spec.storage_url)
        exists = spec.name in optuna.get_all_study_names(self.storage)
        stored = 0
        if exists:
            study_id = self.storage.get_study_id_from_name(spec.name)
            stored = self.storage.get_n_trials(study_id)
        policy = dict(sampler=make_sampler(spec, stored), pruner=make_pruner(spec, epochs))
        if exists:
            # loaded, not "created if missing": a journal would record the creation again
            self.study = optuna.load_study(study_name=spec.name, storage=self.storage, **policy)
        else:
            self.study = optuna.create_study(
                study_name=spec.name, storage=self.storage, direction="minimize", **policy
            )
        self.study_id = self.storage.get_study_id_from_name(spec.name)
        self.retry = RetryPolicy(spec.max_retries)

    def trials(self, states: tuple[TrialState, ...]) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=states)

    def finished(self) -> int:
        """Complete and pruned trials: what the study's budget counts."""
        return len(self.trials(FINISHED))

    def ask(self, actor: int) -> optuna.Trial:
        """The next trial (a re-queued one first), labelled with its actor and run folder."""
        trial = self.study.ask()
        trial.set_user_attr("actor", actor)
        trial.set_user_attr("run", int(trial.user_attrs.get("run", trial.number)))
        return trial

    def fixed(self, trial: optuna.Trial) -> dict[str, Any]:
        """The params ``trial`` was queued with (a grid's cell, a retry's), if any."""
        return self.frozen(trial.number).system_attrs.get("fixed_params", {})

    def queue(self, cells: list[dict[str, Any]]) -> int:
        """Queue every grid cell no trial has (in any state, a retry's included): Optuna's
        ``enqueue_trial``, so that concurrent asks never take a cell twice (a GridSampler
        may, and cannot leave out a field whose ``when`` fails). How many were queued."""
        before = len(self.study.get_trials(deepcopy=False))
        for cell in cells:
            self.study.enqueue_trial(cell, skip_if_exists=True)
        return len(self.study.get_trials(deepcopy=False)) - before

    def waiting(self) -> int:
        """Queued trials not yet asked for."""
        return len(self.trials((TrialState.WAITING,)))

    def frozen(self, number: int) -> FrozenTrial:
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)
        return self.storage.get_trial(trial_id)

    def tell(self, number: int, state: TrialState, value: float | None = None) -> FrozenTrial:
        """End a trial (COMPLETE with its value, or PRUNED); returns it as stored."""
        self.study.tell(number, value if state == TrialState.COMPLETE else None, state=state)
        return self.frozen(number)

    def fail(self, number: int, reason: str) -> FrozenTrial:
        """Fail a trial with its reason (set before it finishes: attributes freeze then)."""
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)
        self.storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        self.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
        return self.frozen(number)

    def requeue(self, frozen: FrozenTrial, counted: bool = True) -> bool:
        return self.retry.requeue(self.study, frozen, counted)

    def recover(self) -> list[tuple[int, bool]]:
        """Fail the trials a stopped driver left RUNNING and re-queue them under the retry
        policy: (trial number, re-queued) for each. A PBT trial whose child was queued already
        (the driver stopped between the two) is pruned instead: its child goes on."""
        replaced = {child.user_attrs["exploited"] for child, _ in self.children()}
        out = []
        for t in self.trials((TrialState.RUNNING,)):
            if t.number in replaced:
                self.tell(t.number, TrialState.PRUNED)
                continue
            failed = self.fail(t.number, "driver stopped while the trial ran")
            out.append((t.number, self.requeue(failed)))
        return out

    # --- population-based training --------------------------------------------------------------
    def members(self) -> int:
        """How many members of a PBT population have started."""
        trials = self.study.get_trials(deepcopy=False)
        return len({t.user_attrs["member"] for t in trials if "member" in t.user_attrs})

    def enqueue_child(self, params: dict[str, Any], attrs: dict[str, Any]) -> FrozenTrial:
        """Queue a PBT child with its settings and lineage (``exploited``: the trial it
        replaces); returns it as stored."""
        self.study.enqueue_trial(params, user_attrs=attrs)
        return self.study.get_trials(deepcopy=False)[-1]

    def mark(self, number: int, key: str, value: Any) -> None:
        """A user attribute of a trial still running (attributes freeze once it ends)."""
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)
        self.storage.set_trial_user_attr(trial_id, key, value)

    def children(self) -> list[tuple[FrozenTrial, FrozenTrial]]:
        """Every PBT child, with the parent whose checkpoint it took."""
        trials = self.study.get_trials(deepcopy=False)
        return [(t, trials[t.user_attrs["parent"]]) for t in trials if "exploited" in t.user_attrs]
