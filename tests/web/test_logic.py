"""The page's own logic (web/logic.js) against the Python it ports, run in the browser itself."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page

from chat_client.backoff import delay
from chat_client.commands import parse
from chat_protocol import CloseCode, name_key, passphrase_problem, sanitize_for_terminal, should_retry
from chat_protocol.errors import ProtocolError
from chat_protocol.rooms import DEFAULT_ROOM, room_key, room_name
from support.tracker import launch_tracker
from support.web import launch_chromium, open_page

NAMES = ["alpha", "ALPHA", "a1pha", "alp.ha", "a-l-p-h-a", "Bob_99", "i0I1", "z", "x" * 32, "webby", "termi", "plainy"]


@pytest.fixture(scope="module")
def page(playwright_driver: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    """One page for the module: these tests only call functions, so they share a tracker and a browser."""
    tracker = launch_tracker(tmp_path_factory.mktemp("data"))
    context = launch_chromium(playwright_driver, tmp_path_factory.mktemp("profile"))
    try:
        yield open_page(context, tracker)
    finally:
        context.close()
        tracker.stop()


def run(page: Page, body: str, argument: Any = None) -> Any:
    """Evaluate ``body`` (statements using ``logic`` and ``arg``) with the page's logic module imported."""
    return page.evaluate(f"async (arg) => {{ const logic = await import('/web/logic.js'); {body} }}", argument)


def test_name_keys_and_colours_match_the_terminal_client(page: Page) -> None:
    """nameKey is name_key, and the colour index is crc32(name_key) % 11, as in chat_client.render."""
    keys, colours = run(page, "return [arg.map(logic.nameKey), arg.map(logic.colourIndex)]", NAMES)
    assert keys == [name_key(name) for name in NAMES]
    assert colours == [zlib.crc32(name_key(name).encode()) % 11 for name in NAMES]
    assert run(page, "return logic.PALETTE_SIZE") == 11


def test_close_codes_and_backoff_match_the_protocol(page: Page) -> None:
    """shouldRetry agrees with chat_protocol.should_retry; backoffDelay with chat_client.backoff.delay."""
    codes = [int(code) for code in CloseCode] + [1006, 1013, 1014, 1015, 3000, 4000, 4999]
    assert run(page, "return arg.map(logic.shouldRetry)", codes) == [should_retry(code) for code in codes]
    for draw, pick in ((0.0, min), (1.0, max)):  # the jitter's bounds: random() 0 is a factor 0.5, 1 is 1.0
        js = run(page, f"return [...Array(12).keys()].map(a => logic.backoffDelay(a, () => {draw}))")
        assert js == pytest.approx([delay(attempt, pick) for attempt in range(12)])


def test_commands_and_escapes_match_the_terminal_client(page: Page) -> None:
    """parseCommand reads a line as chat_client.commands.parse does; safe() escapes as sanitize_for_terminal."""
    lines = [
        "hi",
        "  exit ",
        "exit now",
        "/quit",
        "/EXIT",
        "/who there",
        "/help",
        "/register",
        "//slash",
        "  //x",
        "/nope",
        "",
        "   ",
    ]
    parsed = run(page, "return arg.map(logic.parseCommand)", lines)
    assert [(p["action"], p["text"]) for p in parsed] == [(c.action.value, c.text) for c in map(parse, lines)]
    texts = ["plain", "a\nb\tc\rd", "\x1b[2J", "\u202eevil", "\x7f\x85", "\u2028", "back\\slash", "emoji \U0001f600"]
    assert run(page, "return arg.map(logic.safe)", texts) == [sanitize_for_terminal(text) for text in texts]


def test_a_new_passphrase_is_judged_as_the_tracker_judges_it(page: Page) -> None:
    """passphraseProblem refuses exactly what chat_protocol.passphrase_problem refuses (and two that differ)."""
    passphrases = ["", "seven77", "eight888", "\U0001f600" * 8, "x" * 1024, "x" * 1025]
    found = run(page, "return arg.map(p => logic.passphraseProblem(p, p))", passphrases)
    assert [bool(problem) for problem in found] == [passphrase_problem(p) is not None for p in passphrases]
    assert run(page, "return logic.passphraseProblem('eight888', 'eight889')", None) == "The two passphrases differ."


