"""The tracker's layers: each package imports only the layers below it, no module imports in a cycle, and the
core does no I/O, checked in a fresh interpreter over everything it imports."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "services" / "tracker" / "chat_tracker"
# Lowest first: a package may import itself and any package before it, never one after it.
LAYERS = ("records", "errors", "core", "journal", "storage", "replicas", "service", "transport", "http", "runtime")
# The core's own I/O-free helpers from the layer above it: the journal's interface, the room's one way out.
CORE_MAY_IMPORT = {"chat_tracker.journal.protocol"}
# What the core must never load, even indirectly: a server framework, a Redis client, or any of our
# modules that open files or sockets (every layer above the core, except the journal's interface).
FORBIDDEN_PACKAGES = ("uvicorn", "starlette", "fastapi", "redis", "websockets", "httpx", "prometheus_client")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts).removesuffix(".__init__")


def imported_modules(path: Path) -> set[str]:
    """The chat_tracker modules ``path`` imports (type-checking-only imports included: a cycle is a cycle)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "chat_tracker":
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / submodule.replace(".", "/")).with_suffix(".py").exists()
                found.add(submodule if is_module else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "chat_tracker")
    return found


def import_graph() -> dict[str, set[str]]:
    return {module_name(path): imported_modules(path) for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_graph_is_read() -> None:
    graph = import_graph()
    assert sum(len(deps) for deps in graph.values()) > 100, "the parser found almost no imports: it proves nothing"
    assert {layer_of(m) for m in graph} - {"", "__main__"} == set(LAYERS), "a package is missing from LAYERS"


def test_no_module_imports_in_a_cycle() -> None:
    graph = import_graph()
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


def test_each_layer_imports_only_the_layers_below_it() -> None:
    wrong = []
    for module, imports in import_graph().items():
        if layer_of(module) not in LAYERS:
            continue  # chat_tracker itself and __main__ sit above everything
        rank = LAYERS.index(layer_of(module))
        for imported in sorted(imports):
            if imported == "chat_tracker" or (imported in CORE_MAY_IMPORT and layer_of(module) == "core"):
                continue  # the package root holds only __version__
            if layer_of(imported) not in LAYERS or LAYERS.index(layer_of(imported)) > rank:
                wrong.append(f"{module} imports {imported}")
    assert not wrong, "imports that go up a layer:\n" + "\n".join(wrong)


def test_the_core_does_no_io_even_indirectly() -> None:
    """Import every core module in a fresh interpreter, then look at everything that got loaded."""
    core = sorted(m for m in import_graph() if layer_of(m) == "core") + sorted(CORE_MAY_IMPORT)
    probe = (
        "import importlib, json, sys\n"
        f"for name in {core!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = json.loads(result.stdout)
    assert "chat_tracker.core.room" in loaded and "chat_tracker.core.session" in loaded
    frameworks = [m for m in loaded if m.split(".")[0] in FORBIDDEN_PACKAGES]
    assert not frameworks, f"the core loads {frameworks}"
    ours = [m for m in loaded if m.startswith("chat_tracker.") and layer_of(m) not in ("core", "errors", "records")]
    assert set(ours) <= CORE_MAY_IMPORT | {"chat_tracker.journal"}, f"the core loads I/O modules of ours: {ours}"
