"""The REST API on a real uvicorn: who is online, the log tail, auth, health, metrics, OpenAPI."""

from __future__ import annotations

import httpx
import pytest

from chat_protocol import ChatMessage
from support.peers import json_member
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker

pytestmark = pytest.mark.anyio


def http(tracker: RunningTracker) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=tracker.http_url, trust_env=False, timeout=UNIT)


async def test_members_lists_who_is_online(tracker: RunningTracker) -> None:
    """GET /members with the password names everyone online, with join time and idle seconds."""
    async with http(tracker) as client:
        assert (await client.get("/members", auth=("", PASSWORD))).json() == {"count": 0, "members": []}
        async with json_member(tracker.url, PASSWORD, "alpha"), json_member(tracker.url, PASSWORD, "beta"):
            response = await client.get("/members", headers={"Authorization": f"Bearer {PASSWORD}"})
            assert response.status_code == 200
            body = response.json()
            assert body["count"] == 2
            assert [m["name"] for m in body["members"]] == ["alpha", "beta"]
            assert all(m["joined_at"].endswith("Z") and m["idle_seconds"] >= 0 for m in body["members"])
        assert (await client.get("/members", auth=("anyone", PASSWORD))).json()["count"] == 0


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic Z2FyYmFnZQ=="}, {"Authorization": "Token x"}],
    ids=["missing", "wrong-bearer", "basic-without-colon", "unknown-scheme"],
)
async def test_rest_needs_the_password(tracker: RunningTracker, headers: dict[str, str]) -> None:
    """Without the right password /members and /log answer 401 with a WWW-Authenticate challenge."""
    async with http(tracker) as client:
        for path in ("/members", "/log"):
            response = await client.get(path, headers=headers)
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith('Basic realm="chat"')


async def test_log_tail_returns_the_last_events(tracker: RunningTracker) -> None:
    """GET /log?lines=N gives the last N chat.log events, oldest first, text unescaped."""
    async with json_member(tracker.url, PASSWORD, "alpha") as (alpha, _):
        for text in ("one", "two", "three\nlines\x1b[31m"):
            await alpha.send(type="message", text=text)
            await alpha.expect(ChatMessage)
    async with http(tracker) as client:
        response = await client.get("/log", params={"lines": 3}, auth=("", PASSWORD))
    events = response.json()["events"]
    assert [(e["kind"], e["name"], e["text"]) for e in events] == [
        ("msg", "alpha", "two"),
        ("msg", "alpha", "three\nlines\x1b[31m"),
        ("leave", "alpha", "closed"),
    ]
    assert events[0]["seq"] + 2 == events[2]["seq"]


@pytest.mark.parametrize("lines", ["0", "-1", "1001", "99999999999999999999", "junk", "1.5", ""])
async def test_bad_lines_values_get_422(tracker: RunningTracker, lines: str) -> None:
    """lines outside 1..1000 or not an integer is a 422 with a reason, never a 500."""
    async with http(tracker) as client:
        response = await client.get("/log", params={"lines": lines}, auth=("", PASSWORD))
    assert response.status_code == 422
    assert "detail" in response.json()


async def test_health_metrics_and_docs_are_open(tracker: RunningTracker) -> None:
    """/healthz, /metrics and /openapi.json need no password; metrics count members; no /docs (a CDN's script)."""
    async with json_member(tracker.url, PASSWORD, "alpha") as (alpha, _):
        await alpha.send(type="message", text="counted")
        await alpha.expect(ChatMessage)
        async with http(tracker) as client:
            health = await client.get("/healthz")
            assert health.status_code == 200 and health.json()["status"] == "ok"
            metrics = (await client.get("/metrics")).text
            assert "chat_members 1.0" in metrics
            assert "chat_messages_total 1.0" in metrics
            assert "chat_deliveries_total" in metrics and "chat_log_write_seconds_bucket" in metrics
            assert (await client.get("/docs")).status_code == 404
            assert (await client.get("/redoc")).status_code == 404
            schema = (await client.get("/openapi.json")).json()
            assert {"/members", "/log", "/healthz", "/metrics"} <= set(schema["paths"])
