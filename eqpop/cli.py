"""eqpop: gradient estimators of equilibrium networks, compared, trained and searched at scale.

Bad input (``errors.UserError``): one line on stderr naming the problem, exit code 2, nothing
written. Any other exception is a bug: its traceback, exit 1."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (no usage dump) and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _list_of(kind: Callable[[str], float | int]) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        try:
            return tuple(kind(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {kind.__name__}s, got {text!r}"
            ) from None

    return parse


def _flag_type(annotation: Any) -> tuple[Callable[[str], Any] | None, dict[str, Any]]:
    """How a flag reads a config field of this type: (converter, extra add_argument keywords);
    None for a switch (``store_true``)."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if annotation is bool:
        return None, {}
    if get_origin(annotation) is Literal:
        return str, {"choices": list(args)}
    if get_origin(annotation) is list:
        return _list_of(args[0]), {}
    if args:  # X | None
        return _flag_type(args[0])
    return annotation, {}


def _checked(model: Any, name: str, convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """``convert``, then the field's own checks (its type, bounds and validators; not those
    across fields, whose other flags may come later): a bad value names its flag."""

    def parse(text: str) -> Any:
        from pydantic import ValidationError

        value = convert(text)
        try:
            model.__pydantic_validator__.validate_assignment(model.model_construct(), name, value)
        except ValidationError as err:
            mine = [e for e in err.errors() if tuple(e["loc"][:1]) == (name,)]
            if mine:
                msg = mine[0]["msg"].removeprefix("Value error, ")
                raise argparse.ArgumentTypeError(f"{name}: {msg}") from None
        return value

    return parse


def _add_field_flags(
    p: argparse.ArgumentParser | argparse._ActionsContainer,
    model: Any,
    names: Sequence[str],
    default: Any = None,
) -> None:
    """A flag ``--a-name`` per config field, typed, checked and described as the field is; an
    unset flag is ``default`` (None: left to the config; ``argparse.SUPPRESS``: absent)."""
    for name in names:
        info = model.model_fields[name]
        kind, extra = _flag_type(info.annotation)
        shown = info.default
        if isinstance(shown, list):
            shown = ",".join(map(str, shown))
        text = f"{info.description or name.replace('_', ' ')} (default {shown})"
        flag = f"--{name.replace('_', '-')}"
        if kind is None:
            p.add_argument(flag, dest=name, action="store_true", default=default, help=text)
        else:
            kind = _checked(model, name, kind)
            p.add_argument(flag, dest=name, type=kind, default=default, help=text, **extra)


def _add_compare(p: argparse.ArgumentParser) -> None:
    from eqpop.config import CompareConfig

    tie = ("symmetric", "asymmetry_angle")
    unset = argparse.SUPPRESS  # CompareConfig's defaults apply
    _add_field_flags(
        p, CompareConfig, [n for n in CompareConfig.model_fields if n not in tie], unset
    )
    _add_field_flags(p.add_mutually_exclusive_group(), CompareConfig, tie, unset)
    p.add_argument("--quiet", action="store_true", help="no progress bar, no table")
    p.set_defaults(run=_run_compare)


def _run_compare(args: argparse.Namespace) -> int:
    import pandas as pd

    from eqpop.compare import run_compare, summary
    from eqpop.config import CompareConfig, build_compare
    from eqpop.io import write_parquet_atomic

    fields = CompareConfig.model_fields
    cfg = build_compare(**{k: v for k, v in vars(args).items() if k in fields})
    frame = run_compare(cfg, progress=not args.quiet)
    write_parquet_atomic(frame, cfg.out)
    if not args.quiet:
        with pd.option_context("display.width", 120, "display.max_rows", 200):
            print(summary(frame).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"wrote {len(frame)} rows to {cfg.out}")
    return 0


#: ``eqpop train`` flags, one per config field (any other field: ``--set``)
_TRAIN_FLAGS = (
    "method",
    "beta",
    "n_points",
    "lambda_homeo",
    "epochs",
    "batch_size",
    "seed",
    "data_dir",
    "device",
    "net",
    "dataset",
    "lr",
    "init_ep",
)


def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", help="named paper setting, e.g. digits-mlp, cifar10-conv")
    p.add_argument("--config", type=Path, help="TOML or YAML file of config fields")
    from eqpop.config import TrainConfig

    _add_field_flags(p, TrainConfig, _TRAIN_FLAGS)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other config field, e.g. --set t_free=100 --set hidden=[256,128]",
    )
    p.add_argument("--out", type=Path, help="run folder (default reports/train/<name>-s<seed>)")
    p.add_argument("--resume", action="store_true", help="continue from the run's checkpoint")
    p.add_argument(
        "--allow-new-data",
        action="store_true",
        help="with --resume: go on although the data differ from those the run was trained on",
    )
    p.add_argument(
        "--replay",
        type=Path,
        metavar="STUDY",
        help="retrain the schedule of a PBT study's lineage from scratch (with --trial)",
    )
    p.add_argument("--trial", type=int, help="with --replay: the lineage's last trial")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_train)


