"""`consensus-bot init`: a commented config file written from a few answers.

`render_config_text` is pure: answers in, TOML text out (with the same comments as
`config.example.toml`, shortened). `validate` checks the result with `load_config`, the loader
of `check-config` and `run`, in a scratch directory. `run_init` asks what the command-line
flags did not say, re-asks what the loader refuses (interactive) or reports it with its key
path (`--yes`), and writes the files: the secret beside the config with mode 0600 when it was
typed or piped in, never into the TOML; nothing is ever overwritten. The command line itself
(flags, `input`, `getpass`) is in `bot/cli.py`.
"""

from __future__ import annotations

import json
import re
import stat
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from bot.config import ConfigError, ConfigIssue, load_config
from bot.domain.errors import OperatorError
from storage.files import write_new_file

Kind = Literal["password", "access_token"]

EXIT_OK = 0
EXIT_INVALID = 2  # invalid answers, a file that exists already, or an unreadable secret file

DEFAULT_NAME = "Collaboration Group"
DEFAULT_TIMEZONE = "UTC"


class InitError(OperatorError):
    """`init` cannot go on; the message says why, for the operator."""


@dataclass(frozen=True, slots=True)
class Answers:
    """What the operator told `init` (from flags or prompts)."""

    homeserver: str = ""
    user_id: str = ""
    main_room: str = ""
    chairs: tuple[str, ...] = ()
    name: str = DEFAULT_NAME
    timezone: str = DEFAULT_TIMEZONE


@dataclass(frozen=True, slots=True)
class Secret:
    """The bot's credential: either typed or piped in (`value`, written beside the config
    with mode 0600), or an existing file the config points at (`existing`)."""

    kind: Kind
    value: str | None = None
    existing: Path | None = None


def secret_path(config_path: Path, kind: Kind) -> Path:
    """Where a typed secret is kept: beside the config, named after it (`config.password`)."""
    suffix = "password" if kind == "password" else "access-token"
    return config_path.with_name(f"{config_path.stem}.{suffix}")


def split_chairs(text: str) -> tuple[str, ...]:
    """Chairs typed on one line, separated by spaces or commas."""
    return tuple(part for part in re.split(r"[\s,]+", text.strip()) if part)


def _toml(value: str) -> str:
    # A JSON string is a valid TOML basic string (same escapes).
    return json.dumps(value, ensure_ascii=False)


def _file_reference(config_path: Path, file: Path) -> str:
    """How the config names a secret file: relative to the config's directory when inside
    it (the loader resolves it from there), else absolute."""
    base = config_path.absolute().parent
    target = file.absolute()
    return str(target.relative_to(base)) if target.is_relative_to(base) else str(target)


