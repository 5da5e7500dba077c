"""``chat-client`` to a tracker over TLS: ``wss://`` and ``https://`` URLs, ``--cafile``, and the refusal without it.

The tracker's certificate comes from a CA made at test time (``support.tls``), which no
trust store holds: the client must be told to trust it, and must refuse it otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support.clients import StartClient
from support.tls import Certificates, make_certificates, start_tls_tracker
from support.tracker import RunningTracker


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path / "tls")


@pytest.fixture
def tls_tracker(start_tracker: Any, certificates: Certificates) -> RunningTracker:
    return start_tls_tracker(start_tracker, certificates)


def test_scripted_client_chats_over_wss_with_cafile(
    tls_tracker: RunningTracker, certificates: Certificates, clients: StartClient
) -> None:
    """One member with ``--cafile`` and a wss:// URL, one with CHAT_CLIENT_CAFILE and an https:// URL: they chat."""
    ada = clients(tls_tracker.url, "--cafile", str(certificates.ca), "--username", "ada", "--json")
    ada.event("welcome")
    https_url = f"https://127.0.0.1:{tls_tracker.port}"
    bob = clients(https_url, "--username", "bob", "--json", env={"CHAT_CLIENT_CAFILE": str(certificates.ca)})
    bob.event("welcome")
    ada.event("joined", name="bob")
    ada.send("hello over tls")
    bob.event("message", name="ada", text="hello over tls")
    for member in (ada, bob):
        member.close_stdin()
        status, _, stderr = member.finish()
        assert status == 0, stderr
        assert stderr == ""


def test_client_without_the_ca_refuses_in_one_line(tls_tracker: RunningTracker, clients: StartClient) -> None:
    """No --cafile: the certificate is not trusted; one line on stderr says so and how to trust it; exit 1."""
    client = clients(tls_tracker.url, "--username", "eve", "--json")
    client.close_stdin()
    status, lines, stderr = client.finish()
    assert status == 1
    assert lines == []
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith(f"chat-client: cannot reach the tracker at {tls_tracker.url}: certificate verify failed")
    assert "--cafile FILE or CHAT_CLIENT_CAFILE" in stderr
    assert not any(" join " in line for line in tls_tracker.log_lines())


def test_wrong_cafile_is_refused_and_an_unusable_one_is_a_usage_error(
    tls_tracker: RunningTracker, tmp_path: Path, clients: StartClient
) -> None:
    """Another CA's file does not make this tracker trusted (exit 1); a missing file is exit 2."""
    other = make_certificates(tmp_path / "other")
    client = clients(tls_tracker.url, "--cafile", str(other.ca), "--username", "eve", "--json")
    client.close_stdin()
    status, _, stderr = client.finish()
    assert status == 1
    assert "certificate verify failed" in stderr
    missing = clients(tls_tracker.url, "--cafile", str(tmp_path / "nowhere.pem"), "--username", "eve", "--json")
    missing.close_stdin()
    status, _, stderr = missing.finish()
    assert status == 2
    assert stderr == f"chat-client: cannot read --cafile {tmp_path / 'nowhere.pem'}: No such file or directory\n"
    not_a_certificate = clients(tls_tracker.url, "--cafile", str(other.key), "--username", "eve", "--json")
    not_a_certificate.close_stdin()
    status, _, stderr = not_a_certificate.finish()
    assert (status, stderr) == (
        2,
        f"chat-client: --cafile {other.key} holds no PEM certificate: NO_CERTIFICATE_OR_CRL_FOUND\n",
    )


def test_moderator_reaches_admin_over_https(
    start_tracker: Any, certificates: Certificates, clients: StartClient
) -> None:
    """``--admin`` makes its REST calls over https with the same trust: /bans answers."""
    tracker = start_tracker(*certificates.tracker_flags(), env={"TRACKER_ADMIN_PASSWORD": "moderator-secret-1"})
    mod = clients(
        tracker.url,
        "--admin",
        "--cafile",
        str(certificates.ca),
        "--username",
        "mod",
        "--json",
        env={"TRACKER_ADMIN_PASSWORD": "moderator-secret-1"},
    )
    mod.event("welcome")
    mod.send("/bans")
    mod.close_stdin()
    status, _, stderr = mod.finish()
    assert status == 0, stderr
    assert "no bans in force" in stderr, stderr
