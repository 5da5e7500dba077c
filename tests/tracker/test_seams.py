"""The tracker's seams: the journal's interfaces are all the rest sees of it, and production code has no test hook.

Only the code that builds a journal names its class (``service/standalone.py``, ``service/rooms.py``
for the other rooms and the conversations, ``service/replicated.py``, and on replicas
``service/replica_rooms.py`` for those, whose ``HubJournal`` is a ``RedisJournal`` read by the replica's
one ``StreamHub``); nothing asks ``isinstance`` of
one; the Redis journal offers nothing beyond ``Journal`` and ``Replication``. The environment is read in
``service/settings.py`` (the entry points only hand it over), and no module reads a
``TRACKER_TEST_*`` variable: the reliability tests install their hooks themselves.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from chat_tracker.journal.protocol import Journal, Replication
from chat_tracker.journal.redis_keys import Keys
from chat_tracker.journal.redis_stream import RedisJournal

PACKAGE = Path(__file__).resolve().parents[2] / "services" / "tracker" / "chat_tracker"
BUILDERS = {
    "LocalJournal": {"service/standalone.py", "service/rooms.py"},
    "RedisJournal": {"service/replicated.py", "journal/redis_hub.py"},  # the hub's journals are Redis journals
    "HubJournal": {"service/replica_rooms.py"},
}
# The process's environment is handed to main by the command-line entry points and read in settings.py.
MAY_NAME_ENVIRON = {
    "service/settings.py",
    "runtime/cli.py",
    "runtime/archive_cli.py",
    "runtime/accounts_cli.py",
}  # entry points


def modules() -> dict[str, ast.Module]:
    return {
        str(path.relative_to(PACKAGE)): ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_only_the_builders_name_a_concrete_journal() -> None:
    named: dict[str, set[str]] = {name: set() for name in BUILDERS}
    for where, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chat_tracker."):
                for alias in node.names:
                    if alias.name in named:
                        named[alias.name].add(where)
    assert named == BUILDERS


def test_nothing_asks_isinstance_of_a_journal() -> None:
    asked = []
    for where, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "isinstance" and len(node.args) == 2:
                names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                if names & {"LocalJournal", "RedisJournal", "Journal", "Replication"}:
                    asked.append(f"{where}:{node.lineno}")
    assert not asked, asked


def _public(cls: type) -> set[str]:
    members = {name for name, _ in inspect.getmembers(cls) if not name.startswith("_")}
    return members | set(getattr(cls, "__annotations__", {}))


def test_the_redis_journal_offers_only_its_two_interfaces() -> None:
    journal = RedisJournal(
        "redis://127.0.0.1:1/0",
        Keys(),
        replica=1,
        epoch="e",
        last_seq=0,
        history_size=8,
        gather=lambda: 0.0,
        password=None,
    )  # nothing connects before start()
    offered = _public(RedisJournal) | {name for name in vars(journal) if not name.startswith("_")}
    assert offered == _public(Journal) | _public(Replication)


def test_the_environment_is_read_in_settings_only() -> None:
    found = []
    for where, tree in modules().items():
        for node in ast.walk(tree):
            name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
            if name == "getenv" or (name == "environ" and where not in MAY_NAME_ENVIRON):
                found.append(f"{where}:{getattr(node, 'lineno', 0)}")
    assert not found, found


def test_no_production_module_carries_a_test_hook() -> None:
    hooked = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if "TRACKER_TEST_" in path.read_text(encoding="utf-8") or "KillSwitch" in path.read_text(encoding="utf-8")
    ]
    assert not hooked, hooked