def render_config_text(answers: Answers, kind: Kind, secret_file: str) -> str:
    """The config file for `answers`, with `<kind>_file = secret_file`, commented."""
    a = answers
    chairs = "[" + ", ".join(_toml(c) for c in a.chairs) + "]"
    return f"""\
# Consensus Bot configuration, written by `consensus-bot init`.
#
# Check it with  consensus-bot check-config --config THIS-FILE
# and run it with consensus-bot run --config THIS-FILE
# Every key is explained in config.example.toml. Relative paths are taken from the directory
# of this file. Durations are written like "90s", "45m", "12h", "14d" or "2w".

[matrix]
# URL of the homeserver's client-server API.
homeserver = {_toml(a.homeserver)}
# The bot's own Matrix user ID; the account must already exist.
user_id = {_toml(a.user_id)}
# The bot's credential is kept out of this file, in a file only its owner may read. The
# environment variables CONSENSUS_BOT_PASSWORD / CONSENSUS_BOT_ACCESS_TOKEN override it.
{kind}_file = {_toml(secret_file)}
# Device ID the bot logs in as; keep it (the homeserver drops resent messages by it).
device_id = "CONSENSUSBOT"
# Prefix of the bot's commands ("!cb help").
command_prefix = "!cb"
# Matrix user IDs, besides the chairs, whose room invites the bot accepts.
allowed_inviters = []

[storage]
# The SQLite database: roster, requests, positions, decision records. Back it up with
# `consensus-bot backup`.
path = "data/consensus.db"

[group]
# The group's name, shown on request cards, digests and outcomes.
name = {_toml(a.name)}
# The main room (room ID or alias), where requests are filed and outcomes announced. Invite
# the bot there from a chair's account: it joins at start.
main_room = {_toml(a.main_room)}
# Optional Space (room ID or alias) that request rooms are added to; "" for none.
space = ""
# The chairs, who judge consensus and confirm or decide outcomes.
chairs = {chairs}
# IANA time zone of the group: digests are scheduled and times shown in it.
timezone = {_toml(a.timezone)}
# Whether anyone may apply by direct message to the bot (`!cb apply`).
self_apply = true
# Direct chats with non-members kept per homeserver (one each); past it, invites are refused.
dm_rooms_per_server = 100

# Members are best added with `consensus-bot members import --config THIS-FILE roster.csv`
# (columns user_id,stakeholder,region) or `!cb member add`. They may also be seeded here:
# [[group.members]]
# user_id = "@alice:example.org"
# stakeholder = "technical-community"  # government, private-sector, civil-society,
#                                      # technical-community, academia, intergovernmental,
#                                      # international-organization
# region = "europe"                    # africa, americas, arab-states, asia-pacific, europe, cis

[process]
# How long a request stays open for positions, and the shortest deadline a chair may set.
deadline = "14d"
min_deadline = "72h"
# Reminders to members without a position, before the deadline.
reminders = ["48h", "24h"]
# Share of eligible members who must take a position for the draft to propose an outcome.
quorum = 0.5
# How long after an outcome it may be appealed.
appeal_window = "14d"

[digest]
# When to post the digest in the main room: standard cron in the group's time zone
# (minute hour day-of-month month day-of-week); "" disables it.
schedule = "0 9 * * mon"
"""


def validate(answers: Answers, secret: Secret, config_path: Path) -> list[ConfigIssue]:
    """The loader's problems with the config `init` would write (empty when it is valid).

    The files are written to a scratch directory and read with `load_config`, exactly as
    `check-config` reads them, with no environment credentials in the way.
    """
    with tempfile.TemporaryDirectory(prefix="consensus-bot-init-") as scratch:
        path = Path(scratch) / config_path.name
        if secret.existing is not None:
            reference = str(secret.existing.absolute())
        else:
            stored = secret_path(path, secret.kind)
            stored.write_text((secret.value or "") + "\n", encoding="utf-8")
            reference = stored.name
        path.write_text(render_config_text(answers, secret.kind, reference), encoding="utf-8")
        try:
            load_config(path, env={})
        except ConfigError as exc:
            return exc.issues
    return []


def write_files(answers: Answers, secret: Secret, config_path: Path) -> list[Path]:
    """Write the secret (if typed) and the config, neither overwriting anything; the paths
    written, secret first. Raises InitError."""
    if config_path.exists():
        raise InitError(f"{config_path} exists already; init never overwrites a file")
    config_path.absolute().parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if secret.existing is not None:
        reference = _file_reference(config_path, secret.existing)
    else:
        stored = secret_path(config_path, secret.kind)
        try:
            write_new_file(stored, ((secret.value or "") + "\n").encode("utf-8"))
        except FileExistsError:
            raise InitError(
                f"{stored} exists already; init never overwrites a file (pass it with "
                f"--{secret.kind.replace('_', '-')}-file to use it)"
            ) from None
        written.append(stored)
        reference = stored.name
    try:
        text = render_config_text(answers, secret.kind, reference)
        write_new_file(config_path, text.encode("utf-8"), mode=0o644)
    except FileExistsError:
        for path in written:
            path.unlink()
        raise InitError(f"{config_path} exists already; init never overwrites a file") from None
    written.append(config_path)
    return written


