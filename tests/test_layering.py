"""The layers of docs/design.md, checked on every import statement in the package (module level and
inside functions): nothing imports from a layer above its own, only ``population/`` imports Ray
or Optuna, ``reports/`` reaches neither torch nor Ray nor Optuna, and no module imports itself
through others. And ``eqpop report`` really starts without torch or Ray."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import eqpop

ROOT = Path(eqpop.__file__).parent

#: docs/design.md's layers, bottom (0) to top; a module takes the layer of its longest prefix here.
#: ``records`` is the on-disk contract between every writer and the readers: it sits at the
#: bottom and imports nothing from eqpop above it.
LAYERS = {
    "eqpop.io": 0, "eqpop.errors": 0, "eqpop.rng": 0, "eqpop.nets": 0, "eqpop.data": 0,
    "eqpop.records": 0, "eqpop.interrupt": 0,
    "eqpop.dynamics": 1, "eqpop.jacobian": 1, "eqpop.metrics": 1,
    "eqpop.estimators": 2, "eqpop.homeostasis": 2,
    "eqpop.config": 3, "eqpop.presets": 3,
    "eqpop.compare": 4, "eqpop.train": 4,
    "eqpop.population": 5, "eqpop.reports": 5,
    "eqpop.cli": 6, "eqpop": 6,
}  # fmt: skip
FORBIDDEN = {"eqpop.reports": {"torch", "ray", "optuna"}, "eqpop": {"ray", "optuna"}}


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module an import statement anywhere in the file names (relative ones resolved)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


GRAPH = {_module(p): _imports(p) for p in ROOT.rglob("*.py")}


def _internal(name: str) -> str | None:
    """The eqpop module ``name`` is, or is an attribute of; None outside eqpop."""
    while name and name not in GRAPH:
        name = name.rpartition(".")[0]
    return name or None


def _packages(module: str) -> set[str]:
    """The packages whose ``__init__`` importing ``module`` runs first: ``eqpop.a.b.c`` runs
    ``eqpop.a`` and ``eqpop.a.b`` (``eqpop/__init__.py`` runs whoever asks, and loads its names
    lazily)."""
    parts = module.split(".")
    return {".".join(parts[:k]) for k in range(2, len(parts))}


def _deps(module: str) -> set[str]:
    """The eqpop modules ``module`` imports, with the packages whose ``__init__`` that runs
    (an import of ``eqpop.reports.x`` runs ``eqpop/reports/__init__.py`` too), not counting
    ``module``'s own ancestor packages (they ran before it)."""
    found = {_internal(name) for name in GRAPH[module]} - {None, module}
    found |= {package for dep in found for package in _packages(dep)}
    return {d for d in found if not module.startswith(d + ".") and d != module}


def _layer(module: str) -> int:
    prefix = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[prefix]


def test_no_module_imports_from_a_higher_layer():
    wrong = [
        f"{mod} (layer {_layer(mod)}) imports {dep} (layer {_layer(dep)})"
        for mod in GRAPH
        for dep in _deps(mod)
        if _layer(dep) > _layer(mod)
    ]
    assert not wrong, "\n".join(wrong)


def test_only_population_imports_ray_or_optuna_and_reports_no_torch():
    wrong = []
    for mod, names in GRAPH.items():
        roots = {n.split(".")[0] for n in names}
        for prefix, banned in FORBIDDEN.items():
            if mod.startswith("eqpop.population"):
                continue
            if (mod == prefix or mod.startswith(prefix + ".")) and roots & banned:
                wrong.append(f"{mod} imports {sorted(roots & banned)}")
    assert not wrong, "\n".join(wrong)


def _reach(start: str) -> set[str]:
    """Every module ``start`` may import, directly or through eqpop modules."""
    seen, todo = set(), [start]
    while todo:
        mod = todo.pop()
        external = {n for n in GRAPH.get(mod, ()) if _internal(n) is None}
        for dep in (_deps(mod) if mod in GRAPH else set()) | external:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_reports_reach_neither_torch_nor_ray_nor_optuna():
    for mod in (m for m in GRAPH if m.startswith("eqpop.reports")):
        roots = {n.split(".")[0] for n in _reach(mod)}
        assert not roots & {"torch", "ray", "optuna"}, mod


def test_no_import_cycles():
    for mod in GRAPH:
        # a package's __init__ may import its own submodules; anything else reaching back is a cycle
        back = [d for d in _deps(mod) if mod in _reach(d) and not d.startswith(mod + ".")]
        assert not back, f"{mod} <-> {back}"


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """A compare file and a train run: what ``eqpop report`` reads, made here with torch."""
    root = tmp_path_factory.mktemp("outputs")
    fast = ["--batch", "8", "--t-free", "30", "--t-nudge", "10", "--periods", "1",
            "--steps-per-point", "5", "--betas", "0.5", "--n-points", "2", "--quiet"]  # fmt: skip
    from eqpop.cli import main

    assert main(["compare", "--out", str(root / "cmp" / "compare.parquet"), *fast]) == 0
    train = ["train", "--quiet", "--epochs", "1", "--set", "hidden=[8]", "--set", "t_free=5",
             "--set", "t_nudge=3", "--batch-size", "256", "--out", str(root / "run")]  # fmt: skip
    assert main(train) == 0
    return root


def test_eqpop_report_loads_neither_torch_nor_ray(outputs):
    code = (
        "import sys; from eqpop.cli import main; "
        f"rc = main(['report', {str(outputs)!r}, '--out', {str(outputs / 'rep')!r}]); "
        "print(rc, sorted(m for m in ('torch', 'ray') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split("\n")[-2] == "0 []", done.stdout + done.stderr[-2000:]
    assert (outputs / "rep" / "report.html").is_file()


def test_no_help_imports_torch_pandas_ray_or_optuna():
    """``eqpop --help`` took ~7 s on a slow day: building every command's flags imported
    ``eqpop.compare``, and with it torch and pandas. Every command's help, in one fresh
    interpreter."""
    code = (
        "import sys; from eqpop.cli import main\n"
        "for command in ([], ['compare'], ['train'], ['study'], ['report'], ['compact']):\n"
        "    try: main(command + ['--help'])\n"
        "    except SystemExit: pass\n"
        "print(sorted(m for m in ('torch', 'pandas', 'ray', 'optuna') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout[-500:] + done.stderr[-2000:]
    assert done.stdout.count("usage: eqpop") == 6
