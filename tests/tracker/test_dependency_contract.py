"""What the tracker needs from the versions it runs on, and what pyproject.toml and requirements.lock promise.

``chat_tracker/transport/http_guard.py`` subclasses uvicorn's httptools HTTP protocol
(``HttpToolsProtocol``, in a module uvicorn does not document) and relies on how it hands a
WebSocket upgrade over: it builds whatever ``ws_protocol_class`` holds as it would build its
own WebSocket protocol, gives it the transport and the request read so far, and switches the
transport to it. The one ``/ws`` adapter (``transport/native.py``) takes the socket from
there, on websockets' sans-I/O ``ServerProtocol``. Nothing in uvicorn promises to keep these,
so these tests check each name and step on the installed versions and fail naming the version
and what is missing: an upgrade that moves one fails here, plainly, not as a hang in a
real-server test.

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

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements.lock"

HTTP_MODULE = "uvicorn.protocols.http.httptools_impl"
HTTP_CLASS = "HttpToolsProtocol"

# What http_guard.py overrides of uvicorn's protocol, and why. Each override calls uvicorn's own but
# connection_made, which does its work itself (test_connection_made_sets_what_uvicorns_own_sets).
METHODS = {
    "connection_made": "counts the socket in the socket guard; reads the addresses without keeping a socket object",
    "connection_lost": "releases the socket's place in the guard",
    "data_received": "discards what a refused peer still sends",
    "on_message_begin": "a request under way: the header deadline answers 408",
    "on_headers_complete": "Host, body bounds and trusted proxies, before the app sees the request",
    "on_body": "counts a streamed body",
    "on_message_complete": "disarms the body deadline",
    "on_response_complete": "re-arms the header deadline for the next request",
    "handle_websocket_upgrade": "hands the upgraded socket to native.NativeWebSocket",
}
# What http_guard.py reads or sets on uvicorn's instances, and what for.
INSTANCE_ATTRIBUTES = {
    "ws_protocol_class": "http_guard sets it: uvicorn upgrades only when it is set, and builds what it holds",
    "client": "the peer's address for the guard",
    "transport": "answers and closes refused sockets",
    "loop": "the header and body deadlines' timers",
    "parser": "parser.should_upgrade(): no body deadline for an upgrade",
    "headers": "Host, Content-Length, Transfer-Encoding, X-Forwarded-For",
    "scope": "scope['client'] set to what a trusted proxy named",
    "cycle": "a response given before its body was read; a body abandoned",
    "timeout_keep_alive_task": "set once a response is complete and the next request may begin",
    "connections": "connection_made adds the protocol to uvicorn's set of open connections",
    "flow": "connection_made gives it uvicorn's flow control",
    "server": "connection_made sets the local address for the scope",
    "scheme": "connection_made sets http or https for the scope",
}


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


def _http_protocol_class() -> type[Any]:
    try:
        module = importlib.import_module(HTTP_MODULE)
    except ImportError as exc:
        pytest.fail(
            f"{_uvicorn()} has no module {HTTP_MODULE} ({exc}); transport/http_guard.py subclasses its {HTTP_CLASS}"
        )
    cls = getattr(module, HTTP_CLASS, None)
    if not isinstance(cls, type):
        pytest.fail(f"{_uvicorn()}: {HTTP_MODULE} has no class {HTTP_CLASS}, which transport/http_guard.py subclasses")
    return cls


async def _asgi_app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """Never called: the tests look at the protocols, not the app."""
    raise AssertionError(f"the ASGI app was called with a {scope['type']} scope")


def _config(**options: Any) -> Any:
    """A loaded uvicorn Config as the tracker's server makes it: no WebSocket protocol of uvicorn's own."""
    import uvicorn

    config = uvicorn.Config(_asgi_app, ws="none", lifespan="off", log_config=None, **options)
    config.load()
    return config


class FakeTransport(asyncio.Transport):
    """Records what the protocol writes, and which protocol it is switched to; no socket."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.aborted = False
        self.protocol: asyncio.BaseProtocol | None = None

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

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _handshake(*extra_headers: str) -> bytes:
    lines = [
        "GET /ws?probe=1 HTTP/1.1",
        "Host: 127.0.0.1:8000",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *extra_headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Upgraded(asyncio.Protocol):
    """Stands in for native.NativeWebSocket: records how uvicorn builds it and what it is given."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.transport: asyncio.BaseTransport | None = None
        self.received = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += data


# uvicorn's HTTP protocol, and how it hands an upgrade over


def test_uvicorn_has_the_httptools_protocol() -> None:
    """The class chat_tracker/transport/http_guard.py subclasses exists in the installed uvicorn."""
    assert issubclass(_http_protocol_class(), asyncio.Protocol)


def test_httptools_protocol_has_what_http_guard_relies_on() -> None:
    """The methods http_guard.py overrides, and the attributes it reads, on an instance as uvicorn makes one."""
    from uvicorn.server import ServerState

    cls = _http_protocol_class()
    for name, why in METHODS.items():
        assert callable(getattr(cls, name, None)), f"{_uvicorn()}: {HTTP_CLASS} has no method {name} ({why})"

    async def make() -> Any:
        return cls(config=_config(), server_state=ServerState(), app_state={})

    protocol = asyncio.run(make())
    for name, why in INSTANCE_ATTRIBUTES.items():
        assert hasattr(protocol, name), f"{_uvicorn()}: {HTTP_CLASS} instances have no attribute {name} ({why})"
    assert protocol.ws_protocol_class is None, f"{_uvicorn()}: ws='none' still gives a WebSocket protocol"


class AskedTransport(FakeTransport):
    """A FakeTransport that records which extra information was asked of it."""

    def __init__(self, host: str = "127.0.0.1", *rest: int) -> None:
        super().__init__()
        self.asked: list[str] = []
        self.addresses = {"sockname": (host, 8000, *rest), "peername": (host, 50000, *rest)}

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        self.asked.append(name)
        return self.addresses.get(name, default)


def test_connection_made_sets_what_uvicorns_own_sets() -> None:
    """http_guard's connection_made sets every attribute uvicorn's own sets, alike, and never asks for the socket.

    uvicorn's own asks uvloop's transport for its ``socket``, which uvloop then keeps, both addresses cached
    in it, for the connection's life; http_guard reads the addresses by name instead (about 360 B per member).
    """
    from uvicorn.server import ServerState

    from chat_tracker.core.addresses import TrustedProxies
    from chat_tracker.transport.guard import SocketGuard
    from chat_tracker.transport.http_guard import guarded_protocol

    async def opened(cls: Any, transport: AskedTransport) -> tuple[dict[str, Any], dict[str, Any], Any]:
        protocol = cls(config=_config(), server_state=ServerState(), app_state={})
        before = dict(vars(protocol))
        protocol.connection_made(transport)
        return before, dict(vars(protocol)), protocol

    transport, over_ipv6 = AskedTransport(), AskedTransport("::1", 0, 0)  # IPv6: (host, port, flow, scope)

    async def opened_all() -> tuple[Any, Any, Any]:
        guarded = guarded_protocol(SocketGuard(4, 100, TrustedProxies()), 10.0, Upgraded)
        theirs, ours = await opened(_http_protocol_class(), AskedTransport()), await opened(guarded, transport)
        ipv6 = await opened(guarded, over_ipv6)
        for protocol in (ours[2], ipv6[2]):
            protocol.connection_lost(None)  # disarms its header deadline
        return theirs, ours, ipv6[2]

    (before, after, theirs), (_, ours_after, ours), ipv6 = asyncio.run(opened_all())
    set_by_uvicorn = {name for name, value in after.items() if name not in before or before[name] is not value}
    assert {"transport", "client", "server", "flow"} <= set_by_uvicorn, set_by_uvicorn
    for name in set_by_uvicorn:
        mine, uvicorns = ours_after.get(name), after[name]
        same = type(mine) is type(uvicorns) if name == "flow" else mine == uvicorns or mine is transport
        assert same, f"{_uvicorn()}: connection_made sets {name}={uvicorns!r}; http_guard's sets {mine!r}"
    assert (ours.client, ours.server, ours.scheme) == (("127.0.0.1", 50000), ("127.0.0.1", 8000), "http")
    assert (ipv6.client, ipv6.server) == (("::1", 50000), ("::1", 8000))
    assert theirs in theirs.connections
    assert "socket" not in transport.asked + over_ipv6.asked, transport.asked


def test_an_upgrade_is_handed_to_the_adapter_http_guard_names() -> None:
    """With uvicorn's own WebSocket protocols off, the upgrade still goes, whole, to the protocol http_guard names."""
    from uvicorn.server import ServerState

    from chat_tracker.core.addresses import TrustedProxies
    from chat_tracker.transport.guard import SocketGuard
    from chat_tracker.transport.http_guard import guarded_protocol

    async def scenario() -> tuple[FakeTransport, ServerState, Any]:
        guarded = guarded_protocol(SocketGuard(4, 100, TrustedProxies()), 10.0, Upgraded)
        state = ServerState()
        protocol = guarded(config=_config(), server_state=state, app_state={})
        transport = FakeTransport()
        protocol.connection_made(transport)
        protocol.data_received(_handshake("Origin: http://127.0.0.1:8000"))
        return transport, state, protocol

    transport, state, http = asyncio.run(scenario())
    upgraded = transport.protocol
    assert isinstance(upgraded, Upgraded), f"{_uvicorn()}: the transport was not switched to the WebSocket protocol"
    assert {"config", "server_state", "app_state", "ticket", "client"} <= set(upgraded.kwargs), upgraded.kwargs
    assert upgraded.kwargs["server_state"] is state and upgraded.transport is transport
    assert upgraded.received.startswith(b"GET /ws?probe=1 HTTP/1.1\r\n"), upgraded.received[:80]
    assert b"origin: http://127.0.0.1:8000\r\n" in upgraded.received.lower()
    assert upgraded.received.endswith(b"\r\n\r\n")
    assert http not in state.connections, f"{_uvicorn()}: the HTTP protocol still counts an upgraded socket"
    assert not transport.written, f"{_uvicorn()}: uvicorn answered the upgrade itself: {bytes(transport.written)!r}"


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
