"""The page in a real browser, next to a terminal-client member and a plain-text member."""

from __future__ import annotations

import re
import zlib

from playwright.sync_api import Page, expect

from chat_protocol import name_key
from support.tracker import RunningTracker, StartTracker
from support.web import (
    WAIT_MS,
    Browser,
    JsonMember,
    PlainMember,
    TerminalMember,
    enter_name,
    enter_password,
    field,
    join,
    lines_with,
    log,
    online,
    open_page,
    type_line,
)


def test_chats_with_a_terminal_client_and_a_plain_text_member(browser: Browser, tracker: RunningTracker) -> None:
    """Each sees the others' messages; names keep the terminal client's colour; /help, /who and exit work."""
    terminal = TerminalMember(tracker, "termi")
    plain = PlainMember(tracker, "plainy")
    page = open_page(browser(), tracker)
    try:
        join(page, tracker, "webby")
        for name in ("termi", "plainy", "webby"):
            expect(online(page)).to_contain_text(name)
        terminal.say("hello from the terminal")
        plain.say("hello from plain text")
        expect(lines_with(page, "hello from the terminal")).to_have_count(1, timeout=WAIT_MS)
        expect(lines_with(page, "hello from plain text")).to_have_count(1, timeout=WAIT_MS)

        type_line(page, "hello from the browser")
        expect(lines_with(page, "hello from the browser")).to_have_count(1, timeout=WAIT_MS)
        terminal.expect("message", name="webby", text="hello from the browser")
        plain.until("webby: hello from the browser")

        for name in ("termi", "plainy", "webby"):  # crc32 of the name key, modulo the 11 colours
            tag = log(page).locator("bdi.name", has_text=name).first
            expect(tag).to_have_class(re.compile(rf"\bc{zlib.crc32(name_key(name).encode()) % 11}\b"))
        expect(log(page).locator("li.message time").first).to_have_text(re.compile(r"^\d\d:\d\d$"))

        type_line(page, "/help")
        expect(log(page)).to_contain_text("/who          who is online")
        type_line(page, "/who")
        expect(log(page)).to_contain_text(re.compile(r"online now \(3\): .*termi"))
        type_line(page, "//slash stays")
        terminal.expect("message", name="webby", text="/slash stays")

        type_line(page, "exit")
        expect(log(page)).to_contain_text("You left the chat.", timeout=WAIT_MS)
        terminal.expect("left", name="webby", reason="exit")
        assert terminal.leave() == 0
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        terminal.kill()
        plain.close()


def test_a_refused_name_shows_the_trackers_reason_and_can_be_changed(browser: Browser, tracker: RunningTracker) -> None:
    """Taken (a lookalike), reserved and invalid names are refused with the tracker's words; then one is accepted."""
    holder = JsonMember(tracker, "alpha")
    page = open_page(browser(), tracker)
    try:
        enter_password(page, tracker.password)
        expect(page.get_by_text("1-32 characters: letters A-Z")).to_be_visible()  # the rules, before typing
        problem = page.locator("#name-problem")
        enter_name(page, "A1pha")
        expect(problem).to_contain_text(re.compile("taken|in use", re.IGNORECASE), timeout=WAIT_MS)
        enter_name(page, "admin")
        expect(problem).to_contain_text("reserved", timeout=WAIT_MS)
        enter_name(page, "no spaces")
        expect(problem).to_contain_text("1-32 characters", timeout=WAIT_MS)
        enter_name(page, "beta")
        expect(field(page, "Message")).to_be_visible(timeout=WAIT_MS)
        holder.expect("joined", name="beta")
    finally:
        holder.close()


def test_a_wrong_password_is_said_and_the_right_one_then_works(browser: Browser, tracker: RunningTracker) -> None:
    """The tracker's refusal appears on the password form; nothing is joined; a second try gets in."""
    page = open_page(browser(), tracker)
    enter_password(page, "not the password")
    expect(page.locator("#password-problem")).to_contain_text(re.compile("password", re.IGNORECASE), timeout=WAIT_MS)
    expect(field(page, "Password")).to_be_visible()
    expect(field(page, "Name")).to_be_hidden()
    assert not any(" join " in line for line in tracker.log_lines())
    join(page, tracker, "second-try")


