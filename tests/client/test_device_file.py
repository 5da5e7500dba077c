"""The device token chat-client keeps, without a tracker: where its file is, who may read it, whose
token it is, and how a sign-in uses it (token first, the passphrase when the token is refused)."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path
from typing import cast

import pytest

from chat_client.cli import build_parser, resolve
from chat_client.commands import Action, Command, parse
from chat_client.connection import Connection, Incoming
from chat_client.devices import DeviceKeeper, device_label, file_name, keeper_for, state_directory
from chat_client.errors import NameRejected
from chat_client.render import devices_text
from chat_client.scripted import without_device_token
from chat_client.signin import Keyring, sign_in
from chat_protocol import DeviceInfo, Devices, Limits, Welcome, encode
from chat_protocol.accounts import MAX_DEVICE_LABEL_CHARS

URL = "ws://chat.example:8000/ws"


def test_the_state_directory_follows_xdg_and_ignores_a_relative_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/alpha")
    assert state_directory({"XDG_STATE_HOME": "/var/state"}) == Path("/var/state/chat-client")
    assert state_directory({}) == Path("/home/alpha/.local/state/chat-client")
    assert state_directory({"XDG_STATE_HOME": "relative"}) == Path("/home/alpha/.local/state/chat-client")


def test_one_file_per_tracker_and_name_lookalikes_folded() -> None:
    assert file_name(URL, "alpha") == file_name(URL, "ALPHA")
    assert file_name(URL, "alpha") != file_name(URL, "beta")
    assert file_name(URL, "alpha") != file_name("ws://elsewhere:8000/ws", "alpha")


def test_the_label_names_the_host_within_the_protocols_bound() -> None:
    assert device_label("vm") == "chat-client on vm"
    assert len(device_label("h" * 2 * MAX_DEVICE_LABEL_CHARS)) == MAX_DEVICE_LABEL_CHARS


def test_a_kept_token_is_private_and_replaced_by_the_next(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "chat-client"
    directory.mkdir(parents=True, mode=0o755)
    keeper = DeviceKeeper(URL, directory=directory, label="test")
    assert keeper.token_for("alpha") is None
    assert keeper.keep("alpha", "d1", "first-token")
    path = keeper.path_for("Alpha")
    assert path is not None and path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700  # made private though it was not
    assert keeper.token_for("ALPHA") == "first-token"
    keeper.keep("alpha", "d1", "second-token")
    assert keeper.token_for("alpha") == "second-token"
    assert [p.name for p in directory.iterdir()] == [path.name]  # no temporary file left behind
    assert keeper.token_for("beta") is None
    keeper.forget()
    assert keeper.token_for("alpha") is None and not path.exists()


def test_a_given_file_holding_another_accounts_token_is_neither_offered_nor_deleted(tmp_path: Path) -> None:
    given = tmp_path / "device.json"
    DeviceKeeper(URL, path=given).keep("beta", "d2", "betas-token")
    keeper = DeviceKeeper(URL, path=given)
    assert keeper.token_for("alpha") is None
    keeper.forget("alpha")
    assert given.exists() and DeviceKeeper(URL, path=given).token_for("beta") == "betas-token"
    assert DeviceKeeper("ws://elsewhere:8000/ws", path=given).token_for("beta") is None


@pytest.mark.parametrize("content", ["", "not json", "[]", '{"tracker": "x"}', json.dumps({"token": 5})])
def test_an_unreadable_file_keeps_no_token(tmp_path: Path, content: str) -> None:
    given = tmp_path / "device.json"
    given.write_text(content, encoding="utf-8")
    assert DeviceKeeper(URL, path=given).token_for("alpha") is None


def test_flags_and_environment_choose_where_the_token_is_kept(tmp_path: Path) -> None:
    environ = {"XDG_STATE_HOME": str(tmp_path), "CHAT_DEVICE_FILE": str(tmp_path / "from-env")}
    assert keeper_for(URL, str(tmp_path / "flag"), False, environ).path_for("a") == tmp_path / "flag"
    assert keeper_for(URL, None, False, environ).path_for("a") == tmp_path / "from-env"
    default = keeper_for(URL, None, False, {"XDG_STATE_HOME": str(tmp_path)}).path_for("a")
    assert default is not None and default.parent == tmp_path / "chat-client"
    nothing = keeper_for(URL, None, True, environ)
    assert not nothing.keeps and not nothing.keep("a", "d", "t") and nothing.token_for("a") is None


def test_json_output_prints_frames_without_their_device_token() -> None:
    frame = json.dumps({"type": "welcome", "name": "alpha", "device": "d1", "device_token": "secret"})
    shown = without_device_token(frame)
    assert "secret" not in shown and json.loads(shown) == {"type": "welcome", "name": "alpha", "device": "d1"}
    plain = '{"type":"message","text":"device_token"}'
    assert without_device_token(plain) == plain


def test_devices_are_listed_one_a_line_with_this_one_marked() -> None:
    devices = [
        DeviceInfo("d1", "laptop", "2026-12-01T09:00:00.000Z", "2026-12-01T09:15:00.000Z", current=True),
        DeviceInfo("d2", "phone", "2026-12-01T09:00:00.000Z", "2026-11-30T08:00:00.000Z"),
    ]
    lines = devices_text(Devices(devices)).splitlines()
    assert lines[0].startswith("devices signed in to your account (2)")
    assert lines[1].split()[:2] == ["d1", "laptop"] and lines[1].endswith("(this device)")
    assert lines[2].split()[:2] == ["d2", "phone"] and "this device" not in lines[2]
    assert "no device" in devices_text(Devices([]))


def test_devices_and_signout_commands() -> None:
    assert parse("/devices") == Command(Action.DEVICES)
    assert parse("/signout  d1 ") == Command(Action.SIGN_OUT, "d1")
    assert parse("/signout").action is Action.USAGE
    assert parse("/signout d1 d2").action is Action.USAGE


class FakeConnection:
    """Answers each ``join`` from a script: a refusal code, or a welcome with a new token."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.joins: list[tuple[str | None, str | None, str | None]] = []

    async def join(
        self, name: str, passphrase: str | None = None, *, device_token: str | None = None, device: str | None = None
    ) -> Incoming:
        self.joins.append((passphrase, device_token, device if passphrase is not None else None))
        answer = self.answers.pop(0)
        if answer != "welcome":
            raise NameRejected(answer, answer)
        welcome = Welcome(1, "", name, "", [name], Limits(), device="d9", device_token="new")
        return Incoming(encode(welcome), welcome)