def test_mentions_use_the_same_name_rules(page: Page) -> None:
    """A mention is any word that is the same name as yours: case, lookalikes and separators included."""
    cases = [("hi alpha!", True), ("@ALPHA look", True), ("a1pha?", True), ("alphabet", False), ("alp", False)]
    found = run(page, "return arg.map(t => logic.mentions(t, 'alpha'))", [text for text, _ in cases])
    assert found == [expected for _, expected in cases]


def _memory_script(steps: list[dict[str, Any]]) -> str:
    return (
        "const memory = new logic.Memory({type: 'welcome', seq: 10, name: 'webby', token: 't', epoch: 'e',"
        " limits: {}}, logic.messageIds('tag'));"
        f"const log = []; for (const step of {json.dumps(steps)}) {{"
        " if (step.sent) memory.sent(step.sent);"
        " else if (step.queued) memory.queue(step.queued);"
        " else if (step.resumed) memory.onResumed(step.resumed);"
        " else log.push(memory.onEvent(step)); }"
        " return {shown: log, pending: memory.pending.map(e => e.id + ' ' + e.text),"
        " resend: memory.linesToResend().map(e => e.id + ' ' + e.text), after: memory.lastSeq,"
        " replaying: memory.replaying};"
    )


def test_memory_resends_only_what_a_restart_did_not_log(page: Page) -> None:
    """After a restart the replay (no ids) acknowledges the first unacknowledged messages; only the rest go again."""
    steps: list[dict[str, Any]] = [
        {"sent": "one"},
        {"sent": "two"},
        {"sent": "three"},
        {"queued": "typed while away"},
        {"resumed": {"seq": 13, "name": "webby", "token": "t2", "epoch": "e", "replayed": 3, "limits": {}}},
        {"type": "message", "seq": 11, "name": "beta", "text": "meanwhile"},
        {"type": "message", "seq": 12, "name": "webby", "text": "one"},  # logged before the kill, echo lost
        {"type": "message", "seq": 12, "name": "beta", "text": "again"},  # a duplicate: not shown
        {"type": "message", "seq": 13, "name": "webby", "text": "two"},
    ]
    result = run(page, _memory_script(steps))
    assert result["shown"] == [True, True, False, True]
    assert result["resend"] == ["tag-3 three", "tag-4 typed while away"]
    assert result["after"] == 13 and result["replaying"] is False


def test_memory_acknowledges_by_id_and_ignores_old_events(page: Page) -> None:
    """An echo with an id acknowledges that message even out of order; an event at or before the last seq is dropped."""
    steps: list[dict[str, Any]] = [
        {"sent": "same"},
        {"sent": "same"},
        {"type": "message", "seq": 11, "name": "webby", "text": "same", "id": "tag-2"},
        {"type": "joined", "seq": 9, "name": "old"},
        {"type": "message", "seq": 11, "name": "webby", "text": "same", "id": "tag-2"},
    ]
    result = run(page, _memory_script(steps))
    assert result["shown"] == [True, False, False]
    assert result["pending"] == ["tag-1 same"]


def _page(first: int, last: int, more: bool, seqs: list[int], gone: list[int] | None = None) -> dict[str, Any]:
    events = [{"type": "message", "seq": seq, "name": "bob", "text": f"m{seq}"} for seq in seqs]
    return {"type": "history_page", "first": first, "last": last, "more": more, "events": events, "gone": gone}


BACKLOG_SCRIPT = """
const backlog = new logic.Backlog(arg.welcome);
const asked = [];
const shown = [];
for (const page of arg.pages) {
  asked.push(backlog.request());
  asked.push(backlog.request());  // a second ask while one is on its way: none
  const { events, gone } = backlog.onPage(page);
  shown.push({ seqs: events.map((e) => e.seq), gone });
}
return { asked, shown, done: backlog.done, after: backlog.request() };
"""


