"""Small enough to read: no module over 400 lines and no function over 40 (its docstring counted) in services/."""

from __future__ import annotations

import ast
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "services"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 40


def modules() -> list[Path]:
    found = sorted(SERVICES.rglob("*.py"))
    assert len(found) > 50, f"only {len(found)} modules under {SERVICES}: the scan proves nothing"
    return found


def name(path: Path) -> str:
    return path.relative_to(SERVICES).as_posix()


def long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{name(path)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]


def test_no_module_is_over_400_lines() -> None:
    long = []
    for path in modules():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            long.append(f"{name(path)} ({lines} lines)")
    assert not long, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(long)


def test_no_function_is_over_40_lines() -> None:
    long = [line for path in modules() for line in long_functions(path)]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)
