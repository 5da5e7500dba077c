"""``chat-client``: arguments, mode choice, error messages and exit statuses.

Interactive when stdin and stdout are terminals; scripted otherwise (or with
``--json``). Every failure ends as one line on stderr and a documented exit
status, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

from chat_protocol import SIGN_IN_ERRORS, SUBPROTOCOL, CloseCode, NameRefused, check_name

from . import interactive, scripted, trust
from .config import DEFAULT_URL, resolve_admin_password, resolve_passphrase, resolve_password, resolve_url
from .devices import DEVICE_FILE_ENV, DeviceKeeper, keeper_for
from .errors import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_REMOVED,
    EXIT_TRACKER_GONE,
    EXIT_USAGE,
    AuthenticationFailed,
    Banned,
    ClientError,
    HandshakeRefused,
    NameRejected,
    Quit,
    Removed,
    TrackerGone,
    UsageError,
)
from .signin import HOW_TO_GIVE_IT, Keyring

PROG = "chat-client"
DEFAULT_RECONNECT_FOR = 120.0  # seconds: a tracker restart, a Wi-Fi hiccup, a laptop lid

EPILOG = f"""\
modes:
  interactive  stdin and stdout are a terminal: asks for the password (hidden) and a
               username (and a registered name's passphrase, hidden), then chat; type
               /help for commands (/register makes your name yours), exit or /quit to leave
               (a registered name only goes offline, staying a member: what is said
               meanwhile is shown when you come back), /part to leave for good.
               Signed in to a registered name, the client keeps this device's token
               (see --device-file) and signs in with it next time, without the
               passphrase; /devices lists your devices, /signout ID signs one out.
  scripted     stdin or stdout is not a terminal, or --json: every stdin line is sent
               as a message, every event is printed as one line; at end of input the
               client leaves once the tracker has acknowledged all it sent.

reconnecting:
  A connection lost mid-chat (no close frame, or close 1006, 1011-1014) is got back:
  retried with jittered exponential backoff (0.25-0.5 s, then doubling, at most 5-10 s)
  for up to --reconnect-for seconds; once back, the session resumes where it was:
  missed events are replayed and unacknowledged messages sent again (never twice).
  Lines typed meanwhile are kept (at most 100); piped lines simply wait in the pipe.
  Never after a kick (4011) or a ban (4012).

moderating (--admin):
  /kick NAME [reason], /mute NAME SECONDS [reason] (0 unmutes), /ban NAME|ADDRESS
  [SECONDS] [reason] (no SECONDS: for good), /unban ID, /bans, /announce TEXT: calls
  to the tracker's /admin API with the admin password (asked hidden, or
  TRACKER_ADMIN_PASSWORD). Scripted mode runs stdin lines that start with them too,
  and writes their results to stderr.

environment:
  TRACKER_URL       tracker URL when none is given (default {DEFAULT_URL})
  TRACKER_PASSWORD  server password when --password-file is not given
  CHAT_USERNAME     username when --username is not given
  CHAT_PASSPHRASE   a registered username's passphrase when --passphrase-file is not given
  CHAT_DEVICE_FILE  where to keep the device token when --device-file is not given
  XDG_STATE_HOME    the device tokens' default home: $XDG_STATE_HOME/chat-client (else
                    ~/.local/state/chat-client), one file per tracker and name, mode 0600
  TRACKER_ADMIN_PASSWORD  the admin password with --admin (required in scripted mode)
  NO_COLOR          any non-empty value turns colours off (so does TERM=dumb)
  CHAT_CLIENT_CAFILE  a PEM file of certificates to trust too, as --cafile
  SSL_CERT_FILE     replaces the system's trust store (OpenSSL's variable), for wss:// and https://

exit status:
  {EXIT_OK}  you left: exit, /quit, Ctrl+C, Ctrl+D, or end of input in scripted mode
  {EXIT_FAILURE}  connection or authentication failure: tracker unreachable, wrong password,
     handshake refused, or (scripted) username refused by the tracker; the first connection
     is never retried, and a wrong password or (scripted) a refused username on
     reconnecting is final
  {EXIT_USAGE}  usage error: bad arguments, no username or password (or, with --admin, no
     TRACKER_ADMIN_PASSWORD) in scripted mode, unreadable password file
  {EXIT_TRACKER_GONE}  the tracker went away: it shut down (close 1001), the connection was lost
     and could not be got back within --reconnect-for seconds (at once with
     --reconnect-for 0), or (scripted) nothing arrived for --timeout seconds after leaving
  {EXIT_REMOVED}  the tracker closed the session for another reason: flooding (4006), too slow
     (4007), protocol error (4008), resumed on another connection (4010), removed by a
     moderator (4011), banned (4012; also a banned address or name refused when
     connecting or reconnecting), this device signed out (4015: its kept token is
     forgotten, the next run asks for the passphrase), or any other close code; never
     retried