def test_the_backlog_pages_from_the_read_position_to_the_welcome_each_event_once(page: Page) -> None:
    """From `read` on, page after page (each asking from the last one's `last`), up to the welcome's seq - 1 only."""
    welcome = {"seq": 20, "read": 10, "unread": 9}
    pages = [
        _page(11, 14, True, [11, 12, 14], gone=[13, 13]),
        _page(15, 22, True, [14, 15, 18, 19, 21, 22]),  # 14 again, and live events past the welcome
    ]
    result = run(page, BACKLOG_SCRIPT, {"welcome": welcome, "pages": pages})
    limit = run(page, "return logic.HISTORY_PAGE")
    assert result["asked"] == [
        {"type": "history", "after": 10, "limit": limit},
        None,
        {"type": "history", "after": 14, "limit": limit},
        None,
    ]
    assert result["shown"] == [{"seqs": [11, 12, 14], "gone": [13, 13]}, {"seqs": [15, 18, 19], "gone": None}]
    assert result["done"] is True and result["after"] is None


def test_the_backlog_stops_when_nothing_is_unread_or_a_page_moves_nowhere(page: Page) -> None:
    """No `unread`: nothing is asked; a page that does not move past what was covered ends the asking (no loop)."""
    nothing = run(page, BACKLOG_SCRIPT, {"welcome": {"seq": 20, "read": 10, "unread": 0}, "pages": []})
    assert nothing["done"] is True and nothing["after"] is None
    stuck = run(
        page, BACKLOG_SCRIPT, {"welcome": {"seq": 20, "read": 10, "unread": 5}, "pages": [_page(11, 10, True, [])]}
    )
    assert stuck["shown"] == [{"seqs": [], "gone": None}]
    assert stuck["done"] is True and stuck["after"] is None


READ_SCRIPT = """
let now = 0;
const reading = new logic.ReadPosition(arg.start, 1000, () => now);
const out = [];
for (const step of arg.steps) {
  if (step.shown) step.shown.forEach((seq) => reading.shown(seq));
  if (step.seen) step.seen.forEach((seq) => reading.seen(seq));
  if ("fetched" in step) reading.fetchedUpTo(step.fetched);
  if (step.at !== undefined) now = step.at;
  const seq = reading.due(Boolean(step.force));
  if (seq !== null) reading.sentUpTo(seq);
  out.push(seq);
}
return out;
"""


def test_the_read_position_moves_over_what_was_seen_at_most_once_a_second(page: Page) -> None:
    """Never past a line shown but not seen, nor past the unfetched backlog; at most once a second unless forced."""
    steps: list[dict[str, Any]] = [
        {"shown": [11, 12, 13], "fetched": 12, "seen": [11, 12, 13], "at": 0},  # the backlog covers up to 12 so far
        {"fetched": None, "at": 500},  # all fetched, but half a second after the last read
        {"at": 1000},
        {"shown": [14, 15, 16], "seen": [16], "at": 5000},  # 14 and 15 still below the fold
        {"seen": [14], "at": 5100},
        {"seen": [15], "at": 5200},  # 16 is read now, but the last read went 100 ms ago
        {"at": 5300, "force": True},  # leaving: sent at once
        {"seen": [3], "at": 9000},  # an older line (history above): the position never goes back
    ]
    result = run(page, READ_SCRIPT, {"start": 10, "steps": steps})
    assert result == [12, None, 13, None, 14, None, 16, None]


USER_AGENTS = {
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36": (
        "browser: Chrome 120 on Linux"
    ),
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 "
    "Safari/537.36 Edg/121.0.2277.83": "browser: Edge 121 on Windows",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.2; rv:122.0) Gecko/20100101 Firefox/122.0": (
        "browser: Firefox 122 on macOS"
    ),
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.2 Mobile/15E148 Safari/604.1": "browser: Safari 17 on iOS",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 "
    "Mobile Safari/537.36": "browser: Chrome 120 on Android",
    "": "browser: unknown",
}