def _train_config(args: argparse.Namespace):
    from eqpop.config import build_config, parse_override, read_config_file
    from eqpop.presets import preset

    values: dict = preset(args.preset) if args.preset else {}
    if args.config:
        values.update(read_config_file(args.config))
    for name in _TRAIN_FLAGS:
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    values.update(parse_override(item) for item in args.set)
    return build_config(**values)


def _run_train(args: argparse.Namespace) -> int:
    from eqpop.errors import ConfigError
    from eqpop.interrupt import Interrupted, StopRequest
    from eqpop.records import CHECKPOINT, RUN_METRICS
    from eqpop.train import Diverged, Trainer

    if args.replay is not None or args.trial is not None:
        return _run_replay(args)
    cfg = _train_config(args)
    name = args.preset or f"{cfg.dataset}-{cfg.net}-{cfg.method}"
    out = args.out or Path("reports/train") / f"{name}-s{cfg.seed}"
    if (out / CHECKPOINT).exists() and not args.resume:
        raise ConfigError(f"out: {out} already holds a run; pass --resume or another --out")
    trainer = Trainer(cfg, out)  # loads and checks the data before anything is written
    if args.resume and trainer.resume(args.allow_new_data) and not args.quiet:
        print(f"resuming {out} after epoch {trainer.epoch}")
    try:
        with StopRequest() as stop:
            frame = trainer.fit(progress=not args.quiet, stop=stop)
    except Diverged as err:  # a finding, not a crash: the epochs before it are kept
        print(
            f"eqpop train: diverged: {err}; {trainer.epoch} epochs recorded in {out / RUN_METRICS}",
            file=sys.stderr,
        )
        return 1
    except Interrupted as stopped:
        print(
            f"eqpop train: interrupted ({stopped.name}); {trainer.saved_epoch} epochs kept in "
            f"{out}; the same command with --resume continues",
            file=sys.stderr,
        )
        return stopped.exit_code
    last = frame.iloc[-1]
    print(
        f"epoch {int(last.epoch)}: val error {last.val_error:.4f} "
        f"(top-5 {last.val_top5_error:.4f}); metrics in {out / RUN_METRICS}"
    )
    return 0


def _run_replay(args: argparse.Namespace) -> int:
    from eqpop.errors import ConfigError

    if args.replay is None or args.trial is None:
        raise ConfigError("--replay and --trial go together: the study folder and its trial")
    given = [f"--{k}" for k in ("preset", "config", "resume") if getattr(args, k)]
    given += [f"--{k.replace('_', '-')}" for k in _TRAIN_FLAGS if getattr(args, k) is not None]
    if given or args.set:
        flags = ", ".join(given + ["--set"] * bool(args.set))
        raise ConfigError(f"--replay: takes every setting from the study; leave out {flags}")
    from eqpop.population.execution.replay import replay
    from eqpop.records import RUN_METRICS

    out = args.out or Path("reports/replay") / f"{args.replay.name}-trial{args.trial}"
    frame = replay(args.replay, args.trial, out, progress=not args.quiet)
    last = frame.iloc[-1]
    segments = frame.segment.nunique()
    print(
        f"epoch {int(last.epoch)}: val error {last.val_error:.4f} after {segments} segments; "
        f"metrics (with each epoch's settings) in {out / RUN_METRICS}"
    )
    return 0


