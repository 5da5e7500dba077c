"""What the tracker needs from the versions it runs on, and what pyproject.toml and requirements.lock promise.

``chat_tracker/transport/wire.py`` subclasses uvicorn's *private* sans-I/O WebSocket protocol
(``WebSocketsSansIOProtocol``, new in uvicorn 0.35) and reads its attributes. Nothing in
uvicorn promises to keep them, so these tests check each name on the installed uvicorn and
fail naming the uvicorn version and what is missing: an upgrade that moves one fails here,
plainly, not as a hang or a silent fall-back to slow ASGI sends in a real-server test.

They also check that the installed versions are inside the ranges pyproject.toml declares,
and that requirements.lock (the Docker image's dependencies, made by scripts/lock) pins every
runtime dependency inside its range, with hashes on every line.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from support.timing import UNIT

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements.lock"

SANSIO_MODULE = "uvicorn.protocols.websockets.websockets_sansio_impl"
SANSIO_CLASS = "WebSocketsSansIOProtocol"

# What chat_tracker/transport/wire.py uses of uvicorn's protocol, and what for.
INSTANCE_ATTRIBUTES = {
    "writable": "Wire.ready/Wire.wait_ready: an asyncio.Event cleared while the transport's buffer is full",
    "close_sent": "Wire.ready/Wire.gone",
    "disconnected": "Wire.ready/Wire.gone",
    "transport": "Wire.write/Wire.abort and the refused-handshake answer",
    "conn": "ChatWebSocketProtocol.data_received: the websockets ServerProtocol",
    "handshake_initiated": "ChatWebSocketProtocol.data_received",
    "config": "ChatWebSocketProtocol.handle_connect: config.ws_per_message_deflate",
}
CONN_ATTRIBUTES = {
    "handshake_exc": "ChatWebSocketProtocol.data_received: set when the parser refused the handshake",
    "data_to_send": "ChatWebSocketProtocol.data_received: the parser's error response",
}
METHODS = {
    "data_received": "overridden by ChatWebSocketProtocol",
    "handle_connect": "overridden by ChatWebSocketProtocol, which reads self.scope after it",
    "connection_made": "sets self.transport",
    "connection_lost": "sets self.disconnected",
}
# asyncio.Protocol has these as no-ops; uvicorn's must clear and set `writable`, or
# Wire.wait_ready never waits and a slow reader's data piles up in the transport.
FLOW_CONTROL = ("pause_writing", "resume_writing")


def _project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    return project


RUNTIME = [Requirement(line) for line in _project()["dependencies"]]
TEST_EXTRA = [Requirement(line) for line in _project()["optional-dependencies"]["test"]]


def _declared(name: str) -> Requirement:
    wanted = canonicalize_name(name)
    return next(r for r in RUNTIME if canonicalize_name(r.name) == wanted)


def _installed(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"{name} is not installed; pyproject.toml declares {name}: pip install -e '.[test]'")


def _uvicorn() -> str:
    """``uvicorn 0.54.0 (pyproject.toml: uvicorn[standard]>=...)``: the start of every failure message here."""
    return f"uvicorn {_installed('uvicorn')} (pyproject.toml: {_declared('uvicorn')})"


def _protocol_class() -> type[Any]:
    try:
        module = importlib.import_module(SANSIO_MODULE)
    except ImportError as exc:
        pytest.fail(
            f"{_uvicorn()} has no module {SANSIO_MODULE} ({exc}); transport/wire.py subclasses its {SANSIO_CLASS}"
        )
    cls = getattr(module, SANSIO_CLASS, None)
    if not isinstance(cls, type):
        pytest.fail(f"{_uvicorn()}: {SANSIO_MODULE} has no class {SANSIO_CLASS}, which transport/wire.py subclasses")
    return cls


async def _asgi_app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """Waits for the connection to end; never accepts (the tests look at the protocol, not the app)."""
    while (await receive())["type"] != "websocket.disconnect":
        pass


def _protocol(cls: type[Any], **config: Any) -> Any:
    """An instance of ``cls`` as uvicorn's server makes one per connection (call inside a running loop)."""
    import uvicorn
    from uvicorn.server import ServerState

    config.setdefault("ws_per_message_deflate", False)  # the tracker's default (uvicorn's is True)
    settings = uvicorn.Config(_asgi_app, ws=cls, lifespan="off", log_config=None, **config)
    settings.load()
    return cls(config=settings, server_state=ServerState(), app_state={})


