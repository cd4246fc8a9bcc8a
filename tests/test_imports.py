"""The packages' import graph: one way (api -> worker -> rife_core) and without circles.

Imports inside functions count too: a deferred import that closes a circle is still a circle, only
one that fails later and less visibly. Read from the source with `ast`, so nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("rife_core", "worker", "api")
# Who may import whom (ARCHITECTURE.md's table), by package or sub-package.
MAY_IMPORT = {
    "rife_core": {"rife_core"},
    "worker.shared": {"worker.shared", "rife_core"},
    "worker.process": {"worker.process", "worker.shared", "rife_core"},
    "worker.dev": {"worker.dev", "worker.shared", "rife_core"},
    "worker": {"worker", "worker.process"},  # worker/__main__.py: `python -m worker`
    "api": {"api", "worker.shared", "rife_core"},
}
# The one exception: `rife-video worker` starts a worker process from the API package's CLI.
ALLOWED = {("api.cli", "worker.process.main")}


def _area(module: str) -> str:
    """The row of MAY_IMPORT a module belongs to: its sub-package where the table names one."""
    parts = module.split(".")
    two = ".".join(parts[:2])
    return two if two in MAY_IMPORT else parts[0]


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """Project modules that `name` imports (a `from pkg import mod` names the module when it is one)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        out |= {t for t in targets if t in modules and t != name}
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _is_package_init(importer: str, imported: str) -> bool:
    """A package's __init__ importing its own submodules (to re-export them) is not a circle of logic."""
    return imported.startswith(importer + ".")


def test_no_import_circles():
    graph = {m: {t for t in ts if not _is_package_init(m, t)} for m, ts in _graph().items()}
    assert _cycles(graph) == []


def test_imports_flow_one_way():
    wrong = [
        f"{m} imports {t}"
        for m, ts in _graph().items()
        for t in ts
        if _area(t) not in MAY_IMPORT[_area(m)] and (m, t) not in ALLOWED
    ]
    assert wrong == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
