"""The containers as users run them: `docker compose up tracker`, `run client`, `stop`, `down`, `up`.

Real Docker engine, real Compose v2, the image built from the Dockerfile. Each test has its own
Compose project and removes it (volumes included) at the end.
"""

from __future__ import annotations

import urllib.request

import pytest

from support.compose import PASSWORD, Compose, get_json
from support.timing import UNIT

pytestmark = [pytest.mark.docker, pytest.mark.timeout(int(120 * UNIT))]


def test_three_members_converse_and_the_checker_passes(compose: Compose) -> None:
    """alpha, beta and gamma play the seed's conversation; the checker's verdict is the run's status."""
    done = compose.run("run", "--rm", "checker", timeout=36 * UNIT, check=False)
    print(done.stdout, done.stderr)
    assert done.returncode == 0, f"the compose test run failed:\n{done.stdout}\n{done.stderr}"
    assert "checker: all checks passed" in done.stdout
    # And from the host, as the README's curl does, through the published port.
    status, members = get_json(compose.http_base() + "/members", PASSWORD)
    assert (status, members) == (200, {"count": 0, "members": []})
    assert get_json(compose.http_base() + "/members", None)[0] == 401


def test_the_checker_fails_a_run_without_the_conversation(compose: Compose) -> None:
    """The checker is no rubber stamp: with no member having talked, its run exits non-zero."""
    compose.up_tracker()
    done = compose.run("run", "--rm", "--no-deps", "checker", timeout=12 * UNIT, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL chat.log holds the conversation" in done.stdout
    assert "checker: FAILED" in done.stdout


def test_stop_and_start_keeps_every_member(compose: Compose) -> None:
    """`docker compose stop tracker`, then `up` again, during a chat: the clients resume; nobody left or joined."""
    compose.up_tracker()
    alpha, beta = compose.client("alpha"), compose.client("beta")
    try:
        alpha.expect("its welcome", lambda e: e["type"] == "welcome")
        beta.expect("its welcome", lambda e: e["type"] == "welcome")
        alpha.expect("beta joining", lambda e: e.get("name") == "beta" or "beta" in e.get("members", ()))
        alpha.say("said before the restart")
        beta.expect("alpha's message", lambda e: e["type"] == "message" and e["text"] == "said before the restart")

        took = compose.stop_tracker()  # SIGTERM: a restart, as for an upgrade
        for client in (alpha, beta):
            bye = client.expect("the restart notice", lambda e: e["type"] == "bye")
            assert bye["reason"] == "restart"
        compose.up_tracker()
        for client in (alpha, beta):
            resumed = client.expect("its resume", lambda e: e["type"] == "resumed")
            assert resumed["recovered"] and sorted(resumed["members"]) == ["alpha", "beta"]

        alpha.say("said after the restart")
        beta.expect("alpha's message", lambda e: e["type"] == "message" and e["text"] == "said after the restart")
        for client in (alpha, beta):
            client.close_input()
            assert client.finish() == 0, client.stderr
    finally:
        alpha.kill()
        beta.kill()
    assert took < 15, f"stop took {took:.1f} s, more than the 15 s grace period"
    log = [line.split(" ", 4) for line in compose.chat_log()]
    kinds = [(fields[2], fields[3]) for fields in log]
    assert sorted(k for k in kinds if k[0] == "join") == [("join", "alpha"), ("join", "beta")], "nobody joined twice"
    stop = next(fields for fields in log if fields[2] == "stop")
    assert stop[4] == "tracker stopped for a restart"
    assert sorted(k for k in kinds if k[0] == "leave") == [("leave", "alpha"), ("leave", "beta")]  # at the end only
    assert int(next(f for f in log if f[2] == "leave")[0]) > int(stop[0])


def test_ctrl_c_on_the_tracker_tells_every_member_goodbye(compose: Compose) -> None:
    """`docker compose kill -s SIGINT tracker` (Ctrl+C to a tracker in a terminal): the chat is over, clients exit 3."""
    compose.up_tracker()
    alpha, beta = compose.client("alpha"), compose.client("beta")
    try:
        alpha.expect("its welcome", lambda e: e["type"] == "welcome")
        beta.expect("its welcome", lambda e: e["type"] == "welcome")
        alpha.expect("beta joining", lambda e: e.get("name") == "beta" or "beta" in e.get("members", ()))

        compose.run("kill", "--signal", "SIGINT", "tracker")

        for client in (alpha, beta):
            bye = client.expect("the tracker's goodbye", lambda e: e["type"] == "bye")
            assert bye["reason"] == "shutdown"
            assert client.finish() == 3, client.stderr  # 3: the tracker went away
            assert "the tracker went away" in client.stderr
    finally:
        alpha.kill()
        beta.kill()
    compose.run("wait", "tracker", timeout=12 * UNIT, check=False)
    assert compose.tracker_state()["State"]["ExitCode"] == 0
    log = [line.split(" ", 4) for line in compose.chat_log()]
    assert sorted(fields[3] for fields in log if fields[2] == "leave") == ["alpha", "beta"]
    assert log[-1][2] == "stop", "chat.log was closed properly"


def test_chat_log_survives_down_and_up(compose: Compose) -> None:
    """chat.log lives in the named volume: after `down` and `up` it is all there, seq continuing."""
    compose.up_tracker()
    alpha = compose.client("alpha")
    alpha.say("written before the restart")
    alpha.close_input()
    assert alpha.finish() == 0, alpha.stderr
    compose.run("down", "--timeout", "10")  # no --volumes: what users do to stop everything

    compose.up_tracker()
    beta = compose.client("beta")
    beta.say("written after the restart")
    beta.close_input()
    assert beta.finish() == 0, beta.stderr

    log = [line.split(" ", 4) for line in compose.chat_log()]
    seqs = [int(fields[0]) for fields in log]
    assert seqs == list(range(1, len(seqs) + 1)), "seq continues across the restart, one by one"
    assert [fields[2] for fields in log] == ["start", "join", "msg", "leave", "stop", "start", "join", "msg", "leave"]
    messages = [fields[3:] for fields in log if fields[2] == "msg"]
    assert messages == [["alpha", "written before the restart"], ["beta", "written after the restart"]]
    welcome = beta.events[0]
    assert welcome["type"] == "welcome" and welcome["seq"] == seqs[6]


def test_missing_password_is_one_clear_error_not_a_crash_loop(compose: Compose) -> None:
    """Without TRACKER_PASSWORD the tracker says so and stays stopped (exit 2), no restarts."""
    del compose.env["TRACKER_PASSWORD"]
    done = compose.run("up", "--no-log-prefix", "tracker", timeout=12 * UNIT, check=False)
    output = done.stdout + done.stderr
    assert "chat-tracker: error: no server password: set TRACKER_PASSWORD" in output, output
    state = compose.tracker_state()
    assert (state["State"]["Status"], state["State"]["ExitCode"], state["RestartCount"]) == ("exited", 2, 0)


def test_the_image_serves_the_web_page(compose: Compose) -> None:
    """The browser client's files are inside the image (package data): `/` and its modules, with their headers."""
    compose.up_tracker()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(compose.http_base() + "/", timeout=UNIT) as page:
        html = page.read().decode("utf-8")
        assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert 'type="module"' in html
    for name in ("app.js", "link.js", "logic.js", "style.css"):
        with opener.open(f"{compose.http_base()}/web/{name}", timeout=UNIT) as asset:
            assert asset.status == 200 and asset.read(), name
