"""What a study shows while it runs and when it ends: event lines above its progress bar (and
the caller's hook, ``Event``), and the ``Summary`` of a driver run, printed as a short table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from eqpop.population.definition.spec import StudyConfig

Event = Callable[[str, dict[str, Any]], None]


def fmt(v: Any) -> str:
    """A setting as an event line shows it."""
    return f"{v:.3g}" if isinstance(v, float) else str(v)


@dataclass
class Summary:
    """What a study run did: counts by state, the best trial, how busy the actors were, and
    why it stopped early if it did."""

    study: str
    counts: dict[str, int]
    best: dict[str, Any] | None
    wall_s: float
    train_s: float
    actors: int
    out: str
    storage: str
    stopped: str | None = None
    signal: int | None = None  # the signal that stopped it (SIGINT, SIGTERM)

    @property
    def busy_fraction(self) -> float:
        """Actor time spent training over actors x wall time: 1 means no actor ever waited."""
        return self.train_s / (self.actors * self.wall_s) if self.wall_s > 0 else 0.0

    def table(self) -> str:
        counts = ", ".join(f"{v} {k.lower()}" for k, v in sorted(self.counts.items()))
        counts = counts or "no trials (or the storage could not say)"
        lines = [f"study {self.study}: {counts}"]
        if self.best:
            params = " ".join(f"{k}={fmt(v)}" for k, v in self.best["params"].items())
            value = 100 * self.best["value"]
            lines.append(f"best trial {self.best['trial']}: val error {value:.2f} %  ({params})")
        lines.append(
            f"wall {self.wall_s:.0f} s, {self.actors} actors busy training "
            f"{100 * self.busy_fraction:.0f} % of the time"
        )
        lines.append(
            f"parquet: {self.out}/{{trials,metrics,comparisons}}/  storage: {self.storage}"
        )
        return "\n".join(lines)


class Events:
    """Event lines on the screen (above the progress bar) and the caller's hook."""

    def __init__(self, spec: StudyConfig, finished: int, progress: bool, hook: Event | None):
        self.progress, self.hook = progress, hook
        self.bar = tqdm(
            total=spec.trials,
            initial=min(finished, spec.trials),
            desc=f"study {spec.name}",
            unit="trial",
            disable=not progress,
        )

    def say(self, kind: str, text: str, **info: Any) -> None:
        if self.progress:
            tqdm.write(text)
        self.notify(kind, **info)

    def notify(self, kind: str, **info: Any) -> None:
        if self.hook is not None:
            self.hook(kind, info)

    def finished(self, count: int) -> None:
        self.bar.n = count
        self.bar.refresh()
