"""A study of thousands of tiny trials: what the driver costs per trial and per epoch report
(ask, tell, pruner, Parquet), how busy the actors are, how the driver's memory grows, how many
Parquet files the study holds while it runs and after the compaction that ends it, and how long
``pandas.read_parquet`` takes on each dataset. A reader in another process reads the running
study every few seconds (what a user watching it does) and checks every read: no error, no
(trial, epoch) twice.

    OMP_NUM_THREADS=1 python benchmarks/population.py --trials 2000 --actors 2

``--rows N`` measures the writer alone at a size where parts roll and compaction has work: N
metrics rows in flushes of ``--rows-per-flush``, against the writer before rolled parts (one new
part per flush) in the same run.

Driver overhead is the wall time of its loop minus the time it waits for an actor's answer
(``ray.wait``), the final compaction aside; the parts named below are timed where the driver
calls them. Prints a Markdown table and writes the numbers as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from eqpop import records
from eqpop.population.definition.spec import StudyConfig, build_study
from eqpop.population.execution import driver as driver_module
from eqpop.population.execution.pool import ActorPool
from eqpop.population.results.sink import Sink
from eqpop.population.storage.store import TrialStore
from eqpop.records import COMPARISONS, METRICS, TRIALS, part_files

KEYS = {TRIALS: ["trial"], METRICS: ["trial", "epoch"], COMPARISONS: ["trial", "epoch"]}
DATASETS = tuple(KEYS)  # a search writes no PBT lineage

#: what the driver's time is split into: label -> (class, method)
PARTS: dict[str, tuple[type, str]] = {
    "ask, suggest, submit": (driver_module.Driver, "_launch"),
    "report": (optuna.trial.Trial, "report"),
    "pruner (should_prune)": (optuna.trial.Trial, "should_prune"),
    "tell": (TrialStore, "tell"),
    "fail": (TrialStore, "fail"),
    "Parquet (epochs, before tell)": (Sink, "flush_epochs"),
    "Parquet (periodic flush)": (Sink, "maybe_flush"),
    "compaction": (Sink, "compact"),
    "waiting for actors": (ActorPool, "wait"),
}


class Clock:
    """Wall time spent in wrapped methods, by label (nested calls count in each label)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.first: dict[str, float] = {}  # when each label was first called

    def wrap(self, label: str, owner: type, name: str) -> None:
        inner: Callable[..., Any] = getattr(owner, name)

        @functools.wraps(inner)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            self.first.setdefault(label, start)
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - start
                self.calls[label] += 1

        setattr(owner, name, timed)