"""


@dataclass(frozen=True)
class Options:
    """Everything a session needs, resolved from arguments and environment."""

    url: str
    password: str | None
    username: str | None
    as_json: bool
    color: bool
    timeout: float
    reconnect_for: float = DEFAULT_RECONNECT_FOR
    admin: bool = False
    admin_password: str | None = None  # with ``admin``: None means ask for it (interactive)
    passphrase: str | None = field(default=None, repr=False)  # a registered name's; None: ask if needed
    cafile: str | None = None  # trusted too for wss:// and https:// (trust.py)
    devices: DeviceKeeper | None = None  # where this client keeps its device token (devices.py)

    def keyring(self) -> Keyring:
        return Keyring(self.passphrase, self.devices)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Terminal client for the group chat tracker.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_who_and_where(parser)
    _add_timing(parser)
    _add_moderation_and_trust(parser)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()} (protocol {SUBPROTOCOL})")
    return parser


def _add_who_and_where(parser: argparse.ArgumentParser) -> None:
    """The tracker, the password, the name, and the output mode."""
    parser.add_argument(
        "url",
        nargs="?",
        metavar="URL",
        help="tracker: ws://host:port/ws, wss://..., http(s)://..., or a bare host or host:port "
        "(port 8000 and path /ws are implied); default $TRACKER_URL, else " + DEFAULT_URL,
    )
    parser.add_argument("--password-file", metavar="PATH", help="read the server password from the first line of PATH")
    parser.add_argument(
        "--username", metavar="NAME", help="username (default $CHAT_USERNAME); required in scripted mode"
    )
    parser.add_argument(
        "--passphrase-file",
        metavar="PATH",
        help="a registered username's passphrase, from the first line of PATH (default $CHAT_PASSPHRASE; "
        "at a terminal it is asked for, hidden, when the tracker wants it)",
    )
    keeping = parser.add_mutually_exclusive_group()
    keeping.add_argument(
        "--device-file",
        metavar="PATH",
        help="keep this client's device token (a registered name signs in with it, without the passphrase) "
        f"in PATH (default ${DEVICE_FILE_ENV}, else one file per tracker and name under "
        "$XDG_STATE_HOME/chat-client or ~/.local/state/chat-client)",
    )
    keeping.add_argument(
        "--no-device", action="store_true", help="keep no device token: sign in with the passphrase every time"
    )
    parser.add_argument("--json", action="store_true", help="scripted mode, one protocol event (JSON object) per line")
    parser.add_argument("--no-color", action="store_true", help="no colours, as with NO_COLOR")


def _add_timing(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=10.0,
        metavar="SECONDS",
        help="give up connecting and authenticating (each reconnection attempt too) after SECONDS, "
        "and (scripted) waiting for the "
        "tracker's bye when nothing has arrived for SECONDS after leaving (default 10)",
    )
    parser.add_argument(
        "--reconnect-for",
        type=_seconds,
        default=DEFAULT_RECONNECT_FOR,
        metavar="SECONDS",
        help="after a lost connection, keep trying to reconnect and resume for SECONDS "
        f"(default {DEFAULT_RECONNECT_FOR:g}; 0: never, exit 3 at once)",
    )


def _add_moderation_and_trust(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--admin",
        action="store_true",
        help="moderator mode: /kick, /mute, /ban, /unban, /bans, /announce through the tracker's /admin API; "
        "the admin password is asked for (hidden) or taken from $TRACKER_ADMIN_PASSWORD (required in scripted mode)",
    )
    parser.add_argument(
        "--cafile",
        metavar="FILE",
        help="for wss:// and https:// trackers, trust the PEM certificates in FILE too, beside the system's "
        "trust store: a self-signed certificate or a private CA (default $CHAT_CLIENT_CAFILE)",
    )


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _positive_seconds(text: str) -> float:
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _seconds(text: str) -> float:
    value = _number(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _version() -> str:
    try:
        return version("groupchat")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def resolve(args: argparse.Namespace, environ: Mapping[str, str]) -> Options:
    """Turn arguments and environment into Options; raises UsageError."""
    env = dict(environ)
    url = resolve_url(args.url, env)
    return Options(
        url=url,
        password=resolve_password(args.password_file, env),
        passphrase=resolve_passphrase(args.passphrase_file, env),
        username=args.username or env.get("CHAT_USERNAME") or None,
        as_json=args.json,
        color=not (args.no_color or env.get("NO_COLOR") or env.get("TERM") == "dumb"),
        timeout=args.timeout,
        reconnect_for=args.reconnect_for,
        admin=args.admin,
        admin_password=resolve_admin_password(args.admin, env),
        cafile=args.cafile or env.get("CHAT_CLIENT_CAFILE") or None,
        devices=keeper_for(url, args.device_file, args.no_device, env),
    )


def is_interactive(options: Options) -> bool:
    """A person is at the keyboard: both ends are terminals and no machine output was asked for."""
    return not options.as_json and sys.stdin.isatty() and sys.stdout.isatty()


def check_scripted(options: Options) -> tuple[str, str]:
    """Password and username for scripted mode, where nobody can be asked for them."""
    if options.password is None:
        raise UsageError("no password: use --password-file PATH or set TRACKER_PASSWORD")
    if options.username is None:
        raise UsageError("no username: use --username NAME or set CHAT_USERNAME")
    try:
        check_name(options.username)
    except NameRefused as exc:
        raise UsageError(f"username {options.username!r} refused: {exc}") from None
    if options.admin and options.admin_password is None:
        raise UsageError("--admin: no admin password: set TRACKER_ADMIN_PASSWORD")
    return options.password, options.username


def run_session(options: Options) -> int:
    """Run the mode that fits stdin/stdout; returns the exit status."""
    trust.use_cafile(options.cafile)
    try:
        return run_interactive(options) if is_interactive(options) else run_scripted(options)
    except Removed as removed:
        if signed_out(removed) and options.devices is not None:
            options.devices.forget()  # its token signs nobody in any more: the next run asks for the passphrase
        raise


def run_interactive(options: Options) -> int:
    """A person at a terminal: missing passwords are asked for, hidden, before connecting."""
    try:
        password = options.password or interactive.ask_password_before_connecting()
        admin_password = options.admin_password
        if options.admin and admin_password is None:
            admin_password = interactive.ask_admin_password_before_connecting()
        return asyncio.run(
            interactive.run(
                options.url,
                password,
                options.username,
                color=options.color,
                timeout=options.timeout,
                reconnect_for=options.reconnect_for,
                admin=options.admin,
                admin_password=admin_password,
                keyring=options.keyring(),
            )
        )
    except (KeyboardInterrupt, Quit):  # Ctrl+C outside the chat prompt: a normal way out
        return EXIT_OK


def run_scripted(options: Options) -> int:
    """A pipe or --json: everything must be given up front."""
    password, username = check_scripted(options)
    # Peers may send any Unicode; a terminal or pipe that cannot show it must not crash us.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        return asyncio.run(
            scripted.run(
                options.url,
                password,
                username,
                as_json=options.as_json,
                timeout=options.timeout,
                reconnect_for=options.reconnect_for,
                admin_password=options.admin_password if options.admin else None,
                keyring=options.keyring(),
            )
        )
    except KeyboardInterrupt:  # a second Ctrl+C / SIGTERM: stop without leaving cleanly
        return 130


SIGNED_OUT_LINE = "This device was signed out; sign in again with your passphrase"


def signed_out(error: ClientError) -> bool:
    """Closed with 4015: this device was signed out (from another device, or by an operator)."""
    return isinstance(error, Removed) and error.code == CloseCode.SIGNED_OUT


def explain(error: ClientError) -> str:
    """The one line printed on stderr for a failure."""
    if signed_out(error):
        return SIGNED_OUT_LINE
    if isinstance(error, AuthenticationFailed):
        return "wrong password" if str(error) == "wrong password" else f"wrong password: {error}"
    if isinstance(error, NameRejected) and error.code in SIGN_IN_ERRORS:
        return f"username refused: {error.message}; {HOW_TO_GIVE_IT}"
    if isinstance(error, NameRejected):
        return f"username refused: {error.message}"
    if isinstance(error, HandshakeRefused):
        return f"the tracker refused the connection: {error}"
    if isinstance(error, Banned):
        return f"the tracker refused you: {error}"
    if isinstance(error, TrackerGone):
        return f"the tracker went away: {error}"
    if isinstance(error, Removed):
        return f"the tracker closed the session: {error} (close code {error.code})"
    return str(error)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``chat-client`` console script."""
    args = build_parser().parse_args(argv)  # exits 2 with a usage line on bad arguments
    try:
        options = resolve(args, os.environ)
        status = run_session(options)
    except ClientError as error:
        print(f"{PROG}: {explain(error)}", file=sys.stderr, flush=True)
        status = error.exit_status
    sys.exit(status)
