"""Every Redis client comes from journal/redis_client.py: its role's timeouts, the password as a keyword."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from chat_tracker.journal.redis_client import ARCHIVER, COMMAND, JOURNAL, LINK, ClientRole, async_client, sync_client

PACKAGE = Path(__file__).resolve().parents[2] / "services" / "tracker" / "chat_tracker"
FACTORY = PACKAGE / "journal" / "redis_client.py"
URL = "redis://127.0.0.1:1/0"  # never connected to: building a client opens no socket


@pytest.mark.parametrize("role", [JOURNAL, LINK, ARCHIVER])
def test_an_event_loop_client_waits_as_its_role_says(role: ClientRole) -> None:
    options = async_client(URL, None, role).connection_pool.connection_kwargs
    assert (options["socket_connect_timeout"], options["socket_timeout"]) == (role.connect_timeout, role.read_timeout)
    assert options["decode_responses"] is role.decode_responses
    assert "password" not in options


def test_a_command_client_waits_as_its_role_says_and_answers_in_text() -> None:
    options = sync_client(URL, None).connection_pool.connection_kwargs
    assert (options["socket_connect_timeout"], options["socket_timeout"]) == (3.0, 5.0)
    assert options["decode_responses"] is True


def test_the_password_is_a_keyword_never_part_of_the_url() -> None:
    for client in (async_client(URL, "s3cret", JOURNAL), sync_client(URL, "s3cret", COMMAND)):
        assert client.connection_pool.connection_kwargs["password"] == "s3cret"
    assert async_client("redis://:in-url@127.0.0.1:1/0", None, LINK).connection_pool.connection_kwargs["password"] == (
        "in-url"
    )


def test_the_archiver_retries_on_its_own_so_redis_py_does_not() -> None:
    retry = async_client(URL, None, ARCHIVER).connection_pool.connection_kwargs["retry"]
    assert retry.get_retries() == 0
    assert "retry" not in async_client(URL, None, JOURNAL).connection_pool.connection_kwargs


def test_a_blocked_read_times_out_only_well_after_its_block() -> None:
    """The journal's reader and the archiver block in XREAD for BLOCK_MS: their read timeout must outlast it."""
    from chat_tracker.journal.redis_client import BLOCK_MS

    assert JOURNAL.read_timeout > BLOCK_MS / 1000 + 1 and ARCHIVER.read_timeout > BLOCK_MS / 1000 + 1


def _client_makers(path: Path) -> list[str]:
    """Where ``path`` builds a Redis client itself: ``Redis(...)``, ``Redis.from_url(...)``, ``from_url(...)``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("Redis", "StrictRedis", "from_url", "from_pool"):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return found


def test_no_module_but_the_factory_builds_a_redis_client() -> None:
    makers = [where for path in sorted(PACKAGE.rglob("*.py")) if path != FACTORY for where in _client_makers(path)]
    assert not makers, f"Redis clients built outside journal/redis_client.py: {makers}"
    assert _client_makers(FACTORY), "the check finds nothing even in the factory: it proves nothing"
