"""``python -m bench`` run as a user runs it, for the benchmark's smoke tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``python -m bench ARGS`` from the repository's root; fail with its output's tail unless it exits 0."""
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done