def read_secret_file(path: Path, read_stdin: Callable[[], str]) -> str:
    """The secret in a file (`-`: standard input), stripped; InitError when unusable."""
    try:
        text = read_stdin() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise InitError(f"cannot read the secret from {path}: {reason}") from None
    if not text.strip():
        raise InitError(f"{path} is empty: it should hold the bot's password or access token")
    return text.strip()


def loose_permissions(path: Path) -> bool:
    """Whether a secret file may be read by others than its owner."""
    try:
        return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))
    except OSError:
        return False


# --------------------------------------------------------------------------- the dialogue

# Which answer to ask again for a problem at a key path.
_FIELD_OF_KEY: dict[str, str] = {
    "matrix.homeserver": "homeserver",
    "matrix.user_id": "user_id",
    "group.main_room": "main_room",
    "group.chairs": "chairs",
    "group.name": "name",
    "group.timezone": "timezone",
}
_FLAG_OF_FIELD: dict[str, str] = {
    "homeserver": "--homeserver",
    "user_id": "--user-id",
    "main_room": "--main-room",
    "chairs": "--chair",
    "name": "--name",
    "timezone": "--timezone",
    "secret": "--password-file or --access-token-file",
}
_KEY_OF_FIELD: dict[str, str] = {
    **{name: key for key, name in _FIELD_OF_KEY.items()},
    "secret": "matrix",
}


# The order of the questions.
ORDER = ("homeserver", "user_id", "secret", "main_room", "chairs", "name", "timezone")


def _field_of(issue: ConfigIssue) -> str | None:
    for key, name in _FIELD_OF_KEY.items():
        if issue.path == key or issue.path.startswith((key + ".", key + "[")):
            return name
    if issue.path == "matrix" or issue.path.startswith(("matrix.password", "matrix.access_token")):
        return "secret"
    return None


@dataclass
class Dialogue:
    """The operator's side of `init`: prompts, hidden prompts and messages."""

    ask: Callable[[str], str]  # shows a prompt, returns the line typed (EOFError at the end)
    ask_hidden: Callable[[str], str]  # the same without echo (getpass)
    say: Callable[[str], None]  # a message for the operator (stderr)
    read_stdin: Callable[[], str] = field(default=lambda: "")


_QUESTIONS: dict[str, tuple[str, str]] = {
    "homeserver": ("Homeserver URL", "https://matrix.example.org"),
    "user_id": ("The bot's Matrix user ID (the account must exist)", "@consensus:example.org"),
    "main_room": ("The main room's ID or alias", "#group:example.org"),
    "chairs": ("The chairs' Matrix user IDs, separated by spaces", "@chair:example.org"),
    "name": ("The group's name", ""),
    "timezone": ("The group's time zone (IANA name)", ""),
}


def _ask(dialogue: Dialogue, name: str, current: Answers) -> Answers:
    question, example = _QUESTIONS[name]
    default = {"name": current.name, "timezone": current.timezone}.get(name, "")
    hint = f" [{default}]" if default else f" (e.g. {example})"
    typed = dialogue.ask(f"{question}{hint}: ").strip()
    if not typed:
        typed = default
    if name == "chairs":
        return replace(current, chairs=split_chairs(typed))
    if name == "homeserver":
        return replace(current, homeserver=typed)
    if name == "user_id":
        return replace(current, user_id=typed)
    if name == "main_room":
        return replace(current, main_room=typed)
    if name == "name":
        return replace(current, name=typed)
    return replace(current, timezone=typed)


