"""The one way the suite starts a program and reads what it prints: ``Process`` and its ``LineReader``s.

A ``Process`` is a ``subprocess.Popen`` whose stdout, and stderr when piped apart, are each
read line by line in a background thread as the program prints them. A test waits
for a line with a deadline and never reads the pipes itself, so a program that prints a lot
never blocks on a full pipe, and a program that prints nothing never hangs the test.

A ``LineReader`` has a cursor: ``next_line``, ``wait_for`` and ``rest`` take lines in order
(``lines`` is what was taken), while ``find`` looks at every line read so far without taking
any (a tracker's "Listening on", printed before anyone asked). A line is what ends with "\n",
exactly as printed (a "\r" stays in it: no newline translation hides one); it must be UTF-8,
and past a byte that is not, every wait fails saying so.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Literal

from support.timing import UNIT

Stderr = Literal["apart", "stdout", "null"]
_STDERR = {"apart": subprocess.PIPE, "stdout": subprocess.STDOUT, "null": subprocess.DEVNULL}


class LineReader:
    """A byte stream's lines as UTF-8 text, read in a thread of its own, waited for with a deadline."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._read: list[str] = []  # every line so far, newline kept
        self._taken = 0
        self._ended = False
        self._undecodable = ""
        self._changed = threading.Condition()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[bytes]) -> None:
        try:
            with stream:  # closed here, by its only reader, once it has ended
                for raw in stream:
                    line = raw.decode("utf-8")
                    with self._changed:
                        self._read.append(line)
                        self._changed.notify_all()
        except UnicodeDecodeError as error:  # the end of what can be read: the waits fail saying why
            self._undecodable = f"line {len(self._read) + 1} of the stream is not UTF-8: {error}"
        finally:
            with self._changed:
                self._ended = True
                self._changed.notify_all()

    def _check(self) -> None:
        if self._undecodable:
            raise AssertionError(self._undecodable)

    @property
    def lines(self) -> list[str]:
        """The lines taken so far, without their newlines."""
        with self._changed:
            return [line.rstrip("\n") for line in self._read[: self._taken]]

    def everything(self) -> list[str]:
        """Every line read from the stream so far, taken or not, without its newline."""
        with self._changed:
            return [line.rstrip("\n") for line in self._read]

    def next_line(self, deadline: float) -> str | None:
        """Take the next line; None at the end of the stream. TimeoutError past ``deadline`` (monotonic)."""
        with self._changed:
            there = self._changed.wait_for(
                lambda: self._taken < len(self._read) or self._ended, timeout=max(0.0, deadline - time.monotonic())
            )
            if not there:
                tail = [line.rstrip("\n") for line in self._read[-20:]]
                raise TimeoutError(f"no new line; so far: {tail}")
            if self._taken == len(self._read):
                self._check()
                return None
            self._taken += 1
            return self._read[self._taken - 1].rstrip("\n")

    def wait_for(self, predicate: Callable[[str], bool], timeout: float) -> str:
        """Take lines until one matches ``predicate``; AssertionError if the stream ends first."""
        deadline = time.monotonic() + timeout
        while (line := self.next_line(deadline)) is not None:
            if predicate(line):
                return line
        raise AssertionError(f"stream ended without the expected line; got: {self.lines[-20:]}")

    def rest(self, timeout: float) -> list[str]:
        """Take every line until the end of the stream; every line taken, from the first."""
        deadline = time.monotonic() + timeout
        while self.next_line(deadline) is not None:
            pass
        return self.lines

    def text(self, timeout: float) -> str:
        """Everything the stream carried, exactly (newlines kept), once it has ended."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._ended, timeout=timeout):
                raise TimeoutError(f"the stream did not end within {timeout:g} s")
            self._check()
            return "".join(self._read)

    def find(self, predicate: Callable[[str], bool], timeout: float) -> str | None:
        """The first line ever read that matches, waiting for one until ``timeout``; None if none came."""
        deadline = time.monotonic() + timeout
        checked = 0
        with self._changed:
            while True:
                for line in self._read[checked:]:
                    if predicate(line.rstrip("\n")):
                        return line.rstrip("\n")
                checked = len(self._read)
                remaining = deadline - time.monotonic()
                if self._ended or remaining <= 0:
                    self._check()
                    return None
                self._changed.wait(remaining)


class Process(subprocess.Popen[bytes]):
    """A program started with piped stdout (``out``), stderr apart (``err``), into stdout, or dropped.

    ``stdin=True`` gives it a pipe to ``send`` lines to; otherwise it reads /dev/null.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        stdin: bool = False,
        stderr: Stderr = "apart",
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        super().__init__(
            list(argv),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=_STDERR[stderr],
            env=env,
            cwd=cwd,
        )
        assert self.stdout is not None
        self.out = LineReader(self.stdout)
        self._err = LineReader(self.stderr) if self.stderr is not None else None

    @property
    def err(self) -> LineReader:
        """stderr's lines (started with ``stderr="apart"``)."""
        assert self._err is not None, "stderr is not piped apart"
        return self._err

    def send(self, *lines: str) -> None:
        """Write ``lines`` to stdin, each with its newline, in UTF-8, and flush."""
        assert self.stdin is not None
        self.stdin.write("".join(line + "\n" for line in lines).encode("utf-8"))
        self.stdin.flush()

    def close_stdin(self) -> None:
        assert self.stdin is not None
        self.stdin.close()

    def end(self, timeout: float = UNIT) -> None:
        """Kill it if it still runs, and wait for it (its readers close stdout and stderr at their end)."""
        if self.poll() is None:
            self.kill()
        self.wait(timeout=timeout)
        if self.stdin is not None:
            with contextlib.suppress(OSError):  # lines it never read: nobody is left to read them
                self.stdin.close()


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """A process's resident set (or ``VmHWM``, its peak), in KiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")