def _add_study(p: argparse.ArgumentParser, builtin: str | None = None) -> None:
    """``eqpop study``'s flags; for a ``studies/<builtin>.py`` script, without the study
    argument and with that study's own defaults in the help."""
    values: dict = {}
    name, address = (
        "<study>",
        "Ray: local (default), auto (join the cluster running here), host:port",
    )
    if builtin is None:
        p.add_argument(
            "study",
            nargs="?",
            default="digits",
            help="a built-in name (digits, fashion_mnist, cifar10, cifar100, imagenet32) "
            "or a TOML/YAML study file; default: digits",
        )
    else:
        from eqpop.population.definition.builtin import BUILTIN

        p.set_defaults(study=builtin, address="detect")
        values, name = BUILTIN[builtin], builtin
        address = (
            "Ray (default: join the Ray cluster of this machine, found as "
            "ray.init(address='auto') finds it, else start a local one), local, auto, host:port"
        )

    def default(key: str) -> str:
        return f" (default {values[key]})" if key in values else ""

    p.add_argument(
        "--trials", type=int, help=f"finished (complete or pruned) trials{default('trials')}"
    )
    p.add_argument("--timeout", type=float, help="seconds after which no new trial starts")
    p.add_argument("--actors", type=int, help=f"Ray actors, one network each{default('actors')}")
    p.add_argument(
        "--gpus-per-actor",
        type=float,
        help=f"1, a fraction for small nets, 0 on CPU{default('gpus_per_actor')}",
    )
    p.add_argument(
        "--storage",
        help="Optuna storage: SQLAlchemy URL or journal file path "
        f"(default reports/{name}/optuna.journal)",
    )
    p.add_argument("--out", type=Path, help=f"study folder (default reports/{name})")
    p.add_argument("--data-dir", type=Path, help="where the data set's files are")
    p.add_argument("--name", help=f"study name (default {name if builtin else 'the file name'})")
    p.add_argument("--resume", action="store_true", help="continue a study that must exist")
    p.add_argument("--address", help=address)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a training config field for every trial (--set epochs=5) or a study field "
        "(--set cpus_per_actor=2, --set probe.every=2; study.seed for the sampler's seed)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar, no event lines")
    p.set_defaults(run=_run_study)


def _run_study(args: argparse.Namespace) -> int:
    from eqpop.population.cli import FLAGS, StudyRequest, run_study_command

    fields = {name: getattr(args, name) for name in FLAGS}
    request = StudyRequest(
        args.study, fields, tuple(args.set), args.data_dir, args.resume, args.quiet
    )
    return run_study_command(request)