class FakeTransport(asyncio.Transport):
    """Records what the protocol writes; no socket."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.aborted = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


def _handshake(*extra_headers: str) -> bytes:
    lines = [
        "GET /ws HTTP/1.1",
        "Host: 127.0.0.1:8000",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *extra_headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _finish(protocol: Any) -> None:
    """End the connection and let uvicorn's task for the app finish."""
    if not protocol.disconnected:
        protocol.connection_lost(None)
    await asyncio.wait_for(asyncio.gather(*protocol.tasks), timeout=UNIT)


# uvicorn's private protocol class


def test_uvicorn_has_the_sans_io_protocol() -> None:
    """The class chat_tracker/transport/wire.py subclasses exists in the installed uvicorn."""
    assert issubclass(_protocol_class(), asyncio.Protocol)


def _check_methods(cls: type[Any]) -> None:
    for name, why in METHODS.items():
        assert callable(getattr(cls, name, None)), f"{_uvicorn()}: {SANSIO_CLASS} has no method {name} ({why})"
    for name in FLOW_CONTROL:
        assert getattr(cls, name) is not getattr(asyncio.Protocol, name), (
            f"{_uvicorn()}: {SANSIO_CLASS} does not define {name}, so its `writable` event never changes "
            "and Wire.wait_ready cannot wait for a slow reader"
        )


def _check_attributes(cls: type[Any]) -> None:
    async def make() -> Any:
        return _protocol(cls)

    protocol = asyncio.run(make())
    for name, why in INSTANCE_ATTRIBUTES.items():
        assert hasattr(protocol, name), f"{_uvicorn()}: {SANSIO_CLASS} instances have no attribute {name} ({why})"
    for name, why in CONN_ATTRIBUTES.items():
        assert hasattr(protocol.conn, name), (
            f"{_uvicorn()}, websockets {_installed('websockets')}: {SANSIO_CLASS}.conn "
            f"({type(protocol.conn).__name__}) has no {name} ({why})"
        )
    assert isinstance(protocol.writable, asyncio.Event), f"{_uvicorn()}: `writable` is not an asyncio.Event"
    assert protocol.writable.is_set(), f"{_uvicorn()}: `writable` is not set on a new connection"
    for name in ("close_sent", "disconnected", "handshake_initiated"):
        assert getattr(protocol, name) is False, f"{_uvicorn()}: {name} is {getattr(protocol, name)!r}, not False"
    assert callable(protocol.conn.data_to_send), f"{_uvicorn()}: conn.data_to_send is not callable"
    assert hasattr(protocol.config, "ws_per_message_deflate"), f"{_uvicorn()}: Config has no ws_per_message_deflate"


def _check_contract() -> None:
    """All of the above; the behavioural tests below start with it, so a missing name fails by name."""
    cls = _protocol_class()
    _check_methods(cls)
    _check_attributes(cls)


def test_sans_io_protocol_has_the_methods_wire_relies_on() -> None:
    """The methods ChatWebSocketProtocol overrides or relies on, and real flow control."""
    _check_methods(_protocol_class())


def test_sans_io_protocol_sets_the_attributes_wire_reads() -> None:
    """Every attribute wire.py reads is set by uvicorn's __init__, with the type wire.py expects."""
    _check_attributes(_protocol_class())


# The same names in use: chat_tracker/transport/wire.py on the installed uvicorn, with a fake socket


