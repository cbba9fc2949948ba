"""The folder rules of docs/ARCHITECTURE.md, checked on every import statement of coupon/ and workers/, and no import
cycle between the folders, the root modules and the workers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Which coupon packages each folder may import (besides itself). "coupon" alone means the root modules
# (create_app, settings, extensions, resources, cli): the composition root.
ALLOWED: dict[str, set[str]] = {
    "coupon.observability": set(),
    "coupon.domain": {"coupon.observability", "coupon.extensions"},
    "coupon.adapters": {"coupon.domain", "coupon.observability", "coupon.extensions"},
    "coupon.services": {"coupon.adapters", "coupon.domain", "coupon.observability", "coupon.extensions"},
    "coupon.http": {
        "coupon.services",
        "coupon.adapters",
        "coupon.domain",
        "coupon.observability",
        "coupon.extensions",
        "coupon.resources",
        "coupon.settings",
    },
    "workers": {
        "coupon",
        "coupon.services",
        "coupon.adapters",
        "coupon.domain",
        "coupon.observability",
        "coupon.extensions",
        "coupon.resources",
        "coupon.settings",
        "coupon.sweeper",
    },
}
# The root modules coupon.http imports (directly or through resources) must not import coupon.http back: that was a
# cycle (config, now settings, and resources reached into coupon.http for the trusted-proxy parser). No root module
# imports workers/.
BELOW_HTTP = ("coupon.settings", "coupon.settings_doc", "coupon.extensions", "coupon.resources", "coupon.sweeper")
# Libraries a layer must not reach for: services are plain Python, called by HTTP views, workers and the CLI.
FORBIDDEN_LIBRARIES: dict[str, set[str]] = {
    "coupon.services": {"flask", "flask_jwt_extended", "werkzeug"},
    "coupon.domain": {"flask_jwt_extended", "werkzeug", "redis", "kafka"},
    "coupon.adapters": {"flask", "flask_jwt_extended"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _folder(module: str) -> str | None:
    for folder in sorted(ALLOWED, key=len, reverse=True):
        if module == folder or module.startswith(folder + "."):
            return folder
    return None


def _is_module(name: str) -> bool:
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").exists() or base.is_dir()


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module != "coupon":
                found.append((node.lineno, node.module))
                continue
            # `from coupon import resources` imports the module coupon.resources; `from coupon import create_app`
            # the package itself
            for alias in node.names:
                module = f"coupon.{alias.name}"
                found.append((node.lineno, module if _is_module(module) else "coupon"))
    return found


def _target(imported: str) -> str:
    """The unit a rule names: a folder package, a root module, or the bare `coupon` package."""
    parts = imported.split(".")
    if parts[0] != "coupon" or len(parts) == 1:
        return imported
    return ".".join(parts[:2])


SOURCES = sorted([*ROOT.joinpath("coupon").rglob("*.py"), *ROOT.joinpath("workers").rglob("*.py")])


def test_the_rules_see_every_folder() -> None:
    folders = {_folder(_module_name(p)) for p in SOURCES}
    assert folders - {None} == set(ALLOWED), "a folder without a rule: add it to ALLOWED and docs/ARCHITECTURE.md"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_folder_rules(path: Path) -> None:
    module = _module_name(path)
    folder = _folder(module)
    if folder is None:
        return  # the composition root (coupon/__init__, config, extensions, resources, sweeper, cli): see below
    problems = []
    for line, imported in _imports(path):
        top = imported.split(".")[0]
        if top in FORBIDDEN_LIBRARIES.get(folder, set()):
            problems.append(f"line {line}: {folder} must not import {top}")
        if top not in ("coupon", "workers"):
            continue
        target = _target(imported)
        if _folder(target) == folder or target == folder:
            continue
        if target not in ALLOWED[folder] and _folder(target) not in ALLOWED[folder]:
            problems.append(f"line {line}: {folder} must not import {imported}")
    assert not problems, f"{path.relative_to(ROOT)}:\n  " + "\n  ".join(problems)


ROOT_MODULES = [p for p in SOURCES if p.parts[-2] == "coupon" and _folder(_module_name(p)) is None]


@pytest.mark.parametrize("path", ROOT_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_composition_root_imports_no_worker_and_no_cycle_through_http(path: Path) -> None:
    module = _module_name(path)
    problems = []
    for line, imported in _imports(path):
        if imported.split(".")[0] == "workers":
            problems.append(f"line {line}: {module} must not import {imported} (workers/ import coupon, not back)")
        if module in BELOW_HTTP and (imported == "coupon.http" or imported.startswith("coupon.http.")):
            problems.append(f"line {line}: {module} must not import {imported} (coupon.http imports {module})")
    assert not problems, f"{path.relative_to(ROOT)}:\n  " + "\n  ".join(problems)


def test_no_two_modules_share_a_name() -> None:
    seen: dict[str, Path] = {}
    clashes = []
    for path in SOURCES:
        if path.name == "__init__.py":
            continue
        if path.name in seen:
            clashes.append(f"{seen[path.name].relative_to(ROOT)} and {path.relative_to(ROOT)}")
        seen[path.name] = path
    assert not clashes, "modules sharing a name: " + "; ".join(clashes)


def _unit(module: str) -> str:
    """What a cycle is counted between: a folder of coupon/, a root module, the `coupon` package, a workers module."""
    return _folder(module) or module if module.startswith("coupon.") else module


def import_graph(sources: list[Path]) -> dict[str, set[str]]:
    """unit -> the units its modules import (lazy imports inside functions included: they close a cycle too)."""
    graph: dict[str, set[str]] = {}
    for path in sources:
        unit = _unit(_module_name(path))
        edges = graph.setdefault(unit, set())
        for _, imported in _imports(path):
            if imported.split(".")[0] not in ("coupon", "workers"):
                continue
            target = _unit(_target(imported) if imported.startswith("coupon") else imported)
            if target != unit:
                edges.add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle between units, as the path that closes it, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_between_the_folders_root_modules_and_workers() -> None:
    cycle = find_cycle(import_graph(SOURCES))
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_the_cycle_finder_finds_the_old_cycles() -> None:
    # The cycle this project had: the CLI imported workers.jobs for the sweep, which imports create_app (the coupon
    # package), which registers the CLI.
    graph = import_graph(SOURCES)
    graph.setdefault("coupon.cli", set()).add("workers.jobs")
    assert find_cycle(graph) is not None
    # And the other one: the resources reaching into coupon.http (for the trusted-proxy parser), which imports them.
    graph = import_graph(SOURCES)
    graph.setdefault("coupon.resources", set()).add("coupon.http")
    assert find_cycle(graph) is not None


HARNESS_AND_BENCH = sorted([*ROOT.joinpath("harness").rglob("*.py"), *ROOT.joinpath("bench").rglob("*.py")])


@pytest.mark.parametrize("path", HARNESS_AND_BENCH, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_benchmarks_and_the_harness_import_no_test(path: Path) -> None:
    # The tests may change their helpers for their own reasons; a benchmark must not break with them.
    module = _module_name(path)
    banned = ("tests",) if module.startswith("bench") else ("tests", "bench")
    problems = [f"line {line}: {imported}" for line, imported in _imports(path) if imported.split(".")[0] in banned]
    assert not problems, f"{path.relative_to(ROOT)} imports " + ", ".join(problems)