def signed_in(answers: list[str], keyring: Keyring) -> FakeConnection:
    fake = FakeConnection(answers)
    asyncio.run(sign_in(cast(Connection, fake), "alpha", keyring, ask=None))
    return fake


def test_the_kept_token_goes_first_and_the_welcomes_new_one_replaces_it(tmp_path: Path) -> None:
    keeper = DeviceKeeper(URL, directory=tmp_path, label="here")
    keeper.keep("alpha", "d9", "kept")
    fake = signed_in(["welcome"], Keyring("the passphrase", keeper))
    assert fake.joins == [(None, "kept", None)]  # the passphrase is not sent while a token is kept
    assert keeper.token_for("alpha") == "new"


def test_a_refused_token_is_forgotten_and_the_passphrase_signs_in_with_the_label(tmp_path: Path) -> None:
    keeper = DeviceKeeper(URL, directory=tmp_path, label="here")
    keeper.keep("alpha", "d9", "spent")
    fake = signed_in(["bad_device_token", "welcome"], Keyring("the passphrase", keeper))
    assert fake.joins == [(None, "spent", None), ("the passphrase", None, "here")]
    assert keeper.token_for("alpha") == "new"


def test_a_refused_token_without_a_passphrase_to_fall_back_on_is_forgotten(tmp_path: Path) -> None:
    keeper = DeviceKeeper(URL, directory=tmp_path, label="here")
    keeper.keep("alpha", "d9", "spent")
    with pytest.raises(NameRejected):
        signed_in(["bad_device_token"], Keyring(None, keeper))
    assert keeper.token_for("alpha") is None


def test_chat_client_flags_choose_the_device_file(tmp_path: Path) -> None:
    environ = {"XDG_STATE_HOME": str(tmp_path)}
    given = resolve(build_parser().parse_args(["--device-file", str(tmp_path / "mine"), URL]), environ)
    assert given.devices is not None and given.devices.path_for("alpha") == tmp_path / "mine"
    none = resolve(build_parser().parse_args(["--no-device", URL]), environ)
    assert none.devices is not None and not none.devices.keeps
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--no-device", "--device-file", "x"])
