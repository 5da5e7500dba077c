"""REST under bad input: schemathesis against the tracker's own OpenAPI schema, bad ``lines``, bad credentials."""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from chat_tracker.records import LogEntry
from support.badinput import LIFECYCLE_KINDS, BadInputs
from support.campaign import check_log_file
from support.environment import require
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker

ADMIN = "fuzzing-the-moderators"
MODERATION_KINDS = ("kick", "mute", "ban", "unban", "announce")  # chat.log lines an admin request writes

pytestmark = pytest.mark.anyio

BAD_LINES = ["-1", "0", "1001", "99999999999999999999999999", "abc", "1e3", "", "0x10", "5.5", "NaN", "%00"]
BAD_CREDENTIALS = {
    "missing": None,
    "wrong bearer": "Bearer wrong",
    "empty bearer": "Bearer",
    "wrong basic": "Basic " + base64.b64encode(b"u:wrong").decode(),
    "basic without colon": "Basic " + base64.b64encode(PASSWORD.encode()).decode(),
    "garbled basic": "Basic !!!",
    "unknown scheme": f"Token {PASSWORD}",
    "password as user": "Basic " + base64.b64encode(f"{PASSWORD}:".encode()).decode(),
}


def _client(tracker: RunningTracker, source: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=source)
    return httpx.AsyncClient(base_url=tracker.http_url, transport=transport, trust_env=False, timeout=4 * UNIT)


