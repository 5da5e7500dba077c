"""The controller's handle on the load-generator processes (``bench.loadgen``)."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .servers import pinned

# A generator process busier than this share of a core limits the figure it produced.
BUSY_SHARE = 0.85


def generator_cores() -> str | None:
    """Every core but core 0 (the server's), as a taskset list; None on a single core."""
    cores = sorted(os.sched_getaffinity(0))
    rest = [core for core in cores if core != 0]
    return ",".join(map(str, rest)) if rest and 0 in cores else None


class Generators:
    """``count`` generator processes; commands go to all, answers come back in order."""

    def __init__(self, count: int, cores: str | None, log_dir: Path) -> None:
        self.cores = cores
        log_dir.mkdir(parents=True, exist_ok=True)
        # Open for as long as the processes run; ``close`` closes them.
        self.errors = [(log_dir / f"loadgen-{i}.err").open("w") for i in range(count)]
        self.core_count = len(cores.split(",")) if cores else os.cpu_count() or 1
        self.processes = [
            subprocess.Popen(
                pinned([sys.executable, "-m", "bench.loadgen"], cores),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.errors[i],
                text=True,
                bufsize=1,
            )
            for i in range(count)
        ]

    def __len__(self) -> int:
        return len(self.processes)

    def send(self, commands: list[dict[str, Any]]) -> None:
        # One command per process: ``receive`` waits for an answer from each of them.
        for process, command in zip(self.processes, commands, strict=True):
            assert process.stdin is not None
            process.stdin.write(json.dumps(command) + "\n")
            process.stdin.flush()

    def receive(self, timeout: float, tick: Callable[[], None] | None = None) -> list[dict[str, Any]]:
        """One answer from every process, calling ``tick`` about every 0.5 s while waiting."""
        answers: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while len(answers) < len(self.processes):
            waiting: dict[IO[str], int] = {}
            for i, process in enumerate(self.processes):
                if i not in answers:
                    assert process.stdout is not None
                    waiting[process.stdout] = i
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"load generators silent for {timeout:.0f} s")
            ready, _, _ = select.select(list(waiting), [], [], min(0.5, left))
            for stream in ready:
                line = stream.readline()
                if not line:
                    raise RuntimeError("a load generator exited")
                answers[waiting[stream]] = json.loads(line)
            if tick is not None:
                tick()
        return [answers[i] for i in range(len(self.processes))]

    def call(
        self, commands: list[dict[str, Any]], timeout: float = 60.0, tick: Callable[[], None] | None = None
    ) -> list[dict[str, Any]]:
        self.send(commands)
        return self.receive(timeout, tick)

    def call_all(self, command: dict[str, Any], timeout: float = 60.0) -> list[dict[str, Any]]:
        return self.call([dict(command) for _ in self.processes], timeout)

    def close(self) -> None:
        for process in self.processes:
            try:
                assert process.stdin is not None
                process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                process.stdin.close()
            except (OSError, ValueError):
                pass
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        for error in self.errors:
            error.close()
