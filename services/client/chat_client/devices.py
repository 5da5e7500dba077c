"""This terminal as a device of a registered account: the token that signs it in without the passphrase.

Each sign-in with the passphrase (and each ``/register``) makes the client a device of the
account, and every welcome hands a new token for the next sign-in, the one used being
spent. The token is kept in a file only its owner can read (0600, in a 0700 directory),
one per tracker URL and name (lookalikes folded, as the tracker folds them): under
``$XDG_STATE_HOME/chat-client/`` (else ``~/.local/state/chat-client/``), or the one file
``--device-file`` / ``$CHAT_DEVICE_FILE`` names; ``--no-device`` keeps none. The file
also names the tracker and the name it belongs to, so a token is never offered to
another account. A token is a password: it is never printed nor logged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from chat_protocol import name_key
from chat_protocol.accounts import MAX_DEVICE_LABEL_CHARS

DEVICE_FILE_ENV = "CHAT_DEVICE_FILE"
PRIVATE_DIRECTORY = 0o700
PRIVATE_FILE = 0o600


def device_label(hostname: str | None = None) -> str:
    """How ``/devices`` names this client: ``chat-client on HOST``, within the protocol's bound."""
    label = f"chat-client on {hostname if hostname is not None else socket.gethostname()}"
    return label[:MAX_DEVICE_LABEL_CHARS]


def state_directory(environ: Mapping[str, str]) -> Path:
    """Where kept tokens live by default: ``$XDG_STATE_HOME/chat-client``, else ``~/.local/state/chat-client``."""
    base = environ.get("XDG_STATE_HOME") or ""
    # The XDG spec ignores a relative value.
    root = Path(base) if Path(base).is_absolute() else Path.home() / ".local" / "state"
    return root / "chat-client"


def file_name(url: str, name: str) -> str:
    """One file per tracker and account: a digest, since URLs and names hold any character."""
    digest = hashlib.sha256(f"{url}\n{name_key(name)}".encode()).hexdigest()
    return f"device-{digest[:32]}.json"


@dataclass(frozen=True)
class KeptDevice:
    """What the file holds: whose device this is, its id, and the token of its next sign-in."""

    tracker: str
    name: str  # the name's lookalike-folded key
    device: str
    token: str = field(repr=False)


class DeviceKeeper:
    """Reads and writes this client's kept token; ``label`` goes with every passphrase sign-in.

    ``directory`` holds one file per tracker and name; ``path`` (``--device-file``) is the
    one file to use whatever the name; neither: nothing is kept (``--no-device``).
    """

    def __init__(
        self, url: str, *, directory: Path | None = None, path: Path | None = None, label: str | None = None
    ) -> None:
        self._url = url
        self._directory = directory
        self._path = path
        self.label = label if label is not None else device_label()
        self.name: str | None = None  # the name last signed in as: what a sign-out forgets

    @property
    def keeps(self) -> bool:
        return self._directory is not None or self._path is not None

    def path_for(self, name: str) -> Path | None:
        if self._path is not None:
            return self._path
        if self._directory is not None:
            return self._directory / file_name(self._url, name)
        return None

    def token_for(self, name: str) -> str | None:
        """The token kept for ``name`` on this tracker, or None (none kept, unreadable, or another's)."""
        path = self.path_for(name)
        if path is None:
            return None
        kept = _read(path)
        if kept is None or kept.tracker != self._url or kept.name != name_key(name):
            return None
        return kept.token

    def keep(self, name: str, device: str | None, token: str) -> bool:
        """Replace the kept token with ``token`` (the last one is spent); False if it could not be written."""
        self.name = name
        path = self.path_for(name)
        if path is None:
            return False
        kept = KeptDevice(self._url, name_key(name), device or "", token)
        try:
            _write_privately(path, kept, private_parent=self._path is None)
        except OSError:
            return False
        return True

    def forget(self, name: str | None = None) -> None:
        """Drop the token kept for ``name`` (default: the name last signed in as): it signs nobody in any more.

        Only a file that holds this account's token is deleted: a given ``--device-file`` may hold another's.
        """
        chosen = name if name is not None else self.name
        path = self.path_for(chosen) if chosen is not None else None
        if path is None or chosen is None or self.token_for(chosen) is None:
            return
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _read(path: Path) -> KeptDevice | None:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict):
        return None
    values = [body.get(key) for key in ("tracker", "name", "device", "token")]
    if not all(isinstance(value, str) for value in values) or not body["token"]:
        return None
    return KeptDevice(*[str(value) for value in values])


def _write_privately(path: Path, kept: KeptDevice, *, private_parent: bool) -> None:
    """Write ``kept`` to ``path`` atomically, readable by its owner only from the first byte on."""
    parent = path.parent
    parent.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
    if private_parent:  # our own directory: made private even if something made it before us
        parent.chmod(PRIVATE_DIRECTORY)
    body = json.dumps({"tracker": kept.tracker, "name": kept.name, "device": kept.device, "token": kept.token})
    temporary = parent / f".{path.name}.{os.getpid()}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(body + "\n")
            out.flush()
            os.fsync(out.fileno())
        temporary.chmod(PRIVATE_FILE)  # O_CREAT's mode does not apply to a file that was there
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def keeper_for(
    url: str, device_file: str | None, no_device: bool, environ: Mapping[str, str], label: str | None = None
) -> DeviceKeeper:
    """The keeper the flags and environment ask for: none kept, one given file, or the state directory."""
    if no_device:
        return DeviceKeeper(url, label=label)
    chosen = device_file or environ.get(DEVICE_FILE_ENV) or None
    if chosen is not None:
        return DeviceKeeper(url, path=Path(chosen).expanduser(), label=label)
    return DeviceKeeper(url, directory=state_directory(environ), label=label)
