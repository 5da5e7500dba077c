"""A scripted member of the compose test: plays its part of the conversation through chat-client.

    python member.py alpha

Runs the real ``chat-client --json --username alpha`` (URL and password from TRACKER_URL and
TRACKER_PASSWORD), reads the events it prints, and writes each of its lines to the client's
stdin only once the step's trigger has been seen: synchronised on events, never on time. At
its last step it closes stdin, so the client leaves and waits for the tracker's ``bye``.

Everything received is kept in ``$TRANSCRIPT_DIR/<name>.jsonl`` for checker.py. Exits 0 when
the part was played and the client ended normally; 1 with the reason otherwise. Every wait is
bounded by MEMBER_STEP_TIMEOUT seconds (default 30). Standard library only.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from conversation import MEMBERS, Step, Trigger, steps_of

Event = dict[str, Any]


class Failed(Exception):
    """The member could not play its part."""


class View:
    """What this member has seen of the room: who is online, what was said, who left."""

    def __init__(self) -> None:
        self.online: set[str] = set()
        self.said: set[tuple[str, str]] = set()
        self.gone: set[str] = set()
        self.transcript: list[Event] = []

    def record(self, event: Event) -> None:
        self.transcript.append(event)
        kind = event.get("type")
        if kind == "welcome":
            self.online = set(event["members"])
        elif kind == "joined":
            self.online.add(event["name"])
        elif kind == "left":
            self.online.discard(event["name"])
            self.gone.add(event["name"])
        elif kind == "message":
            self.said.add((event["name"], event["text"]))

    def has_seen(self, trigger: Trigger) -> bool:
        if trigger.kind == "online":
            return set(MEMBERS) <= self.online
        if trigger.kind == "message":
            return (trigger.name, trigger.text) in self.said
        return trigger.name in self.gone


def read_lines(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    """Copy the client's output lines into ``lines``, then None at its end."""
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


class Member:
    """One chat-client process and what it has shown so far."""

    def __init__(self, name: str, timeout: float) -> None:
        self.name = name
        self.timeout = timeout
        self.view = View()
        self.ended = False
        self.client = subprocess.Popen(
            ["chat-client", "--json", "--username", name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        assert self.client.stdout is not None
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=read_lines, args=(self.client.stdout, self.lines), daemon=True).start()

    def say(self, message: str) -> None:
        print(f"{self.name} > {message}", flush=True)
        assert self.client.stdin is not None
        self.client.stdin.write(message + "\n")
        self.client.stdin.flush()

    def leave(self) -> None:
        print(f"{self.name} > (end of input: leave)", flush=True)
        assert self.client.stdin is not None
        self.client.stdin.close()

    def wait_for(self, trigger: Trigger) -> None:
        """Read events until ``trigger`` has been seen; Failed after the timeout or at the end."""
        deadline = time.monotonic() + self.timeout
        while not self.view.has_seen(trigger):
            if self.ended:
                raise Failed(f"the client ended before {trigger.describe()!r} was seen")
            self.next_event(deadline, f"waiting for {trigger.describe()!r}")

    def wait_for_end(self) -> int:
        """Read the remaining events until the client's output ends; its exit status."""
        deadline = time.monotonic() + self.timeout
        while not self.ended:
            self.next_event(deadline, "waiting for the client to leave")
        try:
            return self.client.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.client.kill()
            raise Failed(f"the client did not exit within {self.timeout:g} s") from None

    def next_event(self, deadline: float, doing: str) -> None:
        try:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise Failed(f"no event for {self.timeout:g} s while {doing}") from None
        if line is None:
            self.ended = True
            return
        print(f"{self.name} < {line}", flush=True)
        try:
            event = json.loads(line)
        except ValueError:
            raise Failed(f"the client printed a line that is not JSON: {line!r}") from None
        self.view.record(event)

    def play(self, steps: list[Step]) -> None:
        for step in steps:
            self.wait_for(step.after)
            if step.text is None:
                self.leave()
            else:
                self.say(step.text)

    def finish(self) -> None:
        """Check the client ended as a member who left should: bye (left), exit status 0."""
        status = self.wait_for_end()
        last = self.view.transcript[-1] if self.view.transcript else {}
        if last.get("type") != "bye" or last.get("reason") != "left":
            raise Failed(f"the last event was not a bye with reason left: {last}")
        if status != 0:
            raise Failed(f"chat-client exited with status {status}")

    def save(self, directory: Path) -> None:
        path = directory / f"{self.name}.jsonl"
        with path.open("w", encoding="utf-8") as out:
            for event in self.view.transcript:
                out.write(json.dumps(event) + "\n")


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in MEMBERS:
        print(f"usage: {argv[0]} {{{','.join(MEMBERS)}}}", file=sys.stderr)
        return 2
    member = Member(argv[1], float(os.environ.get("MEMBER_STEP_TIMEOUT", "30")))
    try:
        member.play(steps_of(member.name))
        member.finish()
    except Failed as failure:
        print(f"{member.name}: FAILED: {failure}", file=sys.stderr, flush=True)
        if member.client.poll() is None:
            member.client.kill()
        return 1
    finally:
        member.save(Path(os.environ.get("TRANSCRIPT_DIR", ".")))
    print(f"{member.name}: played its part and left", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
