"""Starting the tracker: where the password comes from, and usage errors with exit status 2."""

from __future__ import annotations

import getpass
import io
from pathlib import Path

import pytest

from chat_tracker.runtime import cli
from chat_tracker.service import settings
from chat_tracker.service.settings import ConfigError, Settings, resolve_password


class FakeTerminal(io.StringIO):
    """A stdin that claims to be (or not to be) a terminal."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.fixture
def prompt(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace the hidden prompt: it answers ``typed-at-prompt`` and records what it asked."""
    asked: list[str] = []

    def fake_getpass(question: str = "") -> str:
        asked.append(question)
        return "typed-at-prompt"

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    return asked


def test_password_file_wins_over_variable_and_prompt(tmp_path: Path, prompt: list[str]) -> None:
    """TRACKER_PASSWORD_FILE is used even when TRACKER_PASSWORD is set and a terminal is there."""
    secret = tmp_path / "secret"
    secret.write_text("from-file\n", encoding="utf-8")
    env = {"TRACKER_PASSWORD_FILE": str(secret), "TRACKER_PASSWORD": "from-env"}
    assert resolve_password(env, FakeTerminal(tty=True)) == "from-file"
    assert prompt == []


@pytest.mark.parametrize(
    ("content", "password"),
    [("pw\n", "pw"), ("pw\r\n", "pw"), ("pw", "pw"), (" pw \n", " pw "), ("pässwörd\n", "pässwörd")],
)
def test_password_file_loses_only_its_trailing_newline(tmp_path: Path, content: str, password: str) -> None:
    """The file's trailing newline is stripped; spaces and non-ASCII are kept."""
    secret = tmp_path / "secret"
    secret.write_bytes(content.encode("utf-8"))
    assert resolve_password({"TRACKER_PASSWORD_FILE": str(secret)}, FakeTerminal(tty=False)) == password


def test_variable_wins_over_prompt(prompt: list[str]) -> None:
    """TRACKER_PASSWORD is used without prompting."""
    assert resolve_password({"TRACKER_PASSWORD": "from-env"}, FakeTerminal(tty=True)) == "from-env"
    assert prompt == []


def test_prompt_on_a_terminal(prompt: list[str]) -> None:
    """With neither variable, a terminal gets a hidden prompt."""
    assert resolve_password({}, FakeTerminal(tty=True)) == "typed-at-prompt"
    assert prompt == [settings.PASSWORD_PROMPT]


def test_no_terminal_and_no_variable_is_a_config_error(prompt: list[str]) -> None:
    """Without a terminal the tracker never waits for input: it says how to give the password."""
    with pytest.raises(ConfigError, match="TRACKER_PASSWORD"):
        resolve_password({}, FakeTerminal(tty=False))
    assert prompt == []


@pytest.mark.parametrize("env_value", ["", "\n"])
def test_empty_password_is_a_config_error(tmp_path: Path, env_value: str) -> None:
    """An empty password, from the variable or a file of just a newline, is refused."""
    with pytest.raises(ConfigError, match="empty"):
        resolve_password({"TRACKER_PASSWORD": ""}, FakeTerminal(tty=False))
    secret = tmp_path / "secret"
    secret.write_text(env_value, encoding="utf-8")
    with pytest.raises(ConfigError, match="empty"):
        resolve_password({"TRACKER_PASSWORD_FILE": str(secret)}, FakeTerminal(tty=False))


def test_empty_answer_at_the_prompt_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pressing Enter at the prompt, or Ctrl+D, gives no password: a config error."""
    monkeypatch.setattr(getpass, "getpass", lambda question="": "")
    with pytest.raises(ConfigError, match="empty"):
        resolve_password({}, FakeTerminal(tty=True))

    def eof(question: str = "") -> str:
        raise EOFError

    monkeypatch.setattr(getpass, "getpass", eof)
    with pytest.raises(ConfigError):
        resolve_password({}, FakeTerminal(tty=True))


def test_unreadable_password_file_is_a_config_error(tmp_path: Path) -> None:
    """A missing password file is a config error naming the file."""
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match="nope"):
        resolve_password({"TRACKER_PASSWORD_FILE": str(missing), "TRACKER_PASSWORD": "x"}, FakeTerminal(tty=False))


def test_settings_refuse_an_empty_password() -> None:
    """Settings cannot be built with an empty password, and never show it in their repr."""
    with pytest.raises(ConfigError):
        Settings(password="")
    assert "alphonso" not in repr(Settings(password="alphonso"))


@pytest.fixture
def no_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    """stdin is not a terminal, and starting a server fails the test instead of listening on port 8000."""
    monkeypatch.setattr("sys.stdin", FakeTerminal(tty=False))

    def serve(_settings: Settings) -> int:
        raise AssertionError("cli.main started a server for a configuration that should be refused")

    monkeypatch.setattr("chat_tracker.runtime.server.serve", serve)


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert lines and lines[-1].startswith("chat-tracker: error: "), stderr
    return lines[-1]


def test_cli_without_password_exits_2(no_tty: None, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """No password and no terminal: exit status 2 and one error line, and no server is started."""
    assert cli.main(["--data-dir", str(tmp_path)], {}) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "TRACKER_PASSWORD" in _one_error_line(err)


@pytest.mark.parametrize(
    "flags",
    [
        ["--rate", "0"],
        ["--burst", "-1"],
        ["--port", "70000"],
        ["--max-message-chars", "0"],
        ["--queue-size", "0"],
        ["--log-level", "chatty"],
        ["--auth-timeout", "-5"],
        ["--rate", "nan"],
    ],
)
def test_cli_bad_flag_values_exit_2(no_tty: None, capsys: pytest.CaptureFixture[str], flags: list[str]) -> None:
    """A flag value out of range is one error line naming the flag, and exit status 2."""
    assert cli.main(flags, {"TRACKER_PASSWORD": "alphonso"}) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert flags[0] in _one_error_line(err)


@pytest.mark.parametrize("flags", [["--port", "eighty"], ["--rate", "fast"], ["--no-such-flag"]])
def test_cli_unparsable_flags_exit_2(no_tty: None, capsys: pytest.CaptureFixture[str], flags: list[str]) -> None:
    """A flag argparse cannot parse exits with status 2 and ends with one error line naming it."""
    with pytest.raises(SystemExit) as caught:
        cli.main(flags, {"TRACKER_PASSWORD": "alphonso"})
    assert caught.value.code == 2
    assert flags[0] in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("variable", "value"), [("TRACKER_PORT", "eighty"), ("TRACKER_RATE", "fast"), ("TRACKER_BURST", "1.5")]
)
def test_cli_bad_environment_values_exit_2(
    no_tty: None, capsys: pytest.CaptureFixture[str], variable: str, value: str
) -> None:
    """An unparsable environment fallback is one error line naming the variable, and exit status 2."""
    assert cli.main([], {"TRACKER_PASSWORD": "alphonso", variable: value}) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert variable in _one_error_line(err)


def test_settings_from_flags_and_environment(tmp_path: Path) -> None:
    """Flags override environment fallbacks, which override defaults."""
    env = {"TRACKER_RATE": "3.5", "TRACKER_BURST": "7", "TRACKER_EXIT_WHEN_EMPTY": "yes"}
    args = cli.build_parser(env).parse_args(["--burst", "9", "--data-dir", str(tmp_path)])
    built = cli.settings_from(args, "alphonso")
    assert (built.limits.rate_per_second, built.limits.rate_burst, built.exit_when_empty) == (3.5, 9, True)
    assert built.data_dir == tmp_path and built.limits.max_message_chars == 2000
