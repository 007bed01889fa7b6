"""The study's actors: one ``TrialActor`` per slot, started once and restarted by Ray when its
process dies (``max_restarts=-1``, no task retries). Every call's result comes back through
``outcome``, which turns Ray's errors into typed outcomes; an actor that died takes no trial
until it answers a ping (which actor is where: the driver's ``TrialTable``)."""

from __future__ import annotations

import logging
import time
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from eqpop.config import TrainConfig
from eqpop.data import DataError
from eqpop.errors import ConfigError, WriteFailed
from eqpop.population.definition.spec import StudyConfig
from eqpop.population.execution.actor import LostTrial, TrialActor
from eqpop.population.execution.outcome import (
    BrokenData,
    Lost,
    Outcome,
    Raised,
    Started,
    Unwritable,
)


class ActorPool:
    def __init__(self, spec: StudyConfig):
        threads = max(1, int(spec.cpus_per_actor))
        options = dict(
            num_cpus=spec.cpus_per_actor,
            num_gpus=spec.gpus_per_actor,
            resources=dict(spec.resources_per_actor),
            max_restarts=-1,
            max_task_retries=0,
        )
        self.actors = [TrialActor.options(**options).remote(threads) for _ in range(spec.actors)]
        self.pids: dict[int, int] = {}  # process of each actor, as its last trial start said

    def start(
        self,
        actor: int,
        cfg: TrainConfig,
        run_dir: str,
        probe: dict[str, Any],
        inherit: str | None = None,
    ):
        return self.actors[actor].start.remote(cfg.model_dump_json(), run_dir, probe, inherit)

    def epoch(self, actor: int):
        return self.actors[actor].epoch.remote()

    def outcome(self, ref: ray.ObjectRef, actor: int) -> Outcome:
        """The call's result, or why there is none: a dead or blank-restarted actor is Lost
        (ping it until it answers), an error in the trial is Raised."""
        try:
            result = ray.get(ref)
        except (RayActorError, RayTaskError) as err:
            cause = getattr(err, "cause", None) or err
            if isinstance(err, RayActorError) or isinstance(cause, LostTrial):
                return Lost(type(cause).__name__)
            if isinstance(cause, WriteFailed):
                return Unwritable(str(cause))
            if isinstance(cause, DataError):
                return BrokenData(str(cause))
            return Raised(f"{type(cause).__name__}: {cause}".splitlines()[0])
        if isinstance(result, Started):
            self.pids[actor] = result.pid
        return result

    def ping(self, actor: int) -> ray.ObjectRef:
        """Calls made while Ray restarts an actor fail: this one answers once it is back."""
        return self.actors[actor].pid.remote()

    def answered(self, ping: ray.ObjectRef, actor: int) -> ray.ObjectRef | None:
        """None if the actor answered its ``ping``, else (still restarting) the next ping."""
        try:
            ray.get(ping)
            return None
        except RayActorError:
            time.sleep(0.2)
            return self.ping(actor)

    def wait(self, refs: list[ray.ObjectRef], timeout: float) -> list[ray.ObjectRef]:
        """The first of ``refs`` to be ready (or none after ``timeout`` seconds)."""
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        return ready

    def shutdown(self) -> None:
        for actor in self.actors:
            ray.kill(actor)


def connect(address: str, num_cpus: int | None = None) -> bool:
    """Start or join Ray once per process (a test session shares one local instance); True if
    this call did, so that the caller shuts it down again.

    Quietly: Ray's own notices (its token-authentication one at every start) stay out of the
    user's terminal, errors excepted; authentication stays as Ray sets it. No Ray dashboard."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = dict(
        include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR
    )
    if address == "local":
        kwargs["num_cpus"] = num_cpus
    ray.init(address=address, **kwargs)
    return True


def check_resources(spec: StudyConfig) -> None:
    """On a fixed (local) Ray instance, actors that ask for more than there is would wait
    forever: say so instead. An autoscaling cluster adds GPU nodes on demand."""
    have = ray.cluster_resources()
    if spec.gpus_per_actor > have.get("GPU", 0):
        raise ConfigError(
            f"gpus_per_actor: {spec.gpus_per_actor:g} asked, Ray has "
            f"{have.get('GPU', 0):g} GPUs here; 0 trains on CPUs"
        )
    if spec.cpus_per_actor > have.get("CPU", 0):
        raise ConfigError(
            f"cpus_per_actor: {spec.cpus_per_actor:g} asked, Ray has "
            f"{have.get('CPU', 0):g} CPUs here"
        )
