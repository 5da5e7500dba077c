"""The native reference servers (ngIRCd, Redis pub/sub, Node.js + ws) take part in a fan-out.

Each test starts one native server the way the harness does, joins a few members through
one real load-generator process speaking that server's protocol, publishes for half a
second and checks every expected delivery arrived. Off CI, a server whose tool is not
installed (or, for nodews, an npm that cannot install ``ws``) is skipped: the native peers
are optional references, never part of the product. In CI (any ``CI`` value, where ``.ci/run``
installs ngircd, redis-server, nodejs and npm) it fails instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import native
from bench.generators import Generators, generator_cores
from bench.native import NATIVE, missing, node_modules
from bench.workloads import Bench, Plan, running
from support.environment import require
from support.timing import UNIT

ROOT = Path(__file__).resolve().parents[2]
MEMBERS = 6


@pytest.fixture
def generators(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Generators]:
    # The generator process imports bench from the repository, as under ``python -m bench``.
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    gens = Generators(1, generator_cores(), tmp_path / "logs")
    yield gens
    gens.close()


@pytest.mark.timeout(12 * UNIT)
@pytest.mark.parametrize("kind", NATIVE)
def test_a_native_reference_delivers_every_message(kind: str, tmp_path: Path, generators: Generators) -> None:
    """N members join, two publish at 40 msg/s: deliveries = published x (N-1), or x N for Redis
    (which hands a PUBLISH to the publisher's own subscription too), none lost, latencies sampled."""
    tools = missing(kind)
    require(not tools, f"{kind} needs {', '.join(tools)} (.ci/run installs it)")
    if kind == "nodews":
        try:
            node_modules()  # ws from the npm registry on first use, then from the cache
        except RuntimeError as exc:
            require(False, f"nodews needs ws, which npm could not install: {exc} (.ci/run installs it)")
    plan = Plan(servers=(kind,), results=tmp_path, publishers=2, generators=1, connect_timeout=4 * UNIT)
    with running(plan, kind, "test") as server:
        bench = Bench(plan, generators, server)
        try:
            joined = bench.join(MEMBERS, plan.connect_timeout)
            assert joined["joined"] == MEMBERS, joined
            row = bench.window(40.0, 0.5, "test", drain=2.0, arrivals="even")
        finally:
            bench.leave_all()
    per_message = MEMBERS if kind == "redis" else MEMBERS - 1
    assert row["published"] >= 10
    assert row["expected"] == row["published"] * per_message
    assert row["received"] == row["expected"], row
    assert row["lost"] == 0
    assert row["errors"] == 0
    assert row["p50_ms"] is not None


def test_a_missing_native_tool_is_named_and_python_servers_need_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ngircd, redis-server or node on the machine the Python servers still start, and
    listing a native one fails before anything runs, with the tool it lacks in the message."""
    monkeypatch.setattr(native, "tool", lambda name, fallback=None: None)
    native.require(("tracker", "baseline", "ceiling", "typical"))
    for kind, tool in (("ngircd", "ngircd"), ("redis", "redis-server"), ("nodews", "node")):
        with pytest.raises(RuntimeError, match=f"{kind} needs {tool}"):
            native.require(("tracker", kind))
