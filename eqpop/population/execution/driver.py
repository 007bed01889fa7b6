"""The driver: owns the Optuna study (ask/tell) and keeps every actor busy.

Its loop is ask, submit, wait, decide, tell, over named parts: the study's storage and retry
policy (``storage/store.py``), the actors (``pool.py``), the trial table that says which trial
runs on which actor and moves it between states (``table.py``), typed outcomes and the rule
that decides a trial's fate (``outcome.py``) and the Parquet and JSON files
(``results/sink.py``). As soon as an actor reports an epoch the driver reports it to the trial
and asks the pruner; a pruned or finished actor takes the next trial at once (no synchronous
rounds). An actor that dies fails its trial with the reason and the trial is re-queued (same
parameters, resumed from its last checkpoint) up to ``max_retries`` times. A driver started
again on the same storage fails the trials the previous driver left RUNNING and re-queues them
the same way; finished trials stay. A study whose trials keep failing stops itself
(``max_failures_in_row``), saying why. A run that ends without being halted leaves each Parquet
dataset compacted to a handful of files. Under ``schedule: pbt`` a member at its perturbation
interval may be replaced by a child that goes on from a better member's checkpoint
(``_exploited``; ``pbt.py``).
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import optuna
import ray
from optuna.trial import TrialState

from eqpop.errors import Damaged, StorageLost, WriteFailed
from eqpop.interrupt import Interrupted, StopRequest
from eqpop.population.definition.spec import StudyConfig
from eqpop.population.execution.console import Event, Events, Summary, fmt
from eqpop.population.execution.outcome import (
    Decision,
    Lost,
    Outcome,
    Progress,
    Started,
    Trained,
    decide,
    unwritable,
)
from eqpop.population.execution.pbt import as_params, explore, quantiles
from eqpop.population.execution.pool import ActorPool, check_resources, connect
from eqpop.population.execution.preflight import preflight
from eqpop.population.execution.table import Running, TrialTable
from eqpop.population.results.sink import Sink
from eqpop.population.storage.lease import Lease
from eqpop.population.storage.store import DONE, TrialStore
from eqpop.records import PBT_DIR, mask_password, run_folder
from eqpop.train.checkpoint import snapshot


class Driver:
    def __init__(
        self,
        spec: StudyConfig,
        progress: bool = True,
        on_event: Event | None = None,
        notes: list[str] | None = None,
        stop: StopRequest | None = None,
    ):
        self.spec = spec
        self.stop = stop or StopRequest()  # not installed: no signal ever sets it
        self.notes = notes or []  # what preflight repaired, said once the events are up
        self.progress, self.on_event = progress, on_event
        self.base = spec.train_config({})
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # our event lines say it better
        self.store = TrialStore(spec, self.base.epochs)
        self.lease = Lease(self.store.study, spec.heartbeat_seconds)
        self.sink = Sink(spec, self.base, spec.param_types())
        self.table = TrialTable(spec.actors, spec.max_failures_in_row)
        self.finished_here = 0  # trials this run completed or pruned
        self.unplaced_since: float | None = None  # every actor lost and none placed again
        self.signal: int | None = None  # the signal that stopped this run
        self.train_s = 0.0
        self.latest: dict[int, Running] = {}  # PBT: each member's running trial, once scored

    # --- ask and submit -----------------------------------------------------------------------
    def _can_launch(self, deadline: float | None) -> bool:
        if deadline is not None and time.monotonic() >= deadline:
            return False
        if self.table.failures.exceeded or self.table.halt:
            return False
        if self.spec.sampler == "grid" and not self.store.waiting():  # every cell taken
            return False
        if self.spec.schedule == "pbt":  # a child waits, or a member has yet to start
            return bool(self.store.waiting()) or self.store.members() < self.spec.pbt.population
        return self.store.finished() + len(self.table.calls) < self.spec.trials

    def _launch(self, actor: int) -> None:
        trial = self.store.ask(actor)
        if self.spec.schedule == "pbt" and "member" not in trial.user_attrs:
            trial.set_user_attr("member", self.store.members())  # a new member's first trial
        grid = self.spec.sampler == "grid"
        drawn = self.spec.draw(trial, self.store.fixed(trial) if grid else None)
        cfg = self.spec.train_config(drawn)
        run_dir = str(run_folder(self.spec.out, trial.user_attrs["run"]))
        probe, inherit = self.spec.probe.model_dump(), trial.user_attrs.get("inherit")
        call = self.pool.start(actor, cfg, run_dir, probe, inherit)
        self.table.move(Running(trial, actor, cfg, drawn), TrialState.RUNNING, call=call)
        params = " ".join(f"{k}={fmt(v)}" for k, v in drawn.items())
        attrs = trial.user_attrs
        retry = attrs.get("retry_of")
        note = f" (retry of {retry}, resumes its checkpoint)" if retry is not None else ""
        if "parent" in attrs:
            note = f" (goes on from trial {attrs['parent']}'s epoch {attrs['copied_epoch']})"
        text = f"trial {trial.number} started on actor {actor}: {params}{note}"
        self.events.say("started", text, trial=trial.number, actor=actor)

    # --- decide and tell ----------------------------------------------------------------------
    def _record(self, run: Running, outcome: Outcome) -> None:
        """Report the epochs an outcome carries to Optuna and to the sink."""
        if isinstance(outcome, Started):
            records, resumed = outcome.records, True
        elif isinstance(outcome, Trained) and outcome.record is not None:
            records, resumed = [outcome.record], False
        else:
            return
        for record in records:
            run.epoch, run.last_value = int(record["epoch"]), float(record["val_error"])
            self.sink.epoch(run.trial.number, record, resumed)
            run.trial.report(run.last_value, run.epoch)
        if "member" in run.trial.user_attrs:
            self.latest[run.trial.user_attrs["member"]] = run
        if isinstance(outcome, Trained):
            pid = self.pool.pids.get(run.actor)
            info = dict(trial=run.trial.number, epoch=run.epoch, actor=run.actor, pid=pid)
            self.events.notify("epoch", **info)
            if outcome.comparisons:
                self.sink.comparisons(run.trial.number, run.epoch, outcome.comparisons)

    def _take(self, run: Running, outcome: Outcome) -> None:
        """Record what came back, decide the trial's fate, and act on it."""
        self.train_s += outcome.busy if isinstance(outcome, Trained) else 0.0
        self._record(run, outcome)
        progress = Progress(run.epoch, run.cfg.epochs, run.trial.should_prune)
        decision = decide(outcome, progress, self.spec)
        if decision.state == TrialState.RUNNING:
            if isinstance(outcome, Trained) and self._exploited(run):
                return
            self.table.move(run, TrialState.RUNNING, call=self.pool.epoch(run.actor))
            return
        ping = self.pool.ping(run.actor) if isinstance(outcome, Lost) else None
        self._end(run, decision, ping)
        if decision.stop_study:
            self.table.halt = decision.stop_study
        if decision.retry and self.store.requeue(self.store.frozen(run.trial.number)):
            number = run.trial.number
            self.events.say("requeued", f"trial {number} re-queued", trial=number)

    def _done(self) -> int:
        """What the progress bar counts: finished trials, or under PBT completed members."""
        if self.spec.schedule == "pbt":
            return len(self.store.trials((TrialState.COMPLETE,)))
        return self.store.finished()

    # --- population-based training -----------------------------------------------------------
    def _exploited(self, run: Running) -> bool:
        """At its perturbation interval, a member in the bottom quantile of the members' latest
        scores is replaced: a top member's latest checkpoint is copied, a child trial queued
        with that member's settings perturbed (``pbt.explore``) takes its place, and this
        trial ends pruned. True if it was."""
        pbt = self.spec.pbt
        if self.spec.schedule != "pbt" or run.epoch % pbt.perturbation_interval:
            return False
        scores = {m: r.last_value for m, r in self.latest.items() if math.isfinite(r.last_value)}
        bottom, top = quantiles(scores, pbt.quantile_fraction)
        member = run.trial.user_attrs["member"]
        if member not in bottom:
            return False
        rng = random.Random(f"{self.spec.seed}:{run.trial.number}:{run.epoch}")
        parent = self.latest[rng.choice(top)]
        name = f"trial-{parent.trial.number:05d}"
        folder = run_folder(self.spec.out, parent.trial.user_attrs["run"])
        path, epoch = snapshot(folder, Path(self.spec.out) / PBT_DIR, name)
        if epoch >= run.cfg.epochs:  # the parent has just finished: nothing left to train
            return False
        settings = explore(self.spec, parent.params, rng)
        attrs = {
            "member": member,
            "parent": parent.trial.number,
            "exploited": run.trial.number,
            "copied_epoch": epoch,
            "parent_score": parent.last_value,
            "exploited_score": run.last_value,
            "inherit": str(path),
        }
        child = self.store.enqueue_child(as_params(self.spec, settings), attrs)
        self.store.mark(run.trial.number, "exploited_by", parent.trial.number)
        reason = (
            f"exploited by trial {parent.trial.number}: trial {child.number} goes on from its "
            f"epoch {epoch}"
        )
        self._end(run, Decision(TrialState.PRUNED, reason))
        self.sink.lineage(child, self.store.frozen(parent.trial.number))
        return True

    def _end(self, run: Running, decision: Decision, ping: ray.ObjectRef | None = None) -> None:
        """End the trial in the storage (its epochs flushed first) and in the table, then
        queue its row; ``ping``: its actor died, and takes a trial again once this answers."""
        self.sink.flush_epochs()
        member = run.trial.user_attrs.get("member")
        if member is not None and self.latest.get(member) is run:
            del self.latest[member]  # no longer a member's latest: not compared, not copied
        number, state = run.trial.number, decision.state
        if state == TrialState.FAIL:
            frozen = self.store.fail(number, decision.reason)
        else:
            frozen = self.store.tell(number, state, run.last_value)
            self.finished_here += 1
        self.table.move(run, state, ping=ping, reason=decision.reason)
        self.sink.trial(frozen)
        self.events.finished(self._done())
        value = f"val error {100 * run.last_value:.2f} %" if math.isfinite(run.last_value) else ""
        text = {
            TrialState.COMPLETE: f"trial {number} finished: {value} after {run.epoch} epochs",
            TrialState.PRUNED: f"trial {number} pruned at epoch {run.epoch}: {value}"
            + (f"; {decision.reason}" if decision.reason else ""),
            TrialState.FAIL: f"trial {number} failed at epoch {run.epoch}: {decision.reason}",
        }[state]
        info = dict(trial=number, epoch=run.epoch, reason=decision.reason or None)
        self.events.say(state.name.lower(), text, **info)

    # --- the loop -----------------------------------------------------------------------------
    def recover(self) -> None:
        """After a driver crash: trials left RUNNING fail and are re-queued; finished trials
        that have no Parquet row yet get one."""
        for number, requeued in self.store.recover():
            text = f"trial {number} was left running: failed" + (", re-queued" if requeued else "")
            self.events.say("recovered", text, trial=number)
        self.sink.missing_trials(self.store.trials(DONE))
        self.sink.missing_lineage(self.store.children())

    def run(self) -> Summary:
        spec = self.spec
        self.lease.acquire()  # before anything is written: another live driver may run it
        self.events = Events(spec, self._done(), self.progress, self.on_event)
        for note in self.notes:
            self.events.say("repaired", note)
        self.sink.open()
        self.recover()
        if spec.sampler == "grid":
            queued = self.store.queue(spec.grid())
            if queued:
                self.events.say("queued", f"{queued} grid cells queued")
        self.pool = ActorPool(spec)
        deadline = time.monotonic() + spec.timeout if spec.timeout else None
        start = time.monotonic()
        try:
            while True:
                self.stop.check()  # a signal arrived: stop here, between two whole steps
                table = self.table
                while table.free and self._can_launch(deadline):
                    self._launch(table.free[0])
                if not table.calls and not (table.reviving and self._can_launch(deadline)):
                    break
                if self._unplaceable():
                    break
                with self.stop.interruptible():
                    ready = self.pool.wait(table.pending(), spec.flush_seconds)
                for ref in ready:
                    if ref in table.reviving:
                        table.answered(ref, self.pool.answered(ref, table.reviving[ref]))
                    else:
                        run = table.arrived(ref)
                        self._take(run, self.pool.outcome(ref, run.actor))
                self.sink.maybe_flush()
                self.lease.beat()
            self.stop.check()
            if not self.table.halt:  # a handful of files per dataset, for fast reading
                files = self.sink.compact()
                self.events.notify("compacted", files=files)
        except Interrupted as stopped:
            if stopped.at_once:
                raise
            self._interrupted(stopped)
        except (StorageLost, Damaged) as err:  # the storage went away; a part is unreadable
            self.table.halt = str(err)
        except OSError as err:  # the Parquet or the journal: trials left running recover
            where = mask_password(spec.storage_url)
            self.table.halt = unwritable(
                err if isinstance(err, WriteFailed) else f"cannot write {where}: {err}"
            )
        finally:
            with contextlib.suppress(OSError):  # already reported: nothing half-written
                self.sink.flush()
            self.events.bar.close()
            self.pool.shutdown()
            with contextlib.suppress(OSError):
                self.lease.release()
        summary = self.summary(time.monotonic() - start)
        described = {k: v for k, v in asdict(summary).items() if k != "out"}
        with contextlib.suppress(WriteFailed):
            self.sink.summary({**described, "busy_fraction": summary.busy_fraction})
        return summary

    def _interrupted(self, stopped: Interrupted) -> None:
        """A signal asked the study to stop: the running trials fail ("interrupted") and are
        queued again without using up a retry (the next run resumes them from their last
        checkpoint), and nothing more starts."""
        self.signal = stopped.signum
        running = [self.table.arrived(call) for call in list(self.table.calls)]
        self.table.halt = (
            f"interrupted ({stopped.name}): {len(running)} running trials failed and re-queued; "
            "the same command continues the study"
        )
        try:
            for run in running:
                self._end(run, Decision(TrialState.FAIL, "interrupted"))
                self.store.requeue(self.store.frozen(run.trial.number), counted=False)
        except StorageLost as err:  # the next run fails and re-queues what is left
            self.table.halt = f"interrupted ({stopped.name}); {err}"

    def _unplaceable(self) -> bool:
        """Every actor is gone and Ray places none again (its node was lost and no node left
        has the resources): after ``placement_timeout`` seconds the study stops, rather than
        wait forever. While any actor lives, the study goes on with the ones it has."""
        if self.table.calls or self.table.free or not self.table.reviving:
            self.unplaced_since = None
            return False
        now = time.monotonic()
        self.unplaced_since = self.unplaced_since or now
        if now - self.unplaced_since < self.spec.placement_timeout:
            return False
        self.table.halt = (
            f"no actor could be placed for {self.spec.placement_timeout:g} s (the cluster has "
            "no node left with the resources one actor needs); add nodes and run the same "
            "command again"
        )
        return True

    def stopped(self) -> str | None:
        """Why the study stopped short of its budget because its trials kept failing: too
        many failures in a row, or a wall-time budget spent with every trial failing."""
        failures = self.table.failures
        if self.table.halt:
            return self.table.halt
        if failures.exceeded:
            return f"{len(failures.in_row)} trials failed in a row; {failures.why()}"
        short = self.store.finished() < self.spec.trials  # then the time budget ended it
        if short and failures.total and not self.finished_here:
            n = failures.total
            return f"the time budget ran out and all {n} trials failed; {failures.why()}"
        return None

    def summary(self, wall_s: float) -> Summary:
        try:
            trials = self.store.study.get_trials(deepcopy=False)
        except StorageLost:  # said in ``stopped``; the counts are the storage's to give
            trials = []
        counts = dict(Counter(t.state.name for t in trials))
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
            out=str(self.spec.out),
            storage=mask_password(self.spec.storage_url),
            stopped=self.stopped(),
            signal=self.signal,
        )


def run_study(
    spec: StudyConfig,
    progress: bool = True,
    on_event: Event | None = None,
    stop: StopRequest | None = None,
) -> Summary:
    """Check what can be checked without Ray, then start or join Ray and run the study; the Ray
    this started is shut down again. ``stop``: the signals that end the study cleanly (the
    command line's; a library call leaves the signals alone)."""
    notes = preflight(spec, say=print if progress else None)  # needs no Ray
    started = connect(spec.address)
    try:
        if stop is not None:
            stop.install()  # again: ray.init set a SIGTERM handler of its own
        if spec.address != "auto":
            check_resources(spec)
        return Driver(spec, progress, on_event, notes, stop).run()
    finally:
        if started:
            ray.shutdown()
