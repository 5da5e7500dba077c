"""Tracker URL normalisation and password loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat_client.config import DEFAULT_URL, normalize_url, read_password_file, resolve_password, resolve_url
from chat_client.errors import EXIT_USAGE, UsageError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("tracker", "ws://tracker:8000/ws"),
        ("10.0.0.5", "ws://10.0.0.5:8000/ws"),
        ("10.0.0.5:9000", "ws://10.0.0.5:9000/ws"),
        ("[::1]:9000", "ws://[::1]:9000/ws"),
        ("ws://tracker:8000/ws", "ws://tracker:8000/ws"),
        ("ws://tracker:8000", "ws://tracker:8000/ws"),
        ("ws://tracker/", "ws://tracker/ws"),
        ("wss://chat.example.org/ws", "wss://chat.example.org/ws"),
        ("http://tracker:8000/ws", "ws://tracker:8000/ws"),
        ("https://chat.example.org", "wss://chat.example.org/ws"),
        ("ws://tracker:8000/chat/ws", "ws://tracker:8000/chat/ws"),
        ("  tracker:8000  ", "ws://tracker:8000/ws"),
    ],
)
def test_normalize_url(raw: str, expected: str) -> None:
    """A bare host, host:port or http(s) URL becomes the tracker's ws(s) URL."""
    assert normalize_url(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "ftp://tracker/ws",
        "ws://tracker:8000/ws?password=secret",
        "ws://user:secret@tracker:8000/ws",
        "ws://tracker:99999/ws",
        "ws://tracker:port/ws",
        "ws:///ws",
    ],
)
def test_normalize_url_refuses(raw: str) -> None:
    """Unusable URLs, and any URL that could carry a password, are usage errors."""
    with pytest.raises(UsageError) as caught:
        normalize_url(raw)
    assert caught.value.exit_status == EXIT_USAGE


def test_resolve_url_order() -> None:
    """The argument wins over TRACKER_URL, which wins over the default."""
    env = {"TRACKER_URL": "ws://tracker:8000/ws"}
    assert resolve_url("other:1234", env) == "ws://other:1234/ws"
    assert resolve_url(None, env) == "ws://tracker:8000/ws"
    assert resolve_url(None, {}) == DEFAULT_URL


def test_password_file_first_line(tmp_path: Path) -> None:
    """The password file's first line is the password, without its line ending."""
    path = tmp_path / "password"
    path.write_text("s3cret pass\r\nignored\n", encoding="utf-8")
    assert read_password_file(str(path)) == "s3cret pass"


@pytest.mark.parametrize("content", [None, "", "\n"])
def test_password_file_unusable(tmp_path: Path, content: str | None) -> None:
    """A missing or empty password file is a usage error."""
    path = tmp_path / "password"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError):
        read_password_file(str(path))


def test_resolve_password_order(tmp_path: Path) -> None:
    """--password-file wins over TRACKER_PASSWORD; neither means ask."""
    path = tmp_path / "password"
    path.write_text("from-file\n", encoding="utf-8")
    env = {"TRACKER_PASSWORD": "from-env"}
    assert resolve_password(str(path), env) == "from-file"
    assert resolve_password(None, env) == "from-env"
    assert resolve_password(None, {"TRACKER_PASSWORD": ""}) is None
