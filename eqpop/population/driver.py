"""The driver: owns the Optuna study (ask/tell) and keeps every actor busy.

As soon as an actor reports an epoch the driver reports it to the trial and asks the pruner; a
pruned or finished actor takes the next trial at once (no generations). An actor that dies
fails its trial with the reason and the trial is re-queued (same parameters, resumed from its
last checkpoint) up to ``max_retries`` times. A driver started again on the same storage fails
the trials the previous driver left RUNNING and re-queues them the same way; finished trials
stay. Parquet rows of a finished trial are flushed before Optuna hears that it finished, and
trial rows are written after, so a restart can add missing trial rows and never duplicates.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timezone
from pathlib import Path
from typing import Any

import optuna
import ray
from optuna.trial import FrozenTrial, TrialState
from ray.exceptions import RayActorError, RayTaskError
from tqdm import tqdm

from eqpop.config import TrainConfig
from eqpop.io import atomic_write
from eqpop.population.actor import LostTrial, TrialActor
from eqpop.population.spec import StudyConfig
from eqpop.population.writer import PartWriter, read_column
from eqpop.reports import schema

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
Event = Callable[[str, dict[str, Any]], None]


def mask_password(url: str) -> str:
    """A storage URL fit to print: ``user:secret@`` becomes ``user:***@``."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An SQLAlchemy URL (``sqlite:///...``, ``postgresql://...``) or a journal file path."""
    if "://" in url:
        return optuna.storages.RDBStorage(url)
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    Path(url).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(url))


