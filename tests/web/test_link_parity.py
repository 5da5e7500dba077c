"""The page's Link and memory (link.js, logic.js) and the terminal client's (link.py, resume.py) fed the same events.

Each scenario runs once through the Python and once through the JavaScript in chromium,
and both must give the same results: the state machine's moves and refusals, what the
memory shows and keeps to send again, and what the Link sends on each connection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from chat_client import link as link_module
from chat_client.errors import InvalidState
from chat_client.link_state import TRANSITIONS, LinkEvent, LinkMachine, LinkState
from chat_client.resume import ResumeState, message_ids
from chat_protocol import ChatMessage, Error, Joined, Limits, Resumed, Welcome, decode_server, encode
from support import link_parity
from support.tracker import launch_tracker
from support.web import launch_chromium, open_page

TS = "2026-12-02T01:00:00.000Z"
NAME = "webby"
# Generous limits: the page's pacing never holds a frame back in these scenarios.
LIMITS = Limits(rate_per_second=100.0, rate_burst=50)


@pytest.fixture(scope="module")
def page(playwright_driver: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    """One page for the module: the scenarios only import the page's modules, on a tracker that serves them."""
    tracker = launch_tracker(tmp_path_factory.mktemp("data"))
    context = launch_chromium(playwright_driver, tmp_path_factory.mktemp("profile"))
    try:
        yield open_page(context, tracker)
    finally:
        context.close()
        tracker.stop()


