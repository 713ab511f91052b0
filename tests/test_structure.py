"""The package's shape: no import cycles, imports point down the layers, `plots` is a leaf.

Every `import` in every module counts, also those inside functions: a lazy import hides a cycle
from Python, not from a reader. Layers, lowest first (a module may import its own layer or lower):
base utilities, data, models, tracing, metrics, analyses, compositions, the command line.
"""
from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "soo_interp"

LAYERS: list[tuple[str, ...]] = [
    ("errors", "config", "runs", "stats", "executors"),
    ("data",),
    ("models",),
    ("tracing",),
    ("metrics",),
    ("measure", "geometry", "probes", "training", "evaluation", "organism", "plots", "rl"),
    ("experiments", "demo"),
    ("commands", "cli", "__main__", ""),
]
# plots draws DataFrames it is given: besides errors and stats it may only read the component order
PLOTS_MAY_IMPORT = {"errors", "stats", "models.sites"}


def _name(path: Path) -> str:
    parts = list(path.relative_to(PKG).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in PKG.rglob("*.py")}


def _targets(mod: str, path: Path, node: ast.AST) -> set[str]:
    """Package modules an import statement reaches (`from . import x` reaches module x)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
        return {n.removeprefix("soo_interp").lstrip(".") for n in names
                if n == "soo_interp" or n.startswith("soo_interp.")}
    if not isinstance(node, ast.ImportFrom):
        return set()
    if node.level == 0:
        if not (node.module or "").startswith("soo_interp"):
            return set()
        base = node.module.removeprefix("soo_interp").lstrip(".")
    else:
        here = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        here = [p for p in here if p]
        up = here[:len(here) - (node.level - 1)] if node.level > 1 else here
        base = ".".join(up + ([node.module] if node.module else []))
    out = {base}
    out |= {f"{base}.{a.name}".lstrip(".") for a in node.names
            if f"{base}.{a.name}".lstrip(".") in MODULES}
    return {t for t in out if t in MODULES}


@functools.cache
def import_graph() -> dict[str, set[str]]:
    graph = {}
    for mod, path in MODULES.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            deps |= _targets(mod, path, node)
        graph[mod] = deps - {mod}
    return graph


def _layer(mod: str) -> int:
    top = mod.split(".")[0]
    for i, names in enumerate(LAYERS):
        if mod in names or top in names:
            return i
    raise AssertionError(f"module {mod!r} is in no layer; add it to LAYERS in {__file__}")


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_graph_sees_lazy_and_relative_imports():
    g = import_graph()
    assert "training.losses" in g["training.trainer"]       # from .losses import ...
    assert "tracing.hooks" in g["tracing"]                  # from .hooks import ...
    assert "models.sites" in g["plots.soo"]                 # from ..models.sites import ...
    assert "plots.soo" in g["plots"]                        # from .soo import ...
    assert "tracing" in g["metrics"]                        # from .tracing import ...


def test_no_import_cycles():
    assert _cycle(import_graph()) is None, f"import cycle: {' -> '.join(_cycle(import_graph()))}"


def test_cycle_finder_finds_a_planted_cycle():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle(g) == ["a", "b", "c", "a"]


@pytest.mark.parametrize("mod", sorted(MODULES))
def test_imports_point_down_the_layers(mod):
    up = sorted(d for d in import_graph()[mod] if _layer(d) > _layer(mod))
    assert not up, f"{mod} (layer {_layer(mod)}) imports higher layers: {up}"


def test_plots_is_a_leaf():
    g = import_graph()
    plots = {m for m in g if m == "plots" or m.startswith("plots.")}
    extra = set().union(*(g[m] for m in plots)) - plots - PLOTS_MAY_IMPORT
    assert not extra, f"plots imports analysis modules {sorted(extra)}; pass it DataFrames instead"


def test_the_loader_finds_the_organism_through_the_registry():
    import soo_interp  # noqa: F401  (registers built-ins)
    from soo_interp.models.registry import builtin_models, builtin_path

    assert "organism" in builtin_models()
    assert (builtin_path("organism") / "config.json").is_file()
    assert builtin_path("no-such-model") is None


# what runs on the cell engine, and what the commands may import of the experiments package
EXPERIMENTS_PUBLIC = {"experiments", "experiments.layer_sweep", "experiments.search",
                      "experiments.verdict", "experiments.ladder", "experiments.reports",
                      "experiments.schema"}
ENGINE = {"experiments.cells", "experiments.grid", "experiments.schema"}


def _experiments(mods) -> set[str]:
    return {m for m in mods if m == "experiments" or m.startswith("experiments.")}


def test_nothing_below_the_experiments_layer_imports_it():
    below = {m for m in MODULES if _layer(m) < _layer("experiments")}
    users = sorted(m for m in below if _experiments(import_graph()[m]))
    assert not users, f"{users} import the experiments package from below it"


def test_commands_import_experiments_only_through_its_public_modules():
    g = import_graph()
    for mod in (m for m in MODULES if _layer(m) > _layer("experiments")):
        private = sorted(_experiments(g[mod]) - EXPERIMENTS_PUBLIC)
        assert not private, f"{mod} imports experiments internals {private}; use a public module"


def test_the_cell_engine_does_not_know_what_runs_on_it_and_only_reports_draw():
    g = import_graph()
    for mod in ENGINE:
        above = sorted(_experiments(g[mod]) - ENGINE)
        assert not above, f"{mod} (the cell engine) imports {above}, which run on it"
    drawers = sorted(m for m in _experiments(MODULES) if any(
        d == "plots" or d.startswith("plots.") for d in g[m]))
    assert drawers == ["experiments.reports"], f"figures drawn outside reports.py: {drawers}"