def test_the_device_label_names_the_browser_within_the_trackers_limit(page: Page) -> None:
    """A short "browser: NAME VERSION on SYSTEM", never over the join's `device` limit, whatever the agent."""
    agents = list(USER_AGENTS)
    assert run(page, "return arg.map(logic.deviceLabel)", agents) == list(USER_AGENTS.values())
    limit = run(page, "return logic.MAX_DEVICE_LABEL_CHARS")
    odd = "\U0001f600" * (2 * limit)  # nothing recognisable, and astral: counted as characters, not UTF-16 units
    label = run(page, "return logic.deviceLabel(arg)", odd)
    assert label.startswith("browser: \U0001f600") and len(label) == limit


TOKENS_SCRIPT = """
const store = new Map();
const storage = arg.refusing
  ? { getItem() { throw new Error("denied"); }, setItem() { throw new Error("denied"); } }
  : { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, String(v)) };
const tokens = new logic.DeviceTokens(storage);
const out = [];
for (const step of arg.steps) {
  if (step.keep) tokens.keep(...step.keep);
  if (step.forget) tokens.forget(step.forget);
  out.push({ get: tokens.get(step.get ?? ""), last: tokens.lastName });
}
return { out, stored: store.get(logic.DEVICE_TOKENS_KEY) ?? null };
"""


def test_device_tokens_are_kept_per_account_replaced_and_forgotten(page: Page) -> None:
    """One token per account (lookalikes find it); a new one replaces it; forgetting one leaves the others."""
    steps = [
        {"get": "webby"},
        {"keep": ["webby", "d1", "t1"], "get": "WEBBY"},
        {"keep": ["bob", "d2", "t2"], "get": "webby"},
        {"keep": ["webby", "d1", "t3"], "get": "webby"},
        {"forget": "webby", "get": "webby"},
        {"get": "b0b"},
    ]
    result = run(page, TOKENS_SCRIPT, {"steps": steps})
    webby1 = {"name": "webby", "device": "d1", "token": "t1"}
    webby3 = {**webby1, "token": "t3"}
    bob = {"name": "bob", "device": "d2", "token": "t2"}
    assert result["out"] == [
        {"get": None, "last": None},
        {"get": webby1, "last": "webby"},
        {"get": webby1, "last": "bob"},
        {"get": webby3, "last": "webby"},
        {"get": None, "last": None},  # the last one kept is gone: the name form offers none
        {"get": bob, "last": None},
    ]
    assert "t1" not in result["stored"] and "t3" not in result["stored"]


def test_a_browser_refusing_storage_keeps_no_token_and_raises_nothing(page: Page) -> None:
    result = run(page, TOKENS_SCRIPT, {"refusing": True, "steps": [{"keep": ["webby", "d1", "t1"], "get": "webby"}]})
    assert result["out"] == [{"get": None, "last": None}]


def test_a_device_line_says_its_label_when_it_was_seen_and_which_is_this_one(page: Page) -> None:
    device = {"id": "d1", "label": "browser: Chrome 120\u202e on Linux", "last_seen": "2026-12-03T10:00:00.000Z"}
    now = "2026-12-06T12:00:00.000Z"
    lines = run(
        page,
        "return [true, false].map(here => logic.deviceText(arg.device, here, new Date(arg.now)))",
        {"device": device, "now": now},
    )
    seen = run(
        page, "return logic.lastSeenText(arg.when, new Date(arg.now))", {"when": device["last_seen"], "now": now}
    )
    label = sanitize_for_terminal(device["label"])
    assert lines == [f"{label} · {seen} · this device", f"{label} · {seen}"]


# --- rooms and direct messages -------------------------------------------------------------------

ROOM_TEXTS = [
    "dev",
    "#dev",
    " #DEV ",
    "#C1",
    "#ci",
    "#a_b-c",
    "#" + "x" * 32,
    "#" + "x" * 33,
    "#",
    "",
    "#d.v",
    "#dév",
    "# x",
]


def _room_name_or_none(text: str) -> str | None:
    try:
        return room_name(text)
    except ProtocolError:
        return None


