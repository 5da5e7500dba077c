"""The page survives a tracker restart: it reconnects, resumes, and sends what was typed meanwhile, once."""

from __future__ import annotations

import signal

import pytest
from playwright.sync_api import expect

from chat_tracker.storage.chatlog import parse_line
from support.tracker import StartTracker, launch_tracker
from support.web import WAIT_MS, Browser, JsonMember, join, lines_with, log, open_page, type_line


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_reconnects_and_resumes_after_a_tracker_restart(
    browser: Browser, start_tracker: StartTracker, stop: signal.Signals
) -> None:
    """No gap, no duplicate: what others said meanwhile is replayed once; a line typed while away is logged once."""
    tracker = start_tracker(resume_grace=60)
    page = open_page(browser(), tracker)
    join(page, tracker, "webby")
    type_line(page, "before the restart")
    expect(lines_with(page, "before the restart")).to_have_count(1, timeout=WAIT_MS)

    if stop is signal.SIGKILL:
        tracker.kill()
    else:
        assert tracker.stop(signal.SIGTERM) == 0
    expect(page.get_by_role("status")).to_contain_text("Reconnecting", timeout=WAIT_MS)
    type_line(page, "typed while away")
    expect(page.get_by_role("list", name="Not sent yet")).to_contain_text("typed while away")

    restarted = launch_tracker(tracker.data_dir, "--port", str(tracker.port), resume_grace=60)
    try:
        # Someone talks before the page is back: the resume replays it.
        other = JsonMember(restarted, "other")
        other.say("said while the page was away")
        expect(lines_with(page, "typed while away")).to_have_count(1, timeout=WAIT_MS)
        expect(page.get_by_role("status")).to_have_text("Connected.")
        # "N missed messages follow" or, had the page been quicker than `other`, "nothing was missed"
        expect(log(page)).to_contain_text("reconnected; ")
        other.expect("message", name="webby", text="typed while away")
        other.say("after the resume")
        for text in ("before the restart", "said while the page was away", "after the resume", "typed while away"):
            expect(lines_with(page, text)).to_have_count(1, timeout=WAIT_MS)
        expect(page.get_by_role("list", name="Not sent yet")).to_be_hidden()
        seqs = page.evaluate("() => [...document.querySelectorAll('#log li[data-seq]')].map(li => +li.dataset.seq)")
        assert seqs == sorted(set(seqs))  # in the room's order, each once
        other.close()
    finally:
        restarted.stop()
    entries = [parse_line(line) for line in restarted.log_lines()]
    said = [entry.text for entry in entries if entry.kind == "msg"]
    assert said.count("typed while away") == 1
    assert said.count("before the restart") == 1
    # Resumed, not joined again: one join, and no leave before the final Ctrl+C (reason shutdown).
    assert [entry.kind for entry in entries if entry.name == "webby" and entry.kind in ("join", "leave")] == [
        "join",
        "leave",
    ]
    assert [entry.text for entry in entries if entry.name == "webby" and entry.kind == "leave"] == ["shutdown"]
    assert page.errors == []  # type: ignore[attr-defined]


def test_resumes_twice_in_a_row_with_the_token_of_the_first_resume(
    browser: Browser, start_tracker: StartTracker
) -> None:
    """Tokens are single-use: the page keeps the one each ``resumed`` carries, so a second restart resumes too."""
    tracker = start_tracker(resume_grace=60)
    page = open_page(browser(), tracker)
    join(page, tracker, "webby")
    running = tracker
    try:
        for round_ in range(2):
            running.kill()
            expect(page.get_by_role("status")).to_contain_text("Reconnecting", timeout=WAIT_MS)
            running = launch_tracker(tracker.data_dir, "--port", str(tracker.port), resume_grace=60)
            expect(page.get_by_role("status")).to_have_text("Connected.", timeout=WAIT_MS)
            type_line(page, f"after restart {round_}")
            expect(lines_with(page, f"after restart {round_}")).to_have_count(1, timeout=WAIT_MS)
        expect(log(page)).not_to_contain_text("could not resume")
    finally:
        running.stop()
    entries = [parse_line(line) for line in running.log_lines()]
    assert [entry.kind for entry in entries if entry.name == "webby" and entry.kind == "join"] == ["join"]
    assert [entry.text for entry in entries if entry.kind == "msg"] == ["after restart 0", "after restart 1"]
    assert page.errors == []  # type: ignore[attr-defined]
