"""The import graph: dependencies point one way, and nothing forms a cycle.

    nada (params, errors, rundir, catalog: stdlib only)
      <- stylegan2 (the generator library)
      <- jobs (the torch-free job system)  |  invert (a user's photo: align, e4e, refine)
      <- worker (engine + Celery shell)  |  backend (HTTP)   -- never each other
      <- nada.cli (the dispatcher: loads each package's `cli` by name)

Every import statement counts, also those inside functions and under TYPE_CHECKING: a lazy
import is still a dependency. docs/architecture.md draws the same picture.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("nada", "stylegan2", "jobs", "invert", "worker", "backend", "cli")
RANK = {"nada": 0, "stylegan2": 1, "jobs": 2, "invert": 2, "worker": 3, "backend": 3, "cli": 4}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:  # alembic scripts, loaded by alembic
                found[_module_name(path)] = path
    return found


def _imports(path: Path, module: str, *, top_level_only: bool = False) -> set[str]:
    """Absolute names of what `module` imports (a `from x import y` that names a
    submodule counts as importing it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _layer(module: str) -> str:
    return module.split(".")[0]


def _project_edges(*, top_level_only: bool = False) -> dict[str, set[str]]:
    modules = _modules()
    edges: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for name in _imports(path, module, top_level_only=top_level_only):
            if name in modules and name != module:
                edges[module].add(name)
    return edges


def test_dependencies_point_down() -> None:
    upward = []
    for module, targets in _project_edges().items():
        for target in targets:
            a, b = _layer(module), _layer(target)
            if a != b and RANK[b] >= RANK[a]:
                upward.append(f"{module} -> {target} ({a} may not import {b})")
    assert not upward, "imports against the layering:\n" + "\n".join(sorted(upward))


def test_the_bottom_layer_needs_only_the_standard_library() -> None:
    modules = _modules()
    foreign = []
    for module, path in modules.items():
        if _layer(module) != "nada":
            continue
        for name in _imports(path, module):
            top = name.split(".")[0]
            if top and top != "nada" and top not in sys.stdlib_module_names:
                foreign.append(f"{module} imports {name}")
    assert not foreign, "\n".join(sorted(foreign))


def test_no_import_cycles() -> None:
    """Between module-level imports (those that run at import time), no cycle; a package
    importing its own submodules in __init__ is how packages export, not a cycle."""
    edges = _project_edges(top_level_only=True)
    for module, targets in edges.items():  # drop submodule -> its own package's __init__
        edges[module] = {t for t in targets if not module.startswith(t + ".")}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []
    cycles: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(_modules()):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    """The walker itself: a lazy import inside a function is found."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from backend.main import create_app\n")
    assert "backend.main" in _imports(source, "stylegan2.m")
