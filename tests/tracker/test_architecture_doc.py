"""docs/architecture.md's import graph is the code's: scripts/import-graph --check fails when they differ."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "import-graph"
DOC = ROOT / "docs" / "architecture.md"


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False)


def test_the_docs_import_graph_matches_the_code() -> None:
    result = run_script("--check")
    assert result.returncode == 0, result.stderr


def test_the_graph_names_every_layer_and_the_modules_a_message_passes() -> None:
    """What a newcomer looks for in the drawing is there (so a broken parser cannot pass --check with a blank)."""
    printed = run_script().stdout
    for layer in ("errors.py", "core/", "journal/", "storage/", "replicas/", "service/", "transport/", "http/"):
        assert f"<b>{layer}</b>" in printed
    for module in ("transport/native", "core/session", "core/room", "journal/local", "storage/chatlog"):
        assert f"\n{module} " in printed, f"{module} missing from the module list"
    assert "runtime --> http" in printed and "core --> errors" in printed


def test_check_fails_when_the_doc_has_drifted(tmp_path: Path) -> None:
    """Run a copy of the script against a copy of the doc with one import line changed by hand."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "services").symlink_to(ROOT / "services")
    (tmp_path / "scripts" / "import-graph").write_text(SCRIPT.read_text(encoding="utf-8"), encoding="utf-8")
    drifted = DOC.read_text(encoding="utf-8").replace("core/room ", "core/rooms", 1)
    (tmp_path / "docs" / "architecture.md").write_text(drifted, encoding="utf-8")
    script = str(tmp_path / "scripts" / "import-graph")

    checked = subprocess.run([sys.executable, script, "--check"], capture_output=True, text=True, check=False)
    assert checked.returncode == 1 and "--write" in checked.stderr
    subprocess.run([sys.executable, script, "--write"], check=True)
    assert (tmp_path / "docs" / "architecture.md").read_text(encoding="utf-8") == DOC.read_text(encoding="utf-8")