def rss_mib() -> float:
    """This process's resident memory (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def read_all(out: Path) -> dict[str, Any]:
    """Read every dataset once as a user would; (trial, epoch) keys must be unique."""
    result: dict[str, Any] = {}
    for name in DATASETS:
        start = time.perf_counter()
        frame = pd.read_parquet(out / name)
        seconds = time.perf_counter() - start
        duplicated = int(frame.duplicated(subset=[*KEYS[name], *_layer(frame)]).sum())
        files = len(part_files(out / name))
        result[name] = dict(
            rows=len(frame),
            trials=int(frame.trial.nunique()),
            files=files,
            seconds=seconds,
            duplicated=duplicated,
        )
    return result


def _layer(frame: pd.DataFrame) -> list[str]:
    """A comparison row is one estimate on one layer."""
    cols = ["method", "beta", "n_points", "layer"]
    return cols if set(cols) <= set(frame.columns) else []


def one_part_per_trial(out: Path, folder: Path) -> dict[str, float]:
    """The baseline: each dataset rewritten as one part per trial, the files the writer left
    before parts were rolled (one per flush, and one flush per trial end); median read s."""
    seconds = {}
    for name in DATASETS:
        frame = pd.read_parquet(out / name)
        target = folder / name
        target.mkdir(parents=True)
        for trial, rows in frame.groupby("trial"):
            rows.to_parquet(target / f"part-{trial:06d}.parquet", index=False)
        seconds[name] = statistics.median(_timed_read(target) for _ in range(5))
    return seconds


def _timed_read(folder: Path) -> float:
    start = time.perf_counter()
    pd.read_parquet(folder)
    return time.perf_counter() - start


def watch(out: str, every: float, stop: Any, log: Any) -> None:
    """Another process: read the running study every ``every`` seconds, report each read."""
    while not stop.is_set():
        if all(part_files(Path(out) / name) for name in DATASETS):
            try:
                log.put(dict(time=time.time(), **read_all(Path(out))))
            except Exception as err:  # noqa: BLE001 - what a reader would have seen
                log.put(dict(time=time.time(), error=f"{type(err).__name__}: {err}"))
        stop.wait(every)


def bench_study(args: argparse.Namespace, out: Path) -> StudyConfig:
    """Tiny digits trials: ~0.27 s an epoch on one core of the 2-core machine, so that a trial
    pruned after 2-3 epochs lasts about a second; a probe at the last epoch."""
    return build_study(
        name="bench",
        preset="digits-mlp",
        base=dict(
            hidden=[32],
            epochs=args.epochs,
            t_free=80,
            t_nudge=30,
            batch_size=64,
            probe_batch=16,
            periods=1,
            steps_per_point=4,
            n_points=2,
        ),
        space={
            "lr": {"low": 0.01, "high": 0.3, "log": True},
            "beta": {"low": 0.05, "high": 1.0, "log": True},
            "method": {"choices": ["classic", "hep"]},
        },
        trials=args.trials,
        actors=args.actors,
        out=out,
        probe={"every": args.epochs, "batch": 8, "betas": [0.5], "n_points": [2]},
    )


def writer_scale(rows: int, per_flush: int, folder: Path) -> None:
    """The writer alone: ms per flush, files, read s before and after compaction, and the
    same rows written one part per flush (the baseline: what the writer did before)."""
    from eqpop.population.results.writer import PartWriter

    metrics = records.metrics_schema(2)
    batch = [
        {"study": "bench", "trial": 0, "epoch": 1, **dict.fromkeys(records.METRIC_FIELDS, 0.5)}
    ] * per_flush
    results = {}
    for label, part_bytes in (("rolled parts", None), ("one part per flush", 0)):
        root = folder / label.replace(" ", "-")
        kwargs = {} if part_bytes is None else {"part_bytes": part_bytes}
        writer = PartWriter(root, {METRICS: metrics}, **kwargs)
        flushes = []
        for _ in range(rows // per_flush):
            writer.add(METRICS, batch)
            start = time.perf_counter()
            writer.flush()
            flushes.append(time.perf_counter() - start)
        files = len(part_files(root / METRICS))
        read = statistics.median(_timed_read(root / METRICS) for _ in range(3))
        start = time.perf_counter()
        compacted = writer.compact()[METRICS]
        compact_s = time.perf_counter() - start
        after = statistics.median(_timed_read(root / METRICS) for _ in range(3))
        results[label] = (flushes, files, read, compacted[1], compact_s, after)
    print(f"\n{rows} metrics rows, {per_flush} per flush ({rows // per_flush} flushes)\n")
    header = (
        "writer | ms per flush (median, max) | files | read s | compaction s | after: files, read s"
    )
    print(f"| {header} |")
    print("|---|---|---|---|---|---|")
    for label, (flushes, files, read, after_files, compact_s, after) in results.items():
        flush_ms = f"{1000 * statistics.median(flushes):.1f}, {1000 * max(flushes):.1f}"
        print(
            f"| {label} | {flush_ms} | {files} | {read:.3f} | {compact_s:.2f} "
            f"| {after_files}, {after:.3f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10, help="epochs of a trial not pruned")
    parser.add_argument("--read-every", type=float, default=20.0, help="seconds between reads")
    parser.add_argument("--out", type=Path, help="study folder (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="write the numbers here too")
    parser.add_argument("--rows", type=int, help="measure the writer alone with this many rows")
    parser.add_argument("--rows-per-flush", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.rows:
            writer_scale(args.rows, args.rows_per_flush, Path(tmp))
        else:
            run(args, args.out or Path(tmp) / "bench")


def run(args: argparse.Namespace, out: Path) -> None:
    spec = bench_study(args, out)
    clock = Clock()
    for label, (owner, name) in PARTS.items():
        clock.wrap(label, owner, name)
    driver_module.connect("local", num_cpus=args.actors)
    memory = [(0, rss_mib())]
    finished: list[int] = [0]
    compacted: dict[str, Any] = {}

    def on_event(kind: str, info: dict[str, Any]) -> None:
        if kind in ("complete", "pruned", "fail"):
            finished[0] += 1
            if finished[0] % max(1, args.trials // 8) == 0:
                memory.append((finished[0], rss_mib()))
        if kind == "compacted":
            compacted.update(info["files"])

    spawn = multiprocessing.get_context("spawn")  # not a fork of a process running Ray
    stop, log = spawn.Event(), spawn.Queue()
    reader = spawn.Process(target=watch, args=(str(out), args.read_every, stop, log))
    reader.start()
    start = time.perf_counter()
    summary = driver_module.Driver(spec, progress=True, on_event=on_event).run()
    wall = time.perf_counter() - start
    memory.append((finished[0], rss_mib()))
    stop.set()
    reader.join()
    reads = []
    while not log.empty():
        reads.append(log.get())
    final = [read_all(out) for _ in range(5)]
    baseline = one_part_per_trial(out, out.parent / "one-part-per-trial")
    report(args, clock, start, summary, wall, memory, compacted, reads, final, baseline)


def report(
    args: argparse.Namespace,
    clock: Clock,
    begun: float,
    summary: driver_module.Summary,
    wall: float,
    memory: list[tuple[int, float]],
    compacted: dict[str, Any],
    reads: list[dict[str, Any]],
    final: list[dict[str, Any]],
    baseline: dict[str, float],
) -> None:
    epochs = clock.calls["report"]
    trials = sum(summary.counts.values())
    waiting = clock.seconds["waiting for actors"]
    setup = clock.first["ask, suggest, submit"] - begun  # storage, lease, actors: once
    overhead = wall - setup - waiting - clock.seconds["compaction"]
    print(f"\n{trials} trials ({summary.counts}), {epochs} epoch reports, {args.actors} actors")
    print(
        f"wall {wall:.0f} s (start-up {setup:.1f} s); busy fraction {summary.busy_fraction:.3f}\n"
    )
    print("| driver part | calls | total s | ms per trial | ms per epoch report |")
    print("|---|---|---|---|---|")
    rows = {**{k: clock.seconds[k] for k in PARTS}, "overhead (all but waiting)": overhead}
    for label, seconds in rows.items():
        calls = clock.calls.get(label, "")
        per_trial, per_epoch = 1000 * seconds / trials, 1000 * seconds / max(1, epochs)
        print(f"| {label} | {calls} | {seconds:.1f} | {per_trial:.2f} | {per_epoch:.2f} |")
    shown = ", ".join(f"{n}: {m:.0f}" for n, m in memory)
    print(f"\ndriver memory (finished trials: RSS MiB): {shown}")
    print(
        "\n| dataset | rows | files while running (last read) | files after | read s "
        "| one part per trial: files, read s | ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    ok_reads = [r for r in reads if "error" not in r]
    for name in DATASETS:
        last = ok_reads[-1][name]["files"] if ok_reads else "-"
        seconds = statistics.median(f[name]["seconds"] for f in final)
        after = final[0][name]
        groups = after["trials"]
        ratio = baseline[name] / seconds
        print(
            f"| {name} | {after['rows']} | {last} | {after['files']} | {seconds:.3f} "
            f"| {groups}, {baseline[name]:.3f} | {ratio:.0f} |"
        )
    errors = [r["error"] for r in reads if "error" in r]
    dup = sum(r[n]["duplicated"] for r in ok_reads for n in DATASETS)
    dup += sum(final[0][n]["duplicated"] for n in DATASETS)
    slowest = max((r[n]["seconds"] for r in ok_reads for n in DATASETS), default=float("nan"))
    print(
        f"\nreads while running: {len(reads)}, failed {len(errors)}, duplicated keys {dup}, "
        f"slowest dataset read {slowest:.3f} s; compaction {compacted}"
    )
    for error in errors:
        print(f"  read error: {error}")
    if args.json:
        args.json.write_text(
            json.dumps(
                dict(
                    trials=trials,
                    counts=summary.counts,
                    epoch_reports=epochs,
                    wall_s=wall,
                    setup_s=setup,
                    busy_fraction=summary.busy_fraction,
                    seconds=rows,
                    calls=dict(clock.calls),
                    memory_mib=memory,
                    compacted=compacted,
                    reads=reads,
                    final=final,
                    one_part_per_trial_read_s=baseline,
                ),
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
