"""Certificates made at test time (``trustme``): a throwaway CA and a certificate it signed for 127.0.0.1.

Nothing here is a fixed key checked into the repository: each test gets a new CA, so a
test trusting the wrong one fails. ``start_tls_tracker`` starts a real tracker with
``--tls-cert``/``--tls-key``; its ``url`` is then ``wss://`` and its ``http_url`` ``https://``.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trustme

from support.tracker import RunningTracker


@dataclass(frozen=True)
class Certificates:
    """PEM files: the CA to trust, the tracker's certificate chain and its private key."""

    ca: Path
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this CA only (host names checked)."""
        return ssl.create_default_context(cafile=str(self.ca))

    def tracker_flags(self) -> tuple[str, ...]:
        return ("--tls-cert", str(self.cert), "--tls-key", str(self.key))


def make_certificates(directory: Path) -> Certificates:
    """A new CA in ``directory`` and a certificate from it for 127.0.0.1 and localhost."""
    directory.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1", "localhost")
    files = Certificates(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    authority.cert_pem.write_to_path(str(files.ca))
    issued.private_key_pem.write_to_path(str(files.key))
    for index, pem in enumerate(issued.cert_chain_pems):  # the leaf first, then what signed it
        pem.write_to_path(str(files.cert), append=index > 0)
    return files


def start_tls_tracker(start_tracker: Callable[..., RunningTracker], certificates: Certificates) -> RunningTracker:
    """A real tracker serving https and wss with ``certificates``."""
    tracker = start_tracker(*certificates.tracker_flags())
    assert tracker.tls, "the tracker did not say it listens on https://"
    return tracker