def frame(message: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(encode(message))
    return body


def welcome(seq: int = 10, token: str = "t1") -> dict[str, Any]:
    return frame(Welcome(seq, TS, NAME, "hi", [NAME], LIMITS, epoch="e1", token=token, resume_grace=60))


def resumed(seq: int, replayed: int) -> dict[str, Any]:
    return frame(Resumed(seq, NAME, "e1", "t2", True, replayed, replayed, [NAME], LIMITS, resume_grace=60))


def says(seq: int, text: str, name: str = NAME, id: str | None = None) -> dict[str, Any]:
    return frame(ChatMessage(seq, TS, name, text, id))


def refused(code: str, id: str | None = None) -> dict[str, Any]:
    return frame(Error(code, f"refused: {code}", id))


# --- the table ------------------------------------------------------------------------------------


def js(page: Page, body: str, argument: Any = None) -> Any:
    """Evaluate ``body`` (statements using ``logic`` and ``arg``) with the page's logic module imported."""
    return page.evaluate(f"async (arg) => {{ const logic = await import('/web/logic.js'); {body} }}", argument)


def test_the_page_has_the_same_states_events_and_table(page: Page) -> None:
    table = {
        state.value: {event.value: after.value for event, after in row.items()} for state, row in TRANSITIONS.items()
    }
    assert js(page, "return logic.TRANSITIONS") == table
    assert js(page, "return Object.values(logic.LinkState)") == [state.value for state in LinkState]
    assert js(page, "return Object.values(logic.LinkEvent)") == [event.value for event in LinkEvent]


def _python_machine(events: list[str]) -> list[dict[str, str]]:
    machine, outcomes = LinkMachine(), []
    for event in events:
        try:
            outcomes.append({"state": machine.fire(LinkEvent(event)).value})
        except InvalidState as error:
            outcomes.append({"raised": str(error), "state": machine.state.value})
    return outcomes


JS_MACHINE = """
const machine = new logic.LinkMachine();
return arg.map((event) => {
  try {
    return { state: machine.fire(event) };
  } catch (error) {
    if (!(error instanceof logic.InvalidState)) throw error;
    return { raised: error.message, state: machine.state };
  }
});
"""


def _walks() -> list[list[str]]:
    """Every move from every state, legal or not (the shortest way there, then the move), and random walks."""
    paths: dict[LinkState, list[str]] = {LinkState.IDLE: []}
    for _ in LinkState:  # breadth first, one level per round
        for state, path in list(paths.items()):
            for event, after in TRANSITIONS[state].items():
                paths.setdefault(after, [*path, event.value])
    every_move = [[*paths[state], event.value] for state in LinkState for event in LinkEvent]
    draw = random.Random(23)
    wander = [[draw.choice(list(LinkEvent)).value for _ in range(30)] for _ in range(20)]
    return every_move + wander


def test_both_machines_take_every_move_alike_and_refuse_the_same(page: Page) -> None:
    """100 (state, event) pairs and 20 random walks: the same states, the same InvalidState with the same message."""
    walks = _walks()
    assert len(walks) == len(LinkState) * len(LinkEvent) + 20
    results = js(page, f"return {json.dumps(walks)}.map((events) => {{ {JS_MACHINE.replace('arg', 'events')} }})")
    assert results == [_python_machine(walk) for walk in walks]
    refusals = [outcome for walk in results for outcome in walk if "raised" in outcome]
    assert {"raised": "cannot welcome in state live", "state": "live"} in refusals


# --- the memory -----------------------------------------------------------------------------------


def _python_memory(steps: list[dict[str, Any]]) -> dict[str, Any]:
    first = decode_server(json.dumps(welcome()))
    assert isinstance(first, Welcome)
    memory = ResumeState(first, message_ids("tag"))
    shown = []
    for step in steps:
        if "sent" in step:
            memory.sent(step["sent"])
        elif "queued" in step:
            memory.queue(step["queued"])
        elif isinstance(message := decode_server(json.dumps(step)), Resumed):
            memory.on_resumed(message)
        else:
            shown.append(memory.on_event(message))
    pending = [*memory.unacknowledged, *memory.waiting]
    return {
        "shown": shown,
        "pending": [f"{entry.id} {entry.text}" for entry in pending],
        "resend": [f"{entry.id} {entry.text}" for entry in memory.lines_to_resend()],
        "after": memory.last_seq,
        "replaying": memory.replaying,
    }


JS_MEMORY = """
const memory = new logic.Memory(arg.welcome, logic.messageIds("tag"));
const shown = [];
for (const step of arg.steps) {
  if (step.sent) memory.sent(step.sent);
  else if (step.queued) memory.queue(step.queued);
  else if (step.type === "resumed") memory.onResumed(step);
  else shown.push(memory.onEvent(step));
}
const line = (entry) => `${entry.id} ${entry.text}`;
return { shown, pending: memory.pending.map(line), resend: memory.linesToResend().map(line),
         after: memory.lastSeq, replaying: memory.replaying };
"""

MEMORY_SCENARIOS: dict[str, list[dict[str, Any]]] = {
    "an error naming an unacknowledged message drops it": [
        {"sent": "one"},
        {"sent": "two"},
        {"sent": "three"},
        refused("rate_limited", "tag-2"),
        refused("log_unavailable", "tag-9"),  # not ours to forget
        refused("rate_limited"),  # a refused `who`: no id
        says(11, "one", id="tag-1"),
    ],
    "an error does not touch the lines still waiting": [
        {"sent": "one"},
        {"queued": "away"},
        refused("muted", "tag-2"),
        refused("too_long", "tag-1"),
    ],
    "a replay without ids acknowledges the oldest of the same text": [
        {"sent": "one"},
        {"sent": "two"},
        {"sent": "three"},
        {"queued": "typed while away"},
        resumed(13, 3),
        says(11, "meanwhile", name="beta"),
        says(12, "one"),
        says(12, "again", name="beta"),
        says(13, "two"),
    ],
    "an echo by id, out of order; old events dropped": [
        {"sent": "same"},
        {"sent": "same"},
        says(11, "same", id="tag-2"),
        frame(Joined(9, TS, "old")),
        says(11, "same", id="tag-2"),
    ],
}


@pytest.mark.parametrize("steps", MEMORY_SCENARIOS.values(), ids=MEMORY_SCENARIOS.keys())
def test_both_memories_show_and_keep_the_same(page: Page, steps: list[dict[str, Any]]) -> None:
    assert js(page, JS_MEMORY, {"welcome": welcome(), "steps": steps}) == _python_memory(steps)


def test_an_error_naming_a_message_is_never_sent_again(page: Page) -> None:
    """The drift of issue 23: the page kept a refused message to send again; neither client does now."""
    steps = MEMORY_SCENARIOS["an error naming an unacknowledged message drops it"]
    for result in (_python_memory(steps), js(page, JS_MEMORY, {"welcome": welcome(), "steps": steps})):
        assert result["pending"] == result["resend"] == ["tag-3 three"]


# --- the Link -------------------------------------------------------------------------------------

ID1, ID2, ID3 = "00000000-1", "00000000-2", "00000000-3"
LINK_SCENARIOS: dict[str, list[dict[str, Any]]] = {
    "a refused message is not sent again on the next connection": [
        {"frame": welcome()},
        {"say": "one"},
        {"say": "two"},
        {"frame": refused("rate_limited", ID1)},
        {"close": 1006},
        {"accept": True},
        {"frame": resumed(10, 0)},
        {"say": "three"},
    ],
    "lines typed while away go after the unacknowledged, those the replay echoes excepted": [
        {"frame": welcome()},
        {"say": "one"},
        {"say": "two"},
        {"close": 1006},
        {"say": "away"},
        {"accept": True},
        {"frame": resumed(12, 2)},
        {"frame": says(11, "one", id=ID1)},
        {"frame": says(12, "beta here", name="beta")},
    ],
    "a refused resume joins again and sends what is owed": [
        {"frame": welcome()},
        {"say": "one"},
        {"close": 1012},
        {"accept": True},
        {"frame": refused("resume_expired")},
        {"frame": welcome(20, "t3")},
        {"who": True},
    ],
    "a leave asked while away goes after the resend": [
        {"frame": welcome()},
        {"say": "one"},
        {"close": 1006},
        {"leave": True},
        {"who": True},
        {"accept": True},
        {"frame": resumed(10, 0)},
        {"close": 1000},
        {"say": "after the end"},
    ],
    "a connection lost during an attempt is tried again": [
        {"frame": welcome()},
        {"close": 1006},
        {"close": 1006},
        {"accept": True},
        {"close": 1006},
        {"accept": True},
        {"frame": resumed(10, 0)},
    ],
    "nothing can be said before the first welcome, nor after a first connection that failed": [
        {"say": "too early"},
        {"who": True},
        {"leave": True},
        {"close": 1006},
        {"say": "too late"},
    ],
    "a close the tracker means ends the session": [
        {"frame": welcome()},
        {"close": 4010},
        {"say": "kept, never sent"},
        {"who": True},
    ],
}


def _python_link(monkeypatch: pytest.MonkeyPatch, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    script = link_parity.Script()
    for name, value in link_parity.patches(script).items():
        monkeypatch.setattr(link_module, name, value)
    # Its own thread: Playwright's event loop has the main thread.
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, link_parity.run(script, NAME, steps)).result()


@pytest.mark.parametrize("steps", LINK_SCENARIOS.values(), ids=LINK_SCENARIOS.keys())
def test_both_links_move_and_send_alike(
    page: Page, monkeypatch: pytest.MonkeyPatch, steps: list[dict[str, Any]]
) -> None:
    """After the start and after each step: the same state, the same frames sent, the same answer or refusal."""
    harness = (Path(__file__).parent / "link_parity.js").read_text()
    js_snapshots = page.evaluate(harness, {"name": NAME, "steps": steps})
    assert _python_link(monkeypatch, steps) == js_snapshots


def test_the_refused_message_is_missing_from_the_resend(page: Page, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a person would check in the first scenario: after the reconnection only "two" goes again, then "three"."""
    steps = LINK_SCENARIOS["a refused message is not sent again on the next connection"]
    harness = (Path(__file__).parent / "link_parity.js").read_text()
    for snapshots in (page.evaluate(harness, {"name": NAME, "steps": steps}), _python_link(monkeypatch, steps)):
        last = snapshots[-1]
        assert last["state"] == "live"
        resume_at = next(i for i, sent in enumerate(last["sent"]) if sent["type"] == "resume")
        assert last["sent"][resume_at + 1 :] == [
            {"type": "message", "text": "two", "id": ID2},
            {"type": "message", "text": "three", "id": ID3},
        ]