def _add_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument("--out", type=Path, help="where to write (default PATH/report)")
    p.set_defaults(run=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from eqpop.errors import printable
    from eqpop.population.storage.importance import study_importances
    from eqpop.reports.html import write_report

    def warn(text: str) -> None:
        print(f"eqpop report: warning: {printable(text)}", file=sys.stderr)

    first = args.paths[0]
    out = args.out or (first.parent if first.is_file() else first) / "report"
    paths = list(args.paths)
    page = write_report(paths, out, study_importances(paths, warn), warn)
    print(f"wrote tables (.md, .csv), figures (.png) and {page}")
    return 0


def _add_compact(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, metavar="PATH", help="a study folder (reports/<study>)")
    p.add_argument(
        "--storage", help="the study's Optuna storage, when study.json cannot name it in full"
    )
    p.add_argument(
        "--repair",
        action="store_true",
        help="first set aside what cannot be read (a damaged journal record and what the "
        "records after it wrote, damaged Parquet parts), keeping every row that still reads",
    )
    p.set_defaults(run=_run_compact)


def _run_compact(args: argparse.Namespace) -> int:
    from eqpop.population.cli import CompactRequest, run_compact_command

    return run_compact_command(CompactRequest(args.path, args.storage, args.repair))


def script_main(study: str, argv: list[str]) -> int:
    """``studies/<study>.py``: the built-in study as a standalone Ray driver, joining the Ray
    cluster it runs on (``ray submit``) or starting a local one."""
    from eqpop.population.definition.builtin import BUILTIN

    parser = _Parser(
        prog=Path(sys.argv[0]).name,
        description=f"The built-in study {study!r} ({BUILTIN[study].get('preset')}) as a "
        "standalone Ray driver; running it again continues the study.",
    )
    _add_study(parser, builtin=study)
    return _dispatch(parser, ["study"], argv)


#: sub-command -> (one-line help, description, what adds its arguments)
COMMANDS: dict[str, tuple[str, str, Callable[[argparse.ArgumentParser], None]]] = {
    "compare": (
        "every estimator on one net and one batch, over |beta| and N (Fig. 2a-b)",
        "Estimate with every registered estimator on one batch of the bundled digits and write "
        "one Parquet row per (method, beta, n_points, layer).",
        _add_compare,
    ),
    "train": (
        "train one network with one estimator; one metrics row per epoch",
        "Train one equilibrium network. The config is built from --preset, then --config, then "
        "the flags, then --set key=value; it is checked before anything runs.",
        _add_train,
    ),
    "study": (
        "a population of trainings searched by Optuna on Ray actors (Parquet + storage)",
        "Run or continue a study: Ray actors train one trial each, epoch by epoch, Optuna "
        "(ask/tell) chooses the next setting and prunes; trials, metrics and estimator "
        "comparisons stream to reports/<study>/. Re-running the same command continues it.",
        _add_study,
    ),
    "compact": (
        "rewrite a study's Parquet datasets as a handful of files each",
        "Compact a study folder that no driver runs now: each dataset's part files become a "
        "few large ones, switched in at once (a reader never sees both or neither, a killed "
        "compaction loses nothing). A study's driver does this itself when it ends.",
        _add_compact,
    ),
    "report": (
        "the papers' tables and figures, and report.html, from studies and runs",
        "Read one or more study folders, eqpop train run folders or eqpop compare outputs (or a "
        "folder holding several) and write Markdown/CSV tables, PNG figures and a "
        "self-contained report.html. Works on a study that is still running.",
        _add_report,
    ),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every sub-command, only ``command``'s with its arguments: a command imports only what it
    needs, and no ``--help`` (``eqpop --help`` included) imports torch, pandas, Ray or Optuna."""
    parser = _Parser(prog="eqpop", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (summary, description, add_arguments) in COMMANDS.items():
        p = sub.add_parser(name, help=summary, description=description)
        if command == name:
            add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    return _dispatch(parser, [], argv)


def _dispatch(parser: argparse.ArgumentParser, command: list[str], argv: list[str]) -> int:
    """Parse and run one command; bad input is one line and exit 2, a full disk or a lost
    storage one line and exit 1, a signal 128 + its number."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # usage errors (exit 2) and --help (exit 0) as return codes
        return int(stop.code or 0)
    if command:
        args.command = command[0]
    from eqpop.errors import StorageLost, UserError, WriteFailed
    from eqpop.interrupt import Interrupted

    try:
        return args.run(args)
    except UserError as err:  # anything else is ours to fix: its traceback is kept
        print(f"eqpop {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (WriteFailed, StorageLost) as err:  # no room, no storage: rerun once there is
        print(f"eqpop {args.command}: error: {err}", file=sys.stderr)
        return 1
    except Interrupted as stopped:  # a second signal: at once (every write is atomic)
        print(
            f"eqpop {args.command}: stopped at once ({stopped.name}); nothing is half-written, "
            "the same command continues",
            file=sys.stderr,
        )
        return stopped.exit_code
    except KeyboardInterrupt:  # before the command took the signals
        print(f"eqpop {args.command}: interrupted (SIGINT)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