def test_chat_protocol_offers_a_wire_that_follows_the_socket() -> None:
    """After a handshake the app's scope carries a Wire; it follows flow control, writes, and the close."""
    _check_contract()  # a missing name fails with its message, not as an AttributeError below
    from chat_tracker.transport.wire import EXTENSION, ChatWebSocketProtocol, Wire

    async def scenario() -> None:
        protocol = _protocol(ChatWebSocketProtocol)
        transport = FakeTransport()
        protocol.connection_made(transport)
        try:
            protocol.data_received(_handshake())
            scope = getattr(protocol, "scope", None)
            assert scope is not None, f"{_uvicorn()}: handle_connect no longer sets self.scope, so no Wire is offered"
            wire = scope["extensions"].get(EXTENSION)
            assert isinstance(wire, Wire), f"{_uvicorn()}: the scope has no {EXTENSION} extension after the handshake"
            assert wire.ready() and not wire.gone
            protocol.pause_writing()
            assert not wire.ready(), f"{_uvicorn()}: pause_writing() does not clear `writable`"
            protocol.resume_writing()
            assert wire.ready(), f"{_uvicorn()}: resume_writing() does not set `writable`"
            before = len(transport.written)
            wire.write(b"frame")
            assert bytes(transport.written[before:]) == b"frame"
            protocol.connection_lost(None)
            assert protocol.disconnected, f"{_uvicorn()}: connection_lost() does not set `disconnected`"
            assert wire.gone and not wire.ready()
        finally:
            await _finish(protocol)

    asyncio.run(scenario())


def test_chat_protocol_offers_no_wire_with_per_message_deflate() -> None:
    """Compressed frames differ per connection: the app gets no Wire and uses plain ASGI sends."""
    _check_contract()
    from chat_tracker.transport.wire import EXTENSION, ChatWebSocketProtocol

    async def scenario() -> None:
        protocol = _protocol(ChatWebSocketProtocol, ws_per_message_deflate=True)
        protocol.connection_made(FakeTransport())
        try:
            protocol.data_received(_handshake())
            assert EXTENSION not in protocol.scope["extensions"]
        finally:
            await _finish(protocol)

    asyncio.run(scenario())


def test_chat_protocol_answers_a_handshake_the_parser_refused() -> None:
    """A header line over 8 KiB: an HTTP error goes out and the connection closes, instead of hanging."""
    _check_contract()
    from chat_tracker.transport.wire import ChatWebSocketProtocol

    async def scenario() -> None:
        protocol = _protocol(ChatWebSocketProtocol)
        transport = FakeTransport()
        protocol.connection_made(transport)
        try:
            protocol.data_received(_handshake(f"Authorization: Bearer {'x' * 80_000}"))
            status = bytes(transport.written).split(b"\r\n", 1)[0]
            versions = f"{_uvicorn()}, websockets {_installed('websockets')}"
            assert re.fullmatch(rb"HTTP/1\.1 4(00|31) .*", status), f"{versions}: answered {status!r}, not 400/431"
            assert transport.closed, f"{versions}: the refused connection was left open"
        finally:
            await _finish(protocol)

    asyncio.run(scenario())