def test_room_names_and_keys_match_the_protocol(page: Page) -> None:
    """roomName reads a room's name as chat_protocol.room_name (null where it refuses); roomKey is room_key."""
    assert run(page, "return arg.map(logic.roomName)", ROOM_TEXTS) == [_room_name_or_none(t) for t in ROOM_TEXTS]
    names = [name for name in map(_room_name_or_none, ROOM_TEXTS) if name is not None]
    assert run(page, "return arg.map(logic.roomKey)", names) == [room_key(name) for name in names]
    assert run(page, "return logic.DEFAULT_ROOM") == DEFAULT_ROOM


def test_an_event_goes_to_its_room_or_to_the_conversation_with_the_other_person(page: Page) -> None:
    """No room: the default room (also when named); a room's; a direct message: the other one's, whoever sent it."""
    events = [
        {"type": "message", "name": "bob", "text": "x"},
        {"type": "message", "name": "bob", "text": "x", "room": "#dev"},
        {"type": "joined", "name": "bob", "room": "#DEV"},
        {"type": "message", "name": "bob", "text": "x", "room": "#general"},
        {"type": "message", "name": "bob", "text": "x", "to": "webby"},
        {"type": "message", "name": "WEBBY", "text": "x", "to": "Bob"},
        {"type": "message", "name": "webby", "text": "x", "to": "webby"},
    ]
    keys = run(page, "return arg.map(e => logic.placeOf(e, 'webby').key)", events)
    assert keys == ["default", "#dev", "#dev", "default", "@bob", "@bob", "@webby"]
    where = run(
        page, "return [logic.defaultPlace(), logic.roomPlace('#dev'), logic.directPlace('bob')].map(logic.destination)"
    )
    assert where == [None, {"room": "#dev"}, {"to": "bob"}]


def test_a_url_fragment_names_a_room_or_a_conversation(page: Page) -> None:
    """#room=dev and #dm=bob, none for the default room; a fragment naming nothing valid names no place."""
    fragments = run(
        page, "return [logic.defaultPlace(), logic.roomPlace('#dev'), logic.directPlace('Bob_9')].map(logic.fragmentOf)"
    )
    assert fragments == ["", "#room=dev", "#dm=Bob_9"]
    hashes = [
        "#room=dev",
        "room=DEV",
        "#room=%23dev",
        "#room=general",
        "#dm=Bob_9",
        "#room=no spaces",
        "#dm=-x",
        "#room=%E0",
        "#roomy=dev",
        "",
        "#",
    ]
    places = run(page, "return arg.map(h => logic.placeFromFragment(h))", hashes)
    assert [place and place["key"] for place in places] == [
        "#dev",
        "#dev",
        "#dev",
        "default",
        "@bob9",
        None,
        None,
        None,
        None,
        None,
        None,
    ]
    renamed = run(page, "return logic.placeFromFragment('#room=lobby', '#lobby').key")
    assert renamed == "default"


PLACES_SCRIPT = """
const places = new logic.Places();
const out = [];
for (const step of arg) {
  if (step.add) places.add(logic[step.add[0]](step.add[1]));
  if (step.arrived) out.push(places.arrived(logic[step.arrived[0]](step.arrived[1]), step.counts));
  if (step.select) out.push(places.select(step.select));
  if (step.remove) out.push(places.remove(step.remove));
  if (step.unread) places.setUnread(step.unread[0], step.unread[1]);
}
return { out, current: places.current, list: places.list().map((e) => `${e.key}:${e.unread}`) };
"""


def test_places_list_the_default_room_first_and_count_what_arrives_elsewhere(page: Page) -> None:
    """Default room, rooms, conversations; a message elsewhere counts, one shown does not; selecting reads it."""
    steps: list[dict[str, Any]] = [
        {"add": ["roomPlace", "#zz"]},
        {"arrived": ["directPlace", "bob"], "counts": True},  # a new conversation: listed, one unread
        {"arrived": ["roomPlace", "#dev"], "counts": True},
        {"arrived": ["roomPlace", "#dev"], "counts": False},  # a join: listed, not counted
        {"arrived": ["defaultPlace", "#general"], "counts": True},  # shown: not counted
        {"unread": ["#zz", 4]},
        {"select": "#dev"},
        {"arrived": ["roomPlace", "#dev"], "counts": True},
        {"select": "#nowhere"},
        {"remove": "default"},
        {"remove": "#dev"},  # the current one: back to the default room
    ]
    result = run(page, PLACES_SCRIPT, steps)
    assert result["out"] == [True, True, False, False, True, False, False, False, True]
    assert result["current"] == "default"
    assert result["list"] == ["default:0", "#zz:4", "@bob:1"]


