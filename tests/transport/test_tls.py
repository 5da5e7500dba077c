"""The tracker over TLS (``--tls-cert``/``--tls-key``): https REST, wss chat, and the refusals at start.

Every certificate is made at test time (``support.tls``, on trustme): a CA of its own
per test, trusted explicitly by the clients here, as a user trusts a self-signed tracker.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from support.peers import plain_member
from support.timing import UNIT
from support.tls import Certificates, make_certificates, start_tls_tracker
from support.tracker import PASSWORD, StartTracker

pytestmark = pytest.mark.anyio


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path / "tls")


async def test_rest_over_https_with_the_test_ca(start_tracker: StartTracker, certificates: Certificates) -> None:
    """The listening line says https and wss; /members answers over https to a client trusting the CA."""
    tracker = start_tls_tracker(start_tracker, certificates)
    line = tracker.wait_for_output("Listening on")
    port = tracker.port
    assert f"Listening on https://127.0.0.1:{port} (WebSocket: wss://127.0.0.1:{port}/ws)" in line
    headers = {"Authorization": f"Bearer {PASSWORD}"}
    async with httpx.AsyncClient(verify=certificates.client_context(), timeout=UNIT) as client:
        response = await client.get(f"https://127.0.0.1:{port}/members", headers=headers)
        assert response.status_code == 200
        assert response.json() == {"count": 0, "members": []}
        assert (await client.get(f"https://127.0.0.1:{port}/members")).status_code == 401
    # A client that does not trust the test CA (httpx's own bundle) refuses the tracker.
    async with httpx.AsyncClient(timeout=UNIT) as stranger:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await stranger.get(f"https://127.0.0.1:{port}/members", headers=headers)


@pytest.mark.parametrize("adapter", [(), ("--ws-deflate",)], ids=["native", "native-deflate"])
async def test_members_join_and_chat_over_wss(
    start_tracker: StartTracker, certificates: Certificates, adapter: tuple[str, ...]
) -> None:
    """Two plain-text members on a real WebSocket client over wss see each other's messages; chat.log has them.

    Both ways out of native.py: frames pre-built once for everyone, and (--ws-deflate) compressed per connection.
    """
    tracker = start_tracker(*certificates.tracker_flags(), *adapter)
    assert tracker.tls
    assert tracker.url.startswith("wss://")
    tls = certificates.client_context()
    async with (
        plain_member(tracker.url, PASSWORD, "ada", ssl=tls) as ada,
        plain_member(tracker.url, PASSWORD, "bob", ssl=tls) as bob,
    ):
        assert await ada.line() == "* bob joined the chat"
        await ada.send("over tls")
        assert await bob.line() == "ada: over tls"
        await bob.send("and back")
        assert await ada.line() == "bob: and back"
    messages = [line.split(" ", 3)[2:] for line in tracker.log_lines() if " msg " in line]
    assert messages == [["msg", "ada over tls"], ["msg", "bob and back"]]


async def test_plain_http_on_the_tls_port_gets_no_chat(start_tracker: StartTracker, certificates: Certificates) -> None:
    """Nothing in clear on a TLS port: plain http gets no answer, and the tracker keeps serving https."""
    tracker = start_tls_tracker(start_tracker, certificates)
    async with httpx.AsyncClient(timeout=UNIT) as client:
        with pytest.raises(httpx.TransportError):
            await client.get(f"http://127.0.0.1:{tracker.port}/members")
    async with httpx.AsyncClient(verify=certificates.client_context(), timeout=UNIT) as client:
        response = await client.get(tracker.http_url + "/members", headers={"Authorization": f"Bearer {PASSWORD}"})
        assert response.status_code == 200


def test_socket_guard_and_header_deadline_hold_over_tls(
    start_tracker: StartTracker, certificates: Certificates
) -> None:
    """http_guard on the TLS transport: over the per-address cap a TLS client reads 429; slow headers get 408."""
    flags = ("--max-connections-per-address", "2", "--header-timeout", "1")
    tracker = start_tracker(*certificates.tracker_flags(), *flags, address_limits=True)
    assert tracker.tls
    context = certificates.client_context()
    with contextlib.ExitStack() as stack:
        opened = []
        for _ in range(3):
            raw = stack.enter_context(socket.create_connection(("127.0.0.1", tracker.port), timeout=UNIT))
            opened.append(stack.enter_context(context.wrap_socket(raw, server_hostname="127.0.0.1")))
        assert opened[2].recv(4096).startswith(b"HTTP/1.1 429 Too Many Requests\r\n")
        started = time.monotonic()
        opened[0].sendall(b"GET / HTTP/1.1\r\n")  # the request line, and never the rest of the headers
        assert opened[0].recv(4096).startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert 0.9 <= time.monotonic() - started < UNIT


def run_tracker(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "chat_tracker",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
            *args,
        ],
        env={**clean, "TRACKER_PASSWORD": PASSWORD, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=2 * UNIT,
        check=False,
    )


def encrypted_copy(key: Path) -> bytes:
    """The PEM key at ``key``, encrypted with a passphrase (as ``openssl pkey -aes256`` would)."""
    loaded = serialization.load_pem_private_key(key.read_bytes(), password=None)
    encryption = serialization.BestAvailableEncryption(b"passphrase")
    return loaded.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _misuses(files: Certificates, tmp_path: Path) -> dict[str, tuple[list[str], dict[str, str], str]]:
    """Each wrong way to give the pair: (flags, environment, what the one error line must say)."""
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n", encoding="utf-8")
    other = make_certificates(tmp_path / "other")
    unreadable = tmp_path / "missing.pem"
    encrypted = tmp_path / "encrypted-key.pem"
    encrypted.write_bytes(encrypted_copy(files.key))
    return {
        "cert-only": (["--tls-cert", str(files.cert)], {}, "--tls-cert needs --tls-key too"),
        "key-only-env": ([], {"TRACKER_TLS_KEY": str(files.key)}, "--tls-key needs --tls-cert too"),
        "missing-cert": (["--tls-cert", str(unreadable), "--tls-key", str(files.key)], {}, "cannot read --tls-cert"),
        "garbage-cert": (["--tls-cert", str(garbage), "--tls-key", str(files.key)], {}, "cannot use --tls-cert"),
        "encrypted-key": (
            ["--tls-cert", str(files.cert), "--tls-key", str(encrypted)],
            {},
            f"--tls-key {encrypted} is encrypted",
        ),
        "key-of-another": (
            [],
            {"TRACKER_TLS_CERT": str(files.cert), "TRACKER_TLS_KEY": str(other.key)},
            "cannot use --tls-cert",
        ),
    }


@pytest.mark.parametrize(
    "case", ["cert-only", "key-only-env", "missing-cert", "garbage-cert", "encrypted-key", "key-of-another"]
)
def test_a_misused_tls_flag_exits_2_with_one_line(tmp_path: Path, certificates: Certificates, case: str) -> None:
    """One flag without the other, an unreadable file, a file that is no PEM, a key of another certificate."""
    flags, env, message = _misuses(certificates, tmp_path)[case]
    result = run_tracker(tmp_path / "data", env, *flags)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("chat-tracker: error: "), result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Listening" not in result.stdout
