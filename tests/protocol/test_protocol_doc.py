"""docs/protocol.md says exactly what the code does: error codes, close codes, retry advice."""

from __future__ import annotations

import re
from pathlib import Path

from chat_protocol import CloseCode, should_retry
from chat_protocol.messages import ERROR_CODES

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")


def table_after(heading: str) -> list[list[str]]:
    """The rows (cells stripped) of the first Markdown table after ``heading``."""
    section = DOC.split(heading, 1)[1]
    rows = []
    for line in section.splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    return rows[2:]  # without the header and the separator


def test_error_code_table_lists_every_code() -> None:
    """The error-code table and chat_protocol.ERROR_CODES name the same codes."""
    documented = {row[0].strip("`") for row in table_after("### Error codes")}
    assert documented == set(ERROR_CODES)


def test_tracker_sends_only_documented_error_codes() -> None:
    """Every error code written in the tracker's source is a documented one."""
    source = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "services/tracker/chat_tracker").rglob("*.py"))
    used = set(re.findall(r'(?:Refused|Kicked|_refuse|_error|error|_name_refused)\(\s*"([a-z_]+)"', source))
    assert used, "the pattern found no error codes: the test would prove nothing"
    assert used <= set(ERROR_CODES), used - set(ERROR_CODES)


def test_close_code_table_matches_the_code_table() -> None:
    """Every close code the tracker uses is documented with the retry advice should_retry gives."""
    rows = table_after("## Close codes")
    documented = {int(row[0]): row[2].startswith("yes") for row in rows}
    assert set(documented) == {int(code) for code in CloseCode}
    assert documented == {int(code): should_retry(int(code)) for code in CloseCode}


def test_readme_documents_every_tracker_flag_with_its_default() -> None:
    """The README's flag table lists each chat-tracker flag with its environment variable and default."""
    from chat_tracker.runtime import cli

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Tracker flags", 1)[1]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| `--"):
            cells = [cell.strip().strip("`") for cell in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
        elif rows and not line.startswith("|"):
            break
    switches = {switch.flag for switch in cli.SWITCHES}
    expected = {option.flag for option in cli.OPTIONS} | switches
    assert set(rows) == expected
    for option in cli.OPTIONS:
        env, default = rows[option.flag][0], rows[option.flag][1]
        assert env == option.env
        shown = default.split("`")[0].strip()  # "`.` (`/data` in the image)" -> "."
        if option.default is None:
            assert shown == "none", (option.flag, default)
            continue
        assert option.kind(shown) == option.default, (option.flag, default)
