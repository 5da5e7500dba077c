"""A second tracker built from another commit, for ``python -m bench --baseline REF``.

``checkout(REF)`` writes the commit's ``services/`` into a temporary directory with
``git archive REF services`` (read from the object store: the repository's work tree,
index and worktree list are not touched) and removes it at the end. The server kind
``baseline`` then runs that tree's tracker with the same interpreter (the venv's
installed dependencies are shared) through ``BOOTSTRAP``, which puts the tree's
``services/protocol``, ``services/tracker`` and ``services/client`` first on sys.path,
drops the editable install's import finder (so a module the old tree lacks cannot be
filled in from the current tree), checks that every ``chat_*`` module it imported comes
from the tree (exit 3 otherwise), says so on its first line of output, and runs
``chat_tracker`` as ``python -m chat_tracker`` would.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("services/protocol", "services/tracker", "services/client")
IMPORTED_FROM = "bench baseline: chat_tracker from "  # BOOTSTRAP's line; the harness checks it

# Run as ``python -c BOOTSTRAP TREE ARGS...``: ARGS are chat_tracker's own.
BOOTSTRAP = """
import runpy, sys
tree = sys.argv.pop(1)
paths = [tree + '/services/protocol', tree + '/services/tracker', tree + '/services/client']
sys.path[:] = paths + [p for p in sys.path if p and p not in paths]
sys.meta_path[:] = [f for f in sys.meta_path
                    if not (getattr(f, '__module__', None) or '').startswith('__editable__')]
import chat_tracker.runtime.cli
ours = ('chat_tracker', 'chat_protocol', 'chat_client')
stray = sorted(str(getattr(m, '__file__', None)) for n, m in list(sys.modules.items())
               if n.partition('.')[0] in ours and not str(getattr(m, '__file__', None)).startswith(tree + '/'))
if stray:
    print('bench baseline: modules from outside', tree, stray, flush=True)
    sys.exit(3)
print('bench baseline: chat_tracker from ' + chat_tracker.__file__, flush=True)
runpy.run_module('chat_tracker', run_name='__main__', alter_sys=True)
"""


@dataclass(frozen=True)
class Baseline:
    """A commit's source tree, extracted for the run."""

    ref: str  # as given on the command line
    commit: str  # full sha
    short: str
    tree: Path

    @property
    def label(self) -> str:
        return f"tracker@{self.short}"

    def python_path(self) -> list[str]:
        return [str(self.tree / package) for package in PACKAGES]


def _git(*args: str, repo: Path = ROOT) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


@contextmanager
def checkout(ref: str, repo: Path = ROOT) -> Iterator[Baseline]:
    """``ref``'s services/ in a temporary directory for the duration of the block."""
    commit = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", repo=repo)
    if not commit:
        raise ValueError(f"--baseline {ref}: not a commit of {repo}")
    short = _git("rev-parse", "--short", commit, repo=repo) or commit[:7]
    tree = Path(tempfile.mkdtemp(prefix=f"chat-bench-baseline-{short}-")).resolve()
    try:
        _extract(repo, commit, tree)
        if not (tree / "services/tracker/chat_tracker/__main__.py").is_file():
            raise ValueError(f"--baseline {ref}: {short} has no services/tracker/chat_tracker/__main__.py")
        yield Baseline(ref=ref, commit=commit, short=short, tree=tree)
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def _extract(repo: Path, commit: str, tree: Path) -> None:
    archive = subprocess.Popen(
        ["git", "-C", str(repo), "archive", "--format=tar", commit, "services"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert archive.stdout is not None
    try:
        with tarfile.open(fileobj=archive.stdout, mode="r|") as tar:
            if hasattr(tarfile, "data_filter"):  # Python 3.11.4+: refuse links and paths out of the tree
                tar.extractall(tree, filter="data")
            else:  # our own `git archive`, so nothing hostile; older 3.11 has no filter argument
                tar.extractall(tree)
    except tarfile.TarError as exc:
        archive.kill()
        error = archive.stderr.read().decode(errors="replace") if archive.stderr else ""
        raise ValueError(f"git archive {commit} services: {error.strip() or exc}") from exc
    finally:
        archive.stdout.close()
    error = archive.stderr.read().decode(errors="replace") if archive.stderr else ""
    if archive.wait(timeout=30) != 0:
        raise ValueError(f"git archive {commit} services failed: {error.strip()}")