def test_tracker_server_hooks_exist() -> None:
    """runtime/server.py overrides these uvicorn.Server methods and clears its private _captured_signals."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(_asgi_app, log_config=None))
    for name in ("handle_exit", "startup", "shutdown", "run"):
        assert callable(getattr(server, name, None)), f"{_uvicorn()}: uvicorn.Server has no method {name}"
    for name in ("should_exit", "started", "_captured_signals"):
        assert hasattr(server, name), f"{_uvicorn()}: uvicorn.Server instances have no attribute {name}"
    assert hasattr(server._captured_signals, "clear"), f"{_uvicorn()}: Server._captured_signals is not a list"


# Installed versions against pyproject.toml


@pytest.mark.parametrize("requirement", RUNTIME + TEST_EXTRA, ids=str)
def test_installed_version_is_in_the_declared_range(requirement: Requirement) -> None:
    """The environment running the tests has what pyproject.toml declares (runtime and test extra)."""
    version = _installed(requirement.name)
    assert requirement.specifier.contains(version, prereleases=True), (
        f"installed {requirement.name} {version} is outside pyproject.toml's {requirement}"
    )


# requirements.lock


@dataclass(frozen=True)
class Pin:
    requirement: Requirement
    hashes: tuple[str, ...]

    @property
    def name(self) -> str:
        return canonicalize_name(self.requirement.name)

    @property
    def version(self) -> str:
        return next(iter(self.requirement.specifier)).version

    def applies(self, environment: dict[str, str]) -> bool:
        marker = self.requirement.marker
        return marker is None or marker.evaluate(environment)


def _pins() -> list[Pin]:
    assert LOCK.is_file(), "requirements.lock is missing: run scripts/lock"
    pins = []
    # One logical line per requirement: `name==version [; marker] --hash=sha256:... --hash=...`.
    for raw in LOCK.read_text(encoding="utf-8").replace("\\\n", " ").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        requirement, *hashes = re.split(r"\s+--hash=", line)
        assert not requirement.startswith("-"), f"requirements.lock: an option, not a requirement: {line[:80]}"
        pins.append(Pin(Requirement(requirement), tuple(hashes)))
    return pins


def _linux(machine: str, version: str) -> dict[str, str]:
    """Marker variables of CPython ``version`` on Linux on ``machine``."""
    environment = {key: str(value) for key, value in default_environment().items()}
    environment.update(
        sys_platform="linux",
        platform_system="Linux",
        os_name="posix",
        platform_machine=machine,
        implementation_name="cpython",
        platform_python_implementation="CPython",
        python_version=version,
        python_full_version=f"{version}.0",
    )
    return environment


# The Docker image's Pythons: Debian bookworm's python3.11 and python:3.12-slim, on Linux.
TARGETS = {
    f"linux-{machine}-cpython{version}": _linux(machine, version)
    for version in ("3.11", "3.12")
    for machine in ("x86_64", "aarch64")
}


def test_lock_pins_every_requirement_exactly_with_hashes() -> None:
    """Every line is `name==version` with sha256 hashes, as `pip install --require-hashes` needs."""
    pins = _pins()
    assert pins, "requirements.lock pins nothing"
    for pin in pins:
        specifiers = list(pin.requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", (
            f"requirements.lock: {pin.requirement} is no pin"
        )
        assert pin.hashes, f"requirements.lock: {pin.requirement} has no --hash"
        for digest in pin.hashes:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"requirements.lock: {pin.name}: bad hash {digest}"


@pytest.mark.parametrize("target", TARGETS)
def test_lock_pins_each_runtime_dependency_in_its_declared_range(target: str) -> None:
    """For each Python the image may have, the lock holds every pyproject dependency, once, inside its range."""
    environment = TARGETS[target]
    pins = [pin for pin in _pins() if pin.applies(environment)]
    for requirement in RUNTIME:
        found = [pin for pin in pins if pin.name == canonicalize_name(requirement.name)]
        assert len(found) == 1, (
            f"requirements.lock ({target}): {len(found)} pins of {requirement.name}; run scripts/lock"
        )
        assert requirement.specifier.contains(found[0].version, prereleases=True), (
            f"requirements.lock pins {requirement.name}=={found[0].version}, outside pyproject.toml's "
            f"{requirement}; run scripts/lock"
        )


@pytest.mark.parametrize("target", TARGETS)
def test_lock_holds_what_its_packages_require(target: str) -> None:
    """The image installs the lock with --no-deps, so it must hold every package its pins (and extras) require.

    A package's requirements are read from its installed metadata, so only pins whose installed
    version is the locked one are checked (the Docker build's `pip check` checks the rest).
    """
    environment = TARGETS[target]
    pins = {pin.name: pin for pin in _pins() if pin.applies(environment)}
    extras: dict[str, set[str]] = {canonicalize_name(r.name): set(r.extras) for r in RUNTIME}
    checked = 0
    for pin in pins.values():
        try:
            distribution = importlib.metadata.distribution(pin.name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if distribution.version != pin.version:
            continue
        checked += 1
        for line in distribution.requires or []:
            requirement = Requirement(line)
            wanted = ["", *sorted(extras.get(pin.name, set()))]
            if requirement.marker is not None and not any(
                requirement.marker.evaluate({**environment, "extra": extra}) for extra in wanted
            ):
                continue
            needed = pins.get(canonicalize_name(requirement.name))
            assert needed is not None, (
                f"requirements.lock ({target}): {pin.name}=={pin.version} requires {requirement}, which is not locked; "
                "run scripts/lock"
            )
            assert requirement.specifier.contains(needed.version, prereleases=True), (
                f"requirements.lock ({target}): {pin.name}=={pin.version} requires {requirement}, "
                f"the lock has {needed.version}; run scripts/lock"
            )
    if checked == 0:
        pytest.skip("no locked version is installed here to read its requirements from")