def test_the_member_list_follows_joins_leaves_and_away(browser: Browser, start_tracker: StartTracker) -> None:
    """Online lists who is in; a join and a leave change it live; a member whose connection dropped is marked away."""
    tracker = start_tracker(resume_grace=60)
    page = open_page(browser(), tracker)
    join(page, tracker, "webby")
    members = online(page).get_by_role("listitem")
    expect(members).to_have_count(1)
    gamma = JsonMember(tracker, "gamma")
    expect(members).to_have_count(2, timeout=WAIT_MS)
    delta = JsonMember(tracker, "delta")
    expect(members).to_have_count(3, timeout=WAIT_MS)
    gamma.close()  # a normal close: gone at once
    expect(members).to_have_count(2, timeout=WAIT_MS)
    expect(online(page)).not_to_contain_text("gamma")
    delta.vanish()  # no close frame: away for the resume grace
    tracker.wait_for_output(r"delta is away")
    type_line(page, "/who")
    expect(online(page).get_by_role("listitem").filter(has_text="delta")).to_contain_text("away", timeout=WAIT_MS)
    expect(log(page)).to_contain_text("delta (away)")


def test_the_page_keeps_its_member_list_without_asking_who(browser: Browser, tracker: RunningTracker) -> None:
    """The list follows joins and leaves; one `who` after the welcome (for the offline members), none in a minute."""
    page = browser().new_page()
    page.clock.install()  # the page's timers: a minute passes at once, as a visible page would live it
    sent: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(str(payload))))
    page.goto(tracker.http_url + "/")
    join(page, tracker, "quiet")
    members = online(page).get_by_role("listitem")
    gamma = JsonMember(tracker, "gamma")
    expect(members).to_have_count(2, timeout=WAIT_MS)
    page.clock.run_for(60_000)
    gamma.close()
    expect(members).to_have_count(1, timeout=WAIT_MS)
    expect(online(page)).to_contain_text("quiet")
    assert any('"type":"join"' in frame for frame in sent), sent  # the frames were seen
    assert sum('"type":"who"' in frame for frame in sent) == 1, sent  # the roster once: no polling


XSS = (
    "<img src=x onerror=window.__xss=1>",
    "<script>window.__xss=2</script>",
    '<a href="javascript:window.__xss=3">click me</a>',
    "<svg onload=window.__xss=4></svg>",
)


def test_peer_text_is_shown_as_text_never_as_html(browser: Browser, tracker: RunningTracker) -> None:
    """Markup a peer sends appears literally; no element or script is created from it; innerHTML is refused."""
    page = open_page(browser(), tracker)
    join(page, tracker, "webby")
    mallory = JsonMember(tracker, "mallory")
    for text in XSS:
        mallory.say(text)
        expect(lines_with(page, text)).to_have_count(1, timeout=WAIT_MS)
    created = page.evaluate(
        "() => ({xss: window.__xss ?? null, scripts: document.scripts.length,"
        " markup: document.querySelectorAll('#log img, #log script, #log a, #log svg, [onerror], [onload]').length})"
    )
    assert created == {"xss": None, "scripts": 1, "markup": 0}
    # The CSP's Trusted Types leave no way to turn a string into markup, should a bug try.
    refused = page.evaluate(
        "() => { try { document.body.innerHTML = '<b>x</b>'; return 'assigned' } catch (e) { return e.name } }"
    )
    assert refused == "TypeError"
    mallory.close()


def _hide(page: Page, hidden: bool) -> None:
    """What the browser does when the tab goes to the background (or comes back): visibilitychange."""
    state = "hidden" if hidden else "visible"
    page.evaluate(
        f"""() => {{
            Object.defineProperty(document, 'visibilityState', {{configurable: true, get: () => '{state}'}});
            Object.defineProperty(document, 'hidden', {{configurable: true, get: () => {str(hidden).lower()}}});
            document.dispatchEvent(new Event('visibilitychange'));
        }}"""
    )


def test_unread_count_in_the_title_while_the_tab_is_hidden(browser: Browser, tracker: RunningTracker) -> None:
    """Others' messages while hidden count in the title; showing the tab clears it."""
    page = open_page(browser(), tracker)
    join(page, tracker, "webby")
    beta = JsonMember(tracker, "beta")
    expect(page).to_have_title("groupchat")
    _hide(page, True)
    beta.say("one")
    beta.say("two")
    expect(page).to_have_title("(2) groupchat", timeout=WAIT_MS)
    _hide(page, False)
    expect(page).to_have_title("groupchat")
    beta.close()