def _ask_secret(dialogue: Dialogue, config_path: Path) -> Secret:
    while True:
        choice = dialogue.ask(
            "Log in with a password or an access token (password/token) [password]: "
        )
        choice = choice.strip().lower() or "password"
        if choice in ("password", "p", "token", "t", "access token", "access_token"):
            break
        dialogue.say("  please answer password or token")
    kind: Kind = "password" if choice.startswith("p") else "access_token"
    label = "password" if kind == "password" else "access token"
    where = secret_path(config_path, kind)
    while True:
        value = dialogue.ask_hidden(
            f"The bot's {label} (not shown; kept in {where.name}, readable by you only): "
        ).strip()
        if value:
            return Secret(kind, value=value)
        dialogue.say(f"  the {label} cannot be empty")


def run_init(
    config_path: Path,
    given: Answers,
    *,
    secret: Secret | None,
    secret_file: Path | None,
    interactive: bool,
    dialogue: Dialogue,
    asked: Sequence[str] = (),
    secret_kind: Kind = "password",  # noqa: S107 - which kind of secret, not one
) -> int:
    """Ask what is missing, check it with the loader, write the files; the exit code.

    `given` holds the flags' answers, and `asked` names those the flags did not give (to be
    asked when `interactive`, an error otherwise). The secret is `secret`, or read from
    `secret_file` (`-` for standard input) holding a `secret_kind`, or asked for.
    """
    if config_path.exists():
        dialogue.say(f"init: {config_path} exists already; init never overwrites a file")
        return EXIT_INVALID
    answers = given
    try:
        if secret is None and secret_file is not None:
            secret = _secret_from_file(secret_file, secret_kind, dialogue)
    except InitError as exc:
        dialogue.say(f"init: {exc}")
        return EXIT_INVALID
    wanted = set(asked) | (set() if secret is not None else {"secret"})
    missing = [name for name in ORDER if name in wanted]
    if not interactive and missing:
        for name in missing:
            dialogue.say(
                f"init: {_KEY_OF_FIELD[name]}: required; give {_FLAG_OF_FIELD[name]} "
                "(--yes asks nothing)"
            )
        return EXIT_INVALID
    try:
        pending = missing
        while True:
            for name in pending:
                if name == "secret":
                    secret = _ask_secret(dialogue, config_path)
                else:
                    answers = _ask(dialogue, name, answers)
            assert secret is not None
            issues = validate(answers, secret, config_path)
            if not issues:
                break
            dialogue.say(f"init: {len(issues)} problem(s):")
            for issue in issues:
                dialogue.say(f"  {issue.path}: {issue.message}")
            fields = [_field_of(issue) for issue in issues]
            if (
                not interactive
                or None in fields
                or ("secret" in fields and secret.existing is not None)
            ):
                return EXIT_INVALID
            pending = [name for name in ORDER if name in fields]
            dialogue.say("  please answer again:")
    except (EOFError, KeyboardInterrupt):
        dialogue.say("\ninit: stopped; nothing was written")
        return EXIT_INVALID
    try:
        written = write_files(answers, secret, config_path)
    except (InitError, OSError) as exc:
        dialogue.say(f"init: {exc}")
        return EXIT_INVALID
    for path in written:
        dialogue.say(f"wrote {path}")
    if secret.existing is not None and loose_permissions(secret.existing):
        dialogue.say(
            f"warning: others may read {secret.existing}; make it yours only: "
            f"chmod 600 {secret.existing}"
        )
    dialogue.say(
        f"next: invite {answers.user_id} to {answers.main_room} from a chair's account, then "
        f"run  consensus-bot check-config --config {config_path}"
    )
    return EXIT_OK


def _secret_from_file(path: Path, kind: Kind, dialogue: Dialogue) -> Secret:
    """`--password-file PATH`: the config points at PATH; `-`: read stdin, kept beside."""
    if str(path) == "-":
        return Secret(kind, value=read_secret_file(path, dialogue.read_stdin))
    read_secret_file(path, dialogue.read_stdin)  # readable and not empty, or InitError
    return Secret(kind, existing=path)