async def test_schema_documents_401_for_password_protected_endpoints(tracker: RunningTracker) -> None:
    """Regression: /members and /log declare their 401 answer, so clients and schema checkers expect it."""
    async with _client(tracker, "127.0.0.1") as client:
        schema = (await client.get("/openapi.json")).json()
    for path in ("/members", "/log"):
        responses = schema["paths"][path]["get"]["responses"]
        assert "401" in responses, path
        assert responses["401"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ProblemOut"}


async def test_bad_lines_get_422_and_bad_credentials_get_401(tracker: RunningTracker) -> None:
    """Every bad ``lines`` is 422, every bad credential 401 with a challenge; never a 5xx, the tracker stays up."""
    with BadInputs("rest", tracker) as tally:
        async with _client(tracker, "127.0.0.1") as client:
            auth = {"Authorization": f"Bearer {PASSWORD}"}
            for value in BAD_LINES:
                response = await client.get(f"/log?lines={value}", headers=auth)
                tally.sent()
                tally.answered(status=response.status_code)
                assert response.status_code == 422, (value, response.status_code)
            assert (await client.get("/log?lines=1000", headers=auth)).status_code == 200
            assert (await client.get("/log?lines=1&lines=2", headers=auth)).status_code == 200
        tally.check_tracker()
        for index, (label, header) in enumerate(BAD_CREDENTIALS.items()):
            # Each from its own address: wrong guesses slow their own address down, by design.
            async with _client(tracker, f"127.0.1.{index + 1}") as client:
                for path in ("/members", "/log?lines=5"):
                    response = await client.get(path, headers={"Authorization": header} if header else {})
                    tally.sent()
                    tally.answered(status=response.status_code)
                    tally.got_in(response.is_success)
                    assert response.status_code == 401, (label, path)
                    assert response.headers["www-authenticate"].startswith("Basic realm=")
                    assert response.json() == {"detail": "the server password is required"}
            tally.check_tracker()
        async with _client(tracker, "127.0.0.1") as client:
            assert (await client.get("/healthz")).json()["status"] == "ok"
        tally.compare_log(check_log_file(tracker.log_path), [])  # reading writes nothing
        assert not any(PASSWORD in line for line in tracker.output)


def _schemathesis(
    tracker: RunningTracker, tmp_path: Path, tally: BadInputs, secret: str, *only: str, schema: str = ""
) -> list[Any]:
    """Run schemathesis (every check, coverage and fuzzing phases) on the tracker; count what it sent in ``tally``.

    ``schema``: a schema file (then ``--url`` names the tracker), else the public /openapi.json.
    The requests are counted from its HAR report (every request it made, with the answer's
    status); returns those entries.
    """
    require(
        importlib.util.find_spec("schemathesis") is not None, "schemathesis is not installed (pip install schemathesis)"
    )
    command = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    require(command is not None, "the schemathesis command is not on PATH")
    har = tmp_path / "requests.har"
    result = subprocess.run(
        [
            str(command),
            "run",
            *([schema, "--url", tracker.http_url] if schema else [f"{tracker.http_url}/openapi.json"]),
            "-H",
            f"Authorization: Bearer {secret}",
            *only,
            "--checks",
            "all",
            "--phases",
            "coverage,fuzzing",
            "--max-examples",
            "100",
            "--workers",
            "1",
            "--seed",
            "1",
            "--no-color",
            "--report",
            "har",
            "--report-har-path",
            str(har),
        ],
        capture_output=True,
        text=True,
        timeout=24 * UNIT,
        cwd=tmp_path,
        check=False,
    )
    entries: list[Any] = json.loads(har.read_text(encoding="utf-8"))["log"]["entries"] if har.exists() else []
    tally.sent(len(entries))
    for entry in entries:
        tally.answered(status=entry["response"]["status"])
    tally.check_tracker()
    generated = re.search(r"(\d+) generated", result.stdout)
    tally.extra["generated"] = int(generated.group(1)) if generated else None
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    # rc 0 and no failures; a warning may remain (kick and mute of made-up names are all 404, by design).
    assert "Failures:" not in result.stdout
    return entries


def test_schemathesis_finds_nothing(tracker: RunningTracker, tmp_path: Path) -> None:
    """schemathesis on /openapi.json with the room password: no 5xx, answers match the schema (no /admin in it)."""
    with BadInputs("rest_schemathesis", tracker) as tally:
        _schemathesis(tracker, tmp_path, tally, PASSWORD)
        tally.compare_log(check_log_file(tracker.log_path), [])  # the public API writes nothing to chat.log


def test_schemathesis_on_the_admin_api_finds_nothing(start_tracker: Any, tmp_path: Path) -> None:
    """The same on /admin with moderation on and the admin password: kicks, mutes, bans of whatever it makes up."""
    tracker = start_tracker(env={"TRACKER_ADMIN_PASSWORD": ADMIN})
    # A ban's body is checked beyond what a JSON schema can say (exactly one of name and address, an
    # address that parses, a name someone could have): those get 422, which schemathesis's "a
    # schema-valid body must be accepted" check counts as a failure. Every other check runs.
    only = ("--exclude-checks", "positive_data_acceptance")
    # The admin routes are not in the public schema: their own is given to the admin password only.
    refused = httpx.get(f"{tracker.http_url}/admin/openapi.json", timeout=4 * UNIT)
    assert refused.status_code == 401
    schema = httpx.get(f"{tracker.http_url}/admin/openapi.json", headers={"Authorization": f"Bearer {ADMIN}"})
    assert {"/admin/kick", "/admin/ban", "/admin/bans"} <= set(schema.json()["paths"])
    (tmp_path / "admin.json").write_text(schema.text, encoding="utf-8")
    with BadInputs("rest_schemathesis_admin", tracker) as tally:
        requests = _schemathesis(tracker, tmp_path, tally, ADMIN, *only, schema=str(tmp_path / "admin.json"))
        tally.forged_lines += _unexplained_moderation(check_log_file(tracker.log_path), requests)
    assert not any(ADMIN in line for line in tracker.output)


def _unexplained_moderation(entries: list[LogEntry], requests: list[Any]) -> int:
    """chat.log lines no accepted admin request explains: each 2xx answer to a change explains one moderation line."""
    changes = sum(1 for r in requests if r["request"]["method"] != "GET" and 200 <= r["response"]["status"] < 300)
    moderation = sum(1 for e in entries if e.kind in MODERATION_KINDS)
    others = sum(1 for e in entries if e.kind not in MODERATION_KINDS and e.kind not in LIFECYCLE_KINDS)
    return others + max(0, moderation - changes)