def test_follows_the_newest_message_unless_scrolled_up(browser: Browser, start_tracker: StartTracker) -> None:
    """At the bottom the log follows; scrolled up, a "new messages" button appears and brings you back."""
    tracker = start_tracker("--rate", "1000", "--burst", "1000")  # 40 lines at once, none refused
    page = open_page(browser(), tracker)
    join(page, tracker, "webby")
    beta = JsonMember(tracker, "beta")
    for number in range(40):
        beta.send({"type": "message", "text": f"line {number}"})
    expect(lines_with(page, "line 39")).to_have_count(1, timeout=WAIT_MS)
    at_bottom = (
        "() => { const l = document.getElementById('log'); return l.scrollHeight - l.scrollTop - l.clientHeight <= 40 }"
    )
    assert page.evaluate(at_bottom)
    button = page.get_by_role("button", name=re.compile("new message"))
    expect(button).to_be_hidden()
    page.evaluate("() => { document.getElementById('log').scrollTop = 0 }")
    beta.say("while you read old ones")
    expect(button).to_have_text("1 new message", timeout=WAIT_MS)
    assert not page.evaluate(at_bottom)
    button.press("Enter")  # the keyboard works as well as a click
    expect(button).to_be_hidden()
    assert page.evaluate(at_bottom)
    beta.close()


# The browser's permission prompt cannot be answered in headless Chromium: a stand-in Notification
# records what the page asks for and shows, and grants permission when (and only when) asked.
FAKE_NOTIFICATION = """
window.__notes = {asked: 0, shown: []};
window.Notification = class {
    static permission = 'default';
    static async requestPermission() { window.__notes.asked += 1; this.permission = 'granted'; return 'granted'; }
    constructor(title, options) { window.__notes.shown.push([title, options.body]); }
};
"""


def test_mention_notifications_are_opt_in(browser: Browser, tracker: RunningTracker) -> None:
    """No permission is asked until the box is ticked; then a mention while hidden shows a notification."""
    context = browser()
    context.add_init_script(FAKE_NOTIFICATION)
    page = open_page(context, tracker)
    join(page, tracker, "webby")
    beta = JsonMember(tracker, "beta")
    _hide(page, True)
    beta.say("hey webby, before you opted in")
    expect(page.locator("li.mention")).to_have_count(1, timeout=WAIT_MS)
    assert page.evaluate("() => window.__notes") == {"asked": 0, "shown": []}
    _hide(page, False)
    notify = page.get_by_label("Notify me when my name is mentioned")
    expect(notify).not_to_be_checked()
    notify.press("Space")  # from the keyboard
    expect(notify).to_be_checked()
    _hide(page, True)
    beta.say("and now, W-E-B-B-Y?")
    beta.say("no mention here")
    expect(page.locator("li.mention")).to_have_count(2, timeout=WAIT_MS)
    expect(lines_with(page, "no mention here")).to_have_count(1, timeout=WAIT_MS)
    assert page.evaluate("() => window.__notes") == {
        "asked": 1,
        "shown": [["beta mentioned you", "and now, W-E-B-B-Y?"]],
    }
    beta.close()


def test_moderation_shows_on_the_page_and_a_kicked_page_does_not_come_back(
    browser: Browser, start_tracker: StartTracker
) -> None:
    """An announcement and a mute are notices; kicked, the page says why and never reconnects."""
    import httpx

    admin = "the-admins-secret"
    tracker = start_tracker(env={"TRACKER_ADMIN_PASSWORD": admin})
    page = open_page(browser(), tracker)
    join(page, tracker, "webby")
    headers = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=tracker.http_url, headers=headers, timeout=WAIT_MS / 1000) as client:
        assert client.post("/admin/announce", json={"text": "<b>maintenance</b> at noon"}).status_code == 200
        expect(log(page)).to_contain_text("Announcement: <b>maintenance</b> at noon", timeout=WAIT_MS)
        assert (
            client.post("/admin/mute", json={"name": "webby", "seconds": 60, "reason": "cool off"}).status_code == 200
        )
        expect(log(page)).to_contain_text("webby is muted for 60 s: cool off", timeout=WAIT_MS)
        assert client.post("/admin/kick", json={"name": "webby", "reason": "spamming"}).status_code == 200
    expect(log(page)).to_contain_text("webby was removed by a moderator: spamming", timeout=WAIT_MS)
    expect(log(page)).to_contain_text("you were removed by a moderator: spamming", timeout=WAIT_MS)
    # Closed for good (4011 is never retried): the page says so and its input is off, no reconnect is planned.
    expect(log(page)).to_contain_text("Reload the page to join again.", timeout=WAIT_MS)
    expect(field(page, "Message")).to_be_disabled()
    assert "Reconnecting" not in page.locator("#status").inner_text()
    assert [line.split(" ")[2] for line in tracker.log_lines() if line.split(" ")[3] == "webby"].count("join") == 1
    assert page.locator("#log b").count() == 0  # the announcement's markup stayed text