def make_sampler(spec: StudyConfig) -> optuna.samplers.BaseSampler:
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=spec.seed)
    startup = min(10, max(4, spec.trials // 3))
    return optuna.samplers.TPESampler(seed=spec.seed, n_startup_trials=startup, constant_liar=True)


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


@dataclass
class Running:
    """A trial in flight on one actor."""

    trial: optuna.Trial
    actor: int
    cfg: TrainConfig
    kind: str = "start"
    epoch: int = 0
    last_value: float = math.nan


@dataclass
class Summary:
    """What a study run did: counts by state, the best trial, how busy the actors were."""

    study: str
    counts: dict[str, int]
    best: dict[str, Any] | None
    wall_s: float
    train_s: float
    actors: int
    out: str
    storage: str
    events: list[str] = field(default_factory=list)

    @property
    def busy_fraction(self) -> float:
        """Actor time spent training over actors x wall time: 1 means no actor ever waited."""
        return self.train_s / (self.actors * self.wall_s) if self.wall_s > 0 else 0.0

    def table(self) -> str:
        lines = [
            f"study {self.study}: "
            + ", ".join(f"{v} {k.lower()}" for k, v in sorted(self.counts.items()))
        ]
        if self.best:
            params = " ".join(f"{k}={_fmt(v)}" for k, v in self.best["params"].items())
            lines.append(
                f"best trial {self.best['trial']}: val error "
                f"{100 * self.best['value']:.2f} %  ({params})"
            )
        lines.append(
            f"wall {self.wall_s:.0f} s, {self.actors} actors busy training "
            f"{100 * self.busy_fraction:.0f} % of the time"
        )
        lines.append(
            f"parquet: {self.out}/{{trials,metrics,comparisons}}/  storage: {self.storage}"
        )
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


class Driver:
    def __init__(self, spec: StudyConfig, progress: bool = True, on_event: Event | None = None):
        self.spec = spec
        self.out = Path(spec.out)
        self.progress = progress
        self.on_event = on_event
        self.base = spec.train_config({})
        self.params = spec.param_types()  # every Optuna parameter the space can draw, typed
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # our event lines say it better
        self.storage = open_storage(spec.storage_url)
        self.study = optuna.create_study(
            study_name=spec.name,
            storage=self.storage,
            direction="minimize",
            sampler=make_sampler(spec),
            pruner=make_pruner(spec, self.base.epochs),
            load_if_exists=True,
        )
        self.writer = PartWriter(
            self.out,
            {
                schema.TRIALS: schema.trials_schema(self.params),
                schema.METRICS: schema.metrics_schema(self.base.n_layers),
                schema.COMPARISONS: schema.comparisons_schema(),
            },
            spec.flush_seconds,
        )
        self.running: dict[ray.ObjectRef, Running] = {}
        self.pending: dict[ray.ObjectRef, int] = {}  # pings of actors coming back
        self.actors: list[Any] = []
        self.pids: dict[int, int] = {}
        self.train_s = 0.0
        self.events: list[str] = []
        self.bar: tqdm | None = None

    # --- events -------------------------------------------------------------------------------
    def _say(self, kind: str, text: str, **info: Any) -> None:
        self.events.append(text)
        if self.progress:
            tqdm.write(text)
        if self.on_event is not None:
            self.on_event(kind, info)

    # --- study bookkeeping --------------------------------------------------------------------
    def _trials(self, states: tuple[TrialState, ...]) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=states)

    def _n_finished(self) -> int:
        return len(self._trials(FINISHED))

    def _fail(self, trial_id: int, number: int, reason: str) -> None:
        """Mark a trial failed with its reason (the attribute must be set before it finishes)."""
        self.storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        self.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)

    def _requeue(self, frozen: FrozenTrial) -> bool:
        """Run the trial again (same parameters, same checkpoint folder) if retries are left."""
        attempt = int(frozen.user_attrs.get("attempt", 0))
        if attempt >= self.spec.max_retries:
            return False
        run = int(frozen.user_attrs.get("run", frozen.number))
        self.study.enqueue_trial(
            frozen.params,
            user_attrs={"run": run, "retry_of": frozen.number, "attempt": attempt + 1},
        )
        return True

    def _write_trial_row(self, frozen: FrozenTrial) -> None:
        start, end = frozen.datetime_start, frozen.datetime_complete
        utc = lambda d: d.astimezone(timezone.utc) if d is not None else None  # noqa: E731
        self.writer.add(
            schema.TRIALS,
            [
                {
                    "study": self.spec.name,
                    "trial": frozen.number,
                    "state": frozen.state.name,
                    "value": frozen.value,
                    "epochs": frozen.last_step,
                    "duration_s": (end - start).total_seconds() if start and end else None,
                    "fail_reason": frozen.user_attrs.get("fail_reason"),
                    "retry_of": frozen.user_attrs.get("retry_of"),
                    "attempt": frozen.user_attrs.get("attempt", 0),
                    "actor": frozen.user_attrs.get("actor"),
                    "started": utc(start),
                    "finished": utc(end),
                    **{f"param_{k}": frozen.params.get(k) for k in self.params},
                }
            ],
        )
        self.writer.flush()

    def recover(self) -> None:
        """After a driver crash: trials left RUNNING fail and are re-queued; finished trials
        that have no Parquet row yet get one."""
        for frozen in self._trials((TrialState.RUNNING,)):
            self._fail(frozen._trial_id, frozen.number, "driver stopped while the trial ran")
            requeued = self._requeue(frozen)
            self._say(
                "recovered",
                f"trial {frozen.number} was left running: failed"
                + (", re-queued" if requeued else ""),
                trial=frozen.number,
            )
        written = set(read_column(self.out, schema.TRIALS, "trial"))
        done = (*FINISHED, TrialState.FAIL)
        for frozen in self.study.get_trials(deepcopy=False, states=done):
            if frozen.number not in written:
                self._write_trial_row(frozen)

    # --- launching ----------------------------------------------------------------------------
    def _can_launch(self, deadline: float | None) -> bool:
        if deadline is not None and time.monotonic() >= deadline:
            return False
        return self._n_finished() + len(self.running) < self.spec.trials

    def _launch(self, actor: int) -> None:
        trial = self.study.ask()
        drawn = self.spec.draw(trial)
        cfg = self.spec.train_config(drawn)
        trial.set_user_attr("actor", actor)
        run = int(trial.user_attrs.get("run", trial.number))
        trial.set_user_attr("run", run)
        run_dir = self.out / "runs" / f"{run:05d}"
        ref = self.actors[actor].start.remote(
            cfg.model_dump_json(), str(run_dir), self.spec.probe.model_dump()
        )
        self.running[ref] = Running(trial, actor, cfg)
        params = " ".join(f"{k}={_fmt(v)}" for k, v in drawn.items())
        retry = trial.user_attrs.get("retry_of")
        note = f" (retry of {retry}, resumes its checkpoint)" if retry is not None else ""
        self._say(
            "started",
            f"trial {trial.number} started on actor {actor}: {params}{note}",
            trial=trial.number,
            actor=actor,
        )

    def _submit_epoch(self, run: Running) -> None:
        run.kind = "epoch"
        self.running[self.actors[run.actor].epoch.remote()] = run

    # --- results ------------------------------------------------------------------------------
    def _record(self, run: Running, record: dict[str, Any], resumed: bool) -> None:
        run.epoch = int(record["epoch"])
        run.last_value = float(record["val_error"])
        row = {k: v for k, v in record.items() if k != "epoch"}
        self.writer.add(
            schema.METRICS,
            [
                {
                    "study": self.spec.name,
                    "trial": run.trial.number,
                    "epoch": run.epoch,
                    "resumed": resumed,
                    **row,
                }
            ],
        )
        run.trial.report(run.last_value, run.epoch)

    def _finish(self, run: Running, state: TrialState, reason: str | None = None) -> None:
        self.writer.flush()
        number = run.trial.number
        if state == TrialState.FAIL:
            self._fail(run.trial._trial_id, number, reason or "failed")
        elif state == TrialState.PRUNED:
            self.study.tell(run.trial, state=TrialState.PRUNED)
        else:
            self.study.tell(run.trial, run.last_value)
        frozen = self.storage.get_trial(run.trial._trial_id)
        self._write_trial_row(frozen)
        if self.bar is not None:
            self.bar.n = self._n_finished()
            self.bar.refresh()
        value = f"val error {100 * run.last_value:.2f} %" if math.isfinite(run.last_value) else ""
        text = {
            TrialState.COMPLETE: f"trial {number} finished: {value} after {run.epoch} epochs",
            TrialState.PRUNED: f"trial {number} pruned at epoch {run.epoch}: {value}",
            TrialState.FAIL: f"trial {number} failed at epoch {run.epoch}: {reason}",
        }[state]
        self._say(state.name.lower(), text, trial=number, epoch=run.epoch, reason=reason)

    def _handle(self, ref: ray.ObjectRef, run: Running) -> bool:
        """Digest one result; True when the actor is free for the next trial."""
        try:
            result = ray.get(ref)
        except (RayActorError, RayTaskError) as err:
            cause = getattr(err, "cause", None) or err
            if isinstance(err, RayActorError) or isinstance(cause, LostTrial):
                self._actor_died(run, type(cause).__name__)
                return False  # free again once it answers (see ``_revive``)
            self._finish(run, TrialState.FAIL, f"{type(cause).__name__}: {cause}".splitlines()[0])
            return True
        if run.kind == "start":
            self.pids[run.actor] = result["pid"]
            for record in result["records"]:
                self._record(run, record, resumed=True)
        elif "diverged" in result:
            self.train_s += result["busy"]
            self._finish(run, TrialState.FAIL, f"diverged: {result['diverged']}")
            return True
        else:
            self.train_s += result["busy"]
            self._record(run, result["record"], resumed=False)
            if self.on_event is not None:  # per-epoch events are for hooks, not the screen
                info = dict(trial=run.trial.number, epoch=run.epoch, actor=run.actor)
                self.on_event("epoch", {**info, "pid": self.pids.get(run.actor)})
            self._comparisons(run, result["comparisons"])
            residual = float(result["record"].get("residual", 0.0))
            if not residual <= self.spec.max_residual:
                self._finish(
                    run,
                    TrialState.FAIL,
                    f"free phase did not converge "
                    f"(residual {residual:.3g} > {self.spec.max_residual})",
                )
                return True
        if run.epoch >= run.cfg.epochs:
            self._finish(run, TrialState.COMPLETE)
            return True
        if run.kind == "epoch" and run.trial.should_prune():
            self._finish(run, TrialState.PRUNED)
            return True
        self._submit_epoch(run)
        return False

    def _actor_died(self, run: Running, why: str) -> None:
        self._finish(run, TrialState.FAIL, f"actor died ({why})")
        if self._requeue(self.storage.get_trial(run.trial._trial_id)):
            self._say("requeued", f"trial {run.trial.number} re-queued", trial=run.trial.number)
        self._revive(run.actor)

    def _revive(self, actor: int) -> None:
        """Ray restarts a dead actor (``max_restarts=-1``); calls made meanwhile fail, so the
        actor takes no trial until it answers a ping."""
        self.pending[self.actors[actor].pid.remote()] = actor

    def _pinged(self, ref: ray.ObjectRef) -> list[int]:
        actor = self.pending.pop(ref)
        try:
            ray.get(ref)
        except RayActorError:
            time.sleep(0.2)  # still restarting
            self._revive(actor)
            return []
        return [actor]

    def _comparisons(self, run: Running, rows: list[dict[str, Any]]) -> None:
        if rows:
            keys = {"study": self.spec.name, "trial": run.trial.number, "epoch": run.epoch}
            self.writer.add(schema.COMPARISONS, [{**keys, **row} for row in rows])

    # --- the loop -----------------------------------------------------------------------------
    def run(self) -> Summary:
        spec = self.spec
        described = spec.model_dump(mode="json") | {"storage": mask_password(spec.storage_url)}
        described["train_config"] = self.base.model_dump(mode="json")
        text = json.dumps(described, indent=1)
        atomic_write(self.out / "study.json", lambda p: Path(p).write_text(text))
        self.recover()
        threads = max(1, int(spec.cpus_per_actor))
        options = dict(
            num_cpus=spec.cpus_per_actor,
            num_gpus=spec.gpus_per_actor,
            max_restarts=-1,
            max_task_retries=0,
        )
        self.actors = [TrialActor.options(**options).remote(threads) for _ in range(spec.actors)]
        free = list(range(spec.actors))
        deadline = time.monotonic() + spec.timeout if spec.timeout else None
        start = time.monotonic()
        self.bar = tqdm(
            total=spec.trials,
            initial=min(self._n_finished(), spec.trials),
            desc=f"study {spec.name}",
            unit="trial",
            disable=not self.progress,
        )
        try:
            while True:
                while free and self._can_launch(deadline):
                    self._launch(free.pop(0))
                if not self.running and not (self.pending and self._can_launch(deadline)):
                    break
                ready, _ = ray.wait(
                    [*self.running, *self.pending], num_returns=1, timeout=spec.flush_seconds
                )
                for ref in ready:
                    if ref in self.pending:
                        free += self._pinged(ref)
                        continue
                    run = self.running.pop(ref)
                    if self._handle(ref, run):
                        free.append(run.actor)
                self.writer.maybe_flush()
        finally:
            self.writer.flush()
            self.bar.close()
            for actor in self.actors:
                ray.kill(actor)
        summary = self.summary(time.monotonic() - start)
        described = {k: v for k, v in asdict(summary).items() if k not in ("events", "out")}
        text = json.dumps({**described, "busy_fraction": summary.busy_fraction}, indent=1)
        atomic_write(self.out / "summary.json", lambda p: Path(p).write_text(text))
        return summary

    def summary(self, wall_s: float) -> Summary:
        trials = self.study.get_trials(deepcopy=False)
        counts: dict[str, int] = {}
        for t in trials:
            counts[t.state.name] = counts.get(t.state.name, 0) + 1
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        best = min(complete, key=lambda t: t.value, default=None)
        return Summary(
            study=self.spec.name,
            counts=counts,
            best={"trial": best.number, "value": best.value, "params": best.params}
            if best
            else None,
            wall_s=wall_s,
            train_s=self.train_s,
            actors=self.spec.actors,
            out=str(self.out),
            storage=mask_password(self.spec.storage_url),
            events=self.events,
        )


def connect(address: str, num_cpus: int | None = None) -> None:
    """Start or join Ray once per process (a test session shares one local instance)."""
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = dict(
        include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING
    )
    if address == "local":
        kwargs["num_cpus"] = num_cpus
    ray.init(address=address, **kwargs)


def check_resources(spec: StudyConfig) -> None:
    """On a fixed (local) Ray instance, actors that ask for more than there is would wait
    forever: say so instead. An autoscaling cluster adds GPU nodes on demand."""
    have = ray.cluster_resources()
    if spec.gpus_per_actor > have.get("GPU", 0):
        raise ValueError(
            f"gpus_per_actor: {spec.gpus_per_actor:g} asked, Ray has "
            f"{have.get('GPU', 0):g} GPUs here; 0 trains on CPUs"
        )
    if spec.cpus_per_actor > have.get("CPU", 0):
        raise ValueError(
            f"cpus_per_actor: {spec.cpus_per_actor:g} asked, Ray has "
            f"{have.get('CPU', 0):g} CPUs here"
        )


def run_study(spec: StudyConfig, progress: bool = True, on_event: Event | None = None) -> Summary:
    connect(spec.address)
    if spec.address != "auto":
        check_resources(spec)
    return Driver(spec, progress, on_event).run()