def test_room_commands_are_read_with_their_rooms_and_names(page: Page) -> None:
    lines = [
        "/rooms",
        "/join dev",
        "/JOIN #Dev private",
        "/join",
        "/join #no.dots",
        "/part #dev",
        "/part",
        "/invite bob",
        "/invite bob #x",
        "/invite",
        "/msg bob hi  there",
        "/msg bob",
        "hello",
        "/who",
        "/remove carol #x",
        "/remove",
    ]
    parsed = run(page, "return arg.map(logic.parseRoomCommand)", lines)
    assert parsed[0] == {"action": "rooms"}
    assert parsed[1] == {"action": "join", "room": "#dev", "private": False}
    assert parsed[2] == {"action": "join", "room": "#dev", "private": True}
    assert [bool(p and p.get("problem")) for p in parsed[3:5]] == [True, True]
    assert parsed[5] == {"action": "part", "room": "#dev"}
    assert parsed[6] is None  # /part alone: the page's own (this room, or leaving for good)
    assert parsed[7] == {"action": "invite", "name": "bob", "room": None}
    assert parsed[8] == {"action": "invite", "name": "bob", "room": "#x"}
    assert parsed[9]["problem"]
    assert parsed[10] == {"action": "msg", "name": "bob", "text": "hi  there"}
    assert parsed[11]["problem"]
    assert parsed[12:14] == [None, None]
    assert parsed[14] == {"action": "remove", "name": "carol", "room": "#x"}
    assert parsed[15]["problem"]


ROOM_MEMORY_SCRIPT = """
const memory = new logic.Memory({type: 'welcome', seq: 50, name: 'webby', token: 't', epoch: 'e', limits: {}},
                                logic.messageIds('tag'));
memory.sent('to dev', { room: '#dev' });
memory.sent('to bob', { to: 'bob' });
memory.queue('later to dev', { room: '#dev' });
memory.entered('#dev', 3);
const shown = arg.map((event) => memory.onEvent(event));
return { shown, after: memory.lastSeq, resend: memory.linesToResend() };
"""


def test_memory_keeps_an_order_per_room_and_conversation_and_resends_where_it_went(page: Page) -> None:
    """Seqs of #dev and of the conversation with bob are their own; the default room's last seq stays put."""
    events = [
        {"type": "joined", "seq": 3, "name": "webby", "room": "#dev"},  # our own entering: at entered's seq
        {"type": "message", "seq": 4, "name": "carol", "text": "hi", "room": "#dev"},
        {"type": "message", "seq": 4, "name": "carol", "text": "hi", "room": "#dev"},  # again: dropped
        {"type": "message", "seq": 1, "name": "bob", "text": "psst", "to": "webby"},
        {"type": "message", "seq": 2, "name": "webby", "text": "to bob", "to": "bob", "id": "tag-2"},
        {"type": "message", "seq": 2, "name": "webby", "text": "to bob", "to": "bob", "id": "tag-2"},
        {"type": "message", "seq": 5, "name": "carol", "text": "more", "room": "#DEV"},
        {"type": "message", "seq": 51, "name": "carol", "text": "general"},
    ]
    result = run(page, ROOM_MEMORY_SCRIPT, events)
    assert result["shown"] == [False, True, False, True, True, False, True, True]
    assert result["after"] == 51
    assert result["resend"] == [
        {"id": "tag-1", "text": "to dev", "room": "#dev"},
        {"id": "tag-3", "text": "later to dev", "room": "#dev"},
    ]
