"""Which starts warn that passwords would cross a network in clear, and the --tls-cert/--tls-key pairing."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat_tracker.errors import ConfigError
from chat_tracker.transport.tls import TlsFiles, clear_beyond_loopback, tls_files


@pytest.mark.parametrize(
    ("host", "tls", "behind_proxy", "warned"),
    [
        ("0.0.0.0", False, False, True),
        ("::", False, False, True),
        ("192.168.1.10", False, False, True),
        ("chat.example.org", False, False, True),
        ("0.0.0.0", True, False, False),  # --tls-cert/--tls-key
        ("0.0.0.0", False, True, False),  # --trusted-proxies: TLS ends at the proxy
        ("127.0.0.1", False, False, False),
        ("127.0.0.2", False, False, False),
        ("::1", False, False, False),
        ("localhost", False, False, False),
    ],
)
def test_plain_beyond_loopback_is_warned_about(host: str, tls: bool, behind_proxy: bool, warned: bool) -> None:
    assert clear_beyond_loopback(host, tls, behind_proxy) is warned


def test_the_pair_is_both_or_neither() -> None:
    assert tls_files(None, None) is None
    assert tls_files(Path("c.pem"), Path("k.pem")) == TlsFiles(Path("c.pem"), Path("k.pem"))
    with pytest.raises(ConfigError, match="--tls-cert needs --tls-key too"):
        tls_files(Path("c.pem"), None)
    with pytest.raises(ConfigError, match="--tls-key needs --tls-cert too"):
        tls_files(None, Path("k.pem"))
