"""The tracker's modules import each other without a cycle, and the pure core imports no I/O framework."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "services" / "tracker" / "chat_tracker"
# The chat logic: no socket, no FastAPI, no uvicorn, so it is tested without either.
PURE = ("session", "room", "journal", "claims", "policy", "delivery", "events", "dialects", "outbox")
FRAMEWORKS = ("fastapi", "starlette", "uvicorn", "asyncio.streams", "socket")


def _imports(module: Path) -> tuple[set[str], set[str]]:
    """(sibling modules, other packages) a module imports, for type checking only included: a cycle is a cycle."""
    siblings: set[str] = set()
    others: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            siblings.add((node.module or "").split(".")[0] or "__init__")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            others.add(node.module)
        elif isinstance(node, ast.Import):
            others.update(alias.name for alias in node.names)
    return siblings, others


def _graph() -> dict[str, set[str]]:
    return {path.stem: _imports(path)[0] for path in PACKAGE.glob("*.py")}


def test_no_import_cycle() -> None:
    graph = _graph()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        for imported in sorted(graph.get(name, ())):
            visit(imported, [*path, name])
        done.add(name)

    for module in sorted(graph):
        visit(module, [])


def test_the_chat_logic_imports_no_server_framework() -> None:
    for name in PURE:
        _, others = _imports(PACKAGE / f"{name}.py")
        used = sorted(o for o in others if any(o == f or o.startswith(f + ".") for f in FRAMEWORKS))
        assert not used, f"{name}.py imports {used}"
