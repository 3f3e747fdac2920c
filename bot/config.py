"""The bot's configuration: a TOML file (see `config.example.toml`), validated in one pass.

`load_config` reads the file, resolves credentials (inline, from a file next to the config, or
from the environment) and relative paths, and either returns a frozen `Config` or raises
`ConfigError` listing *every* problem at once, each named by its dotted key path
(`group.members[2].region: ...`). `render_config` prints the effective configuration as TOML
with secrets hidden, for `consensus-bot check-config`.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Final, Literal, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from bot.domain.durations import DurationError, parse_duration
from bot.domain.errors import OperatorError
from bot.domain.hums import DEFAULT_HUM_MIN, MIN_HUMS_TO_REPORT
from bot.domain.mxid import is_room_alias, is_user_id
from bot.domain.publish import PublishOptions
from bot.domain.ratelimit import DM_ROOMS_PER_SERVER
from bot.domain.taxonomy import REGIONS, STAKEHOLDER_GROUPS
from bot.i18n.catalog import LANGUAGES, SOURCE_LANGUAGE, normalize_code
from storage.dsn import DsnError, mask_dsn, parse_dsn

__all__ = [
    "ACCESS_TOKEN_ENV",
    "PASSWORD_ENV",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "CronSchedule",
    "DigestConfig",
    "GroupConfig",
    "GroupEntry",
    "MatrixConfig",
    "MemberSeed",
    "ProcessConfig",
    "SecretFile",
    "StorageConfig",
    "load_config",
    "parse_cron",
    "render_config",
]

PASSWORD_ENV: Final = "CONSENSUS_BOT_PASSWORD"  # noqa: S105 - a variable name, not a secret
"""Environment variable whose value, when set and non-empty, is the bot's password."""

ACCESS_TOKEN_ENV: Final = "CONSENSUS_BOT_ACCESS_TOKEN"  # noqa: S105 - a variable name
"""Environment variable whose value, when set and non-empty, is the bot's access token."""

_ENV_FOR_SECRET: Final[Mapping[str, str]] = {
    "password": PASSWORD_ENV,
    "access_token": ACCESS_TOKEN_ENV,
}

_MASK: Final = "********"
_SECTIONS: Final = ("matrix", "storage", "group", "process", "digest")

DEFAULT_GROUP_ID: Final = "main"
"""The id of the one group of the single-group layout (`[group]`), and of the rows a database
from before several groups holds (migration 0012)."""

_GROUP_ID_RE: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in the configuration: the dotted key path and what is wrong there."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(OperatorError):
    """The configuration cannot be used; `issues` lists every problem found, in file order."""

    exit_code = 2

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues: list[ConfigIssue] = list(issues)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(issue) for issue in self.issues)


def _problem(message: str) -> PydanticCustomError:
    """A validation error whose message is shown verbatim (braces in user text are safe)."""
    return PydanticCustomError("config", "{message}", {"message": message})


def _raise_all(title: str, problems: list[tuple[tuple[str | int, ...], str, object]]) -> None:
    """Raise every `(loc, message, input)` problem at once, each at its own key path."""
    if problems:
        details = [
            InitErrorDetails(type=_problem(message), loc=loc, input=value)
            for loc, message, value in problems
        ]
        raise ValidationError.from_exception_data(title, details)


def _suggest(value: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(value.lower(), choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


# --------------------------------------------------------------------------- value types

# Room IDs: `!opaque:server` before room version 12, `!opaque` from it on.
_ROOM_ID_RE: Final = re.compile(r"![^\s]+")


def _check_mxid(value: str) -> str:
    if not is_user_id(value):
        raise _problem(f"'{value}' is not a Matrix user ID (expected @name:server)")
    return value


def _check_room(value: str) -> str:
    if len(value) > 255 or not (_ROOM_ID_RE.fullmatch(value) or is_room_alias(value)):
        raise _problem(
            f"'{value}' is neither a room ID (!id or !id:server) nor a room alias (#name:server)"
        )
    return value


def _check_duration(value: str) -> str:
    try:
        parse_duration(value)
    except DurationError as exc:
        raise _problem(str(exc)) from None
    return value


def _check_token(value: str) -> str:
    if not value or any(ch.isspace() for ch in value):
        raise _problem("must be non-empty and contain no whitespace")
    return value


UserId = Annotated[str, AfterValidator(_check_mxid)]
"""A validated Matrix user ID such as `@alice:example.org`."""

RoomRef = Annotated[str, AfterValidator(_check_room)]
"""A validated room ID (`!abc:example.org`, or `!abc` for room v12) or alias (`#x:example.org`)."""

DurationText = Annotated[str, AfterValidator(_check_duration)]
"""A duration as written in the file (`14d`, `72h`, `1d12h`), checked with `parse_duration`."""


# --------------------------------------------------------------------------- cron

# The schedule is read by croniter (standard cron: 0 and 7 are Sunday, names, ranges, lists,
# steps). APScheduler 3's own `CronTrigger.from_crontab` is not standard: it numbers weekdays
# from Monday = 0, refuses 7 and `sun-sat`, and requires both day fields to match where cron
# accepts either. croniter gives the meaning; `CronSchedule.apscheduler_fields` hands that
# meaning to APScheduler as explicit lists, which both read the same way.

_FIELD_NAMES: Final = ("minute", "hour", "day-of-month", "month", "day-of-week")
_FIELD_HINTS: Final = ("0-59", "0-23", "1-31", "1-12 or jan-dec", "0-7 or sun-sat")
_FIELD_RANGES: Final = (range(60), range(24), range(1, 32), range(1, 13), range(7))
_DAY_NAMES: Final = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# What standard cron writes in a field: `*`, a number or name, a range, each with an optional
# step, in a comma list. croniter also takes extensions (L, W, #, H, ?, seconds and year
# fields) that APScheduler's fields cannot say the same way: those are refused.
_CRON_ITEM: Final = re.compile(
    r"(?P<start>\*|[0-9]+|[a-z]{3})(?:-(?P<end>[0-9]+|[a-z]{3}))?(?:/[0-9]+)?", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A five-field cron expression and the set of matching values of each field.

    Days of the week are 0 = Sunday … 6 = Saturday (7 is folded into 0), as in cron. At most
    one of the two day fields is restricted (`parse_cron` refuses both), so "the day matches"
    means the same to cron, croniter and APScheduler.
    """

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]

    def apscheduler_fields(self) -> dict[str, str]:
        """Keyword arguments for APScheduler 3's `CronTrigger` with the same meaning.

        Every field is given as an explicit list, and days of the week by name, because
        APScheduler numbers weekdays from Monday = 0, unlike cron.
        """

        def listed(values: frozenset[int], full: range) -> str:
            return "*" if values == frozenset(full) else ",".join(str(v) for v in sorted(values))

        weekdays = (
            "*"
            if self.days_of_week == frozenset(range(7))
            else ",".join(_DAY_NAMES[d] for d in sorted(self.days_of_week))
        )
        return {
            "minute": listed(self.minutes, range(60)),
            "hour": listed(self.hours, range(24)),
            "day": listed(self.days_of_month, range(1, 32)),
            "month": listed(self.months, range(1, 13)),
            "day_of_week": weekdays,
        }


def _expand(fields: Sequence[str]) -> list[list[int | str]]:
    """croniter's expansion of five fields (`'*'` for a whole field); raises CroniterError."""
    expanded, nth_weekdays = croniter.expand(" ".join(fields), strict=True)
    if nth_weekdays:  # `fri#2`: croniter's extension, refused by the grammar check already
        raise CroniterError("nth weekday")
    return [list(values) for values in expanded]


def _value(index: int, token: str, *, range_end: bool) -> int:
    """The number croniter gives one value of a field (a weekday range ends on Sunday = 7)."""
    if index == 4 and range_end and token.lower() in ("sun", "7"):
        return 7
    probe = ["*"] * 5
    probe[index] = token
    (value,) = _expand(probe)[index]
    return int(value)


def _check_field(index: int, text: str) -> None:
    """Raise ValueError naming the field when `text` is not a standard cron field."""
    name, hint = _FIELD_NAMES[index], _FIELD_HINTS[index]
    items = text.split(",")
    matches = [_CRON_ITEM.fullmatch(item) for item in items]
    if not all(matches):
        raise ValueError(
            f"{name} field '{text}' is not standard cron: use {hint}, *, ranges a-b, lists "
            "a,b and steps */n or a-b/n (L, W, #, H and ? are not supported)"
        )
    probe = ["*"] * 5
    probe[index] = text
    try:
        _expand(probe)
    except CroniterError:
        raise ValueError(
            f"{name} field '{text}' is out of range or not understood (use {hint})"
        ) from None
    for item, match in zip(items, matches, strict=True):
        assert match is not None
        start, end = match["start"], match["end"]
        if end is None or start == "*":
            continue
        low, high = _value(index, start, range_end=False), _value(index, end, range_end=True)
        written = item.partition("/")[0]
        if low == high:
            # croniter reads an equal range as the whole field; cron as that one value.
            raise ValueError(
                f"{name} field '{text}': range '{written}' has one value: write {start}"
            )
        if low > high:
            raise ValueError(
                f"{name} field '{text}': range '{written}' runs backwards; cron ranges do not "
                "wrap around, so write two (e.g. 22-23,0-5 for hours, fri-sat,sun-mon for days)"
            )


def parse_cron(expression: str) -> CronSchedule:
    """Parse a five-field cron expression (`minute hour day-of-month month day-of-week`).

    Standard cron, as croniter reads it: each field is `*`, a number or name, a range `a-b`,
    a list `a,b`, or a step `*/n`, `a-b/n` or `a/n`; months may be `jan`-`dec` and weekdays
    `sun`-`sat` (0 and 7 are Sunday). Refused, with a message naming the field: anything
    else, ranges that do not run from low to high, both day fields restricted (cron runs
    when EITHER matches, APScheduler only when BOTH do: restrict one), and a schedule that
    never runs (`0 9 31 2 *`). Raises `ValueError`.
    """
    parts = expression.split()
    if len(parts) != len(_FIELD_NAMES):
        raise ValueError(
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}"
        )
    for index, text in enumerate(parts):
        _check_field(index, text)
    if parts[2] != "*" and parts[4] != "*":
        raise ValueError(
            "restrict either day-of-month or day-of-week, not both: cron runs when either "
            f"matches ('{parts[2]}' or '{parts[4]}'), which is rarely what is meant; put * "
            "in one of them"
        )
    try:
        expanded = _expand(parts)
    except CroniterError:
        raise ValueError(
            f"'{expression}' never runs: no month in it has such a day of the month"
        ) from None
    minutes, hours, days, months, weekdays = (
        frozenset(_FIELD_RANGES[i]) if values == ["*"] else frozenset(int(v) for v in values)
        for i, values in enumerate(expanded)
    )
    return CronSchedule(
        expression=" ".join(parts),
        minutes=minutes,
        hours=hours,
        days_of_month=days,
        months=months,
        days_of_week=frozenset(d % 7 for d in weekdays),
    )


# --------------------------------------------------------------------------- context helpers


def _base_dir(info: ValidationInfo) -> Path | None:
    context = info.context if isinstance(info.context, Mapping) else {}
    base = context.get("base_dir")
    return base if isinstance(base, Path) else None


def _env(info: ValidationInfo) -> Mapping[str, str]:
    context = info.context if isinstance(info.context, Mapping) else {}
    env = context.get("env")
    return env if isinstance(env, Mapping) else {}


def _env_secret(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if not isinstance(value, str):
        return None
    return value.strip() or None


# --------------------------------------------------------------------------- sections


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretFile(_Section):
    """A credential read from a file: where it is, and its (stripped) content.

    `secret` is None when the matching environment variable overrides the file, which is then
    not read at all.
    """

    path: Path
    secret: SecretStr | None = None


class MatrixConfig(_Section):
    """`[matrix]`: how the bot reaches its homeserver and who it is.

    Exactly one credential must result from `password`, `access_token`, `password_file`,
    `access_token_file` and the environment (`CONSENSUS_BOT_PASSWORD` /
    `CONSENSUS_BOT_ACCESS_TOKEN`, which override the file). Use the `password` and
    `access_token` properties for the resolved values.
    """

    homeserver: str
    user_id: UserId
    password_inline: SecretStr | None = Field(default=None, alias="password")
    access_token_inline: SecretStr | None = Field(default=None, alias="access_token")
    password_file: SecretFile | None = None
    access_token_file: SecretFile | None = None
    device_id: Annotated[str, AfterValidator(_check_token)] = "CONSENSUSBOT"
    command_prefix: Annotated[str, AfterValidator(_check_token)] = "!cb"
    allowed_inviters: tuple[UserId, ...] = ()
    sync_watchdog: DurationText = "5m"
    # End-to-end encryption: "on" creates request rooms and direct chats encrypted and works
    # in encrypted rooms; "required" also refuses an unencrypted main room; "off" never
    # encrypts and answers encrypted messages with a note (the first version's behaviour).
    encryption: Literal["required", "on", "off"] = "on"
    # Where the bot's device keys live (relative to the config file's directory); back it up
    # with the database (copy it while the bot is stopped).
    crypto_store: Path = Field(default=Path("data/crypto"), validate_default=True)
    # How long an encrypted message may stay unreadable before its sender is told once.
    undecryptable_notice: DurationText = "10m"

    _password: SecretStr | None = PrivateAttr(default=None)
    _access_token: SecretStr | None = PrivateAttr(default=None)
    _password_source: str | None = PrivateAttr(default=None)
    _access_token_source: str | None = PrivateAttr(default=None)

    @property
    def undecryptable_notice_ms(self) -> int:
        """How long an unreadable encrypted message waits before its sender is told, in ms."""
        return parse_duration(self.undecryptable_notice)

    @field_validator("crypto_store")
    @classmethod
    def _resolve_crypto_store(cls, value: Path, info: ValidationInfo) -> Path:
        return _beside_config(value, info)

    @property
    def sync_watchdog_ms(self) -> int:
        """How long sync may fail before the bot logs it as an error, in milliseconds."""
        return parse_duration(self.sync_watchdog)

    @property
    def password(self) -> SecretStr | None:
        """The resolved password (environment, inline or file), or None."""
        return self._password

    @property
    def access_token(self) -> SecretStr | None:
        """The resolved access token (environment, inline or file), or None."""
        return self._access_token

    @property
    def password_source(self) -> str | None:
        """Where the password came from (`CONSENSUS_BOT_PASSWORD`, `matrix.password`, …)."""
        return self._password_source

    @property
    def access_token_source(self) -> str | None:
        """Where the access token came from, like `password_source`."""
        return self._access_token_source

    @field_validator("homeserver")
    @classmethod
    def _check_homeserver(cls, value: str) -> str:
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or any(ch.isspace() for ch in value)
            or parts.query
            or parts.fragment
        ):
            raise _problem(f"'{value}' is not an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("password_file", "access_token_file", mode="before")
    @classmethod
    def _read_secret_file(cls, value: object, info: ValidationInfo) -> object:
        if value is None or isinstance(value, SecretFile):
            return value
        if not isinstance(value, str) or not value.strip():
            raise _problem("must be a file path (a non-empty string)")
        path = Path(value).expanduser()
        base = _base_dir(info)
        if base is not None and not path.is_absolute():
            path = base / path
        if _env_credentials(_env(info)):
            return SecretFile(path=path)  # the environment overrides it: not read
        try:
            content = path.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:
            raise _problem(f"{path} is not UTF-8 text") from None
        except OSError as exc:
            raise _problem(f"cannot read {path}: {exc.strerror or exc}") from None
        if not content:
            raise _problem(f"{path} is empty")
        return SecretFile(path=path, secret=SecretStr(content))

    @model_validator(mode="after")
    def _resolve_credentials(self, info: ValidationInfo) -> Self:
        problems: list[tuple[tuple[str | int, ...], str, object]] = []
        from_env = _env_credentials(_env(info))
        if len(from_env) > 1:
            problems.append(
                ((), f"set only one of the environment variables {' and '.join(from_env)}", None)
            )
        elif from_env:
            # An environment credential overrides every credential in the file.
            ((env_name, (kind, secret)),) = from_env.items()
            self._set_credential(kind, secret, env_name)
        else:
            found: list[str] = []
            for kind, inline, from_file in (
                ("password", self.password_inline, self.password_file),
                ("access_token", self.access_token_inline, self.access_token_file),
            ):
                if inline is not None and from_file is not None:
                    problems.append(
                        ((f"{kind}_file",), f"give either {kind} or {kind}_file, not both", None)
                    )
                elif inline is not None:
                    if inline.get_secret_value().strip():
                        self._set_credential(kind, inline, f"matrix.{kind}")
                        found.append(kind)
                    else:
                        problems.append(((kind,), "is empty", None))
                elif from_file is not None and from_file.secret is not None:
                    source = f"matrix.{kind}_file ({from_file.path})"
                    self._set_credential(kind, from_file.secret, source)
                    found.append(f"{kind}_file")
            if not problems and not found:
                problems.append(
                    (
                        (),
                        "no credential: set password, access_token, password_file or "
                        f"access_token_file, or the environment variable {PASSWORD_ENV} or "
                        f"{ACCESS_TOKEN_ENV}",
                        None,
                    )
                )
            elif len(found) > 1:
                problems.append(
                    ((), f"give exactly one credential, not both {' and '.join(found)}", None)
                )
        _raise_all("MatrixConfig", problems)
        return self

    def _set_credential(self, kind: str, secret: SecretStr, source: str) -> None:
        if kind == "password":
            self._password, self._password_source = secret, source
        else:
            self._access_token, self._access_token_source = secret, source


def _env_credentials(env: Mapping[str, str]) -> dict[str, tuple[str, SecretStr]]:
    """The credentials set in the environment: variable name -> (kind, secret)."""
    found: dict[str, tuple[str, SecretStr]] = {}
    for kind, name in _ENV_FOR_SECRET.items():
        value = _env_secret(env, name)
        if value is not None:
            found[name] = (kind, SecretStr(value))
    return found


def _beside_config(value: Path, info: ValidationInfo) -> Path:
    """A configured path: `~` expanded, a relative one taken from the config file's directory."""
    if "\0" in str(value):  # the operating system refuses it: say so here, not in a traceback
        raise _problem("must not contain a NUL character")
    path = value.expanduser()
    base = _base_dir(info)
    return base / path if base is not None and not path.is_absolute() else path


class StorageConfig(_Section):
    """`[storage]`: the backend and where the database lives.

    `backend = "sqlite"` (the default) keeps everything in the file `path` (relative to the
    config file's directory). `backend = "postgresql"` keeps the data in the database named by
    `dsn` and lets a standby bot take over (see `failover_timeout`); `path` then only places
    the key file (beside it, as `<path>.keys`).
    """

    backend: Literal["sqlite", "postgresql"] = "sqlite"
    path: Path = Field(default=Path("data/consensus.db"), validate_default=True)
    # A DSN may carry a password: never printed (render_config masks it).
    dsn: SecretStr | None = None
    retention: DurationText = "30d"
    failover_timeout: DurationText = "10s"

    @property
    def retention_ms(self) -> int:
        """How long sent messages and processed event IDs are kept, in milliseconds."""
        return parse_duration(self.retention)

    @property
    def failover_timeout_s(self) -> float:
        """How soon a standby must take over after the active bot died, in seconds."""
        return parse_duration(self.failover_timeout) / 1000

    @field_validator("dsn")
    @classmethod
    def _check_dsn(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                parse_dsn(value.get_secret_value())
            except DsnError as exc:  # its message quotes no part of the DSN
                raise _problem(str(exc)) from None
        return value

    @field_validator("failover_timeout")
    @classmethod
    def _check_failover(cls, value: str) -> str:
        if parse_duration(value) < 3_000:
            raise _problem("must be at least 3s (the standby polls every second)")
        return value

    @model_validator(mode="after")
    def _check_backend(self) -> Self:
        if self.backend == "postgresql" and self.dsn is None:
            _raise_all(
                "StorageConfig",
                [(("dsn",), 'is required with backend = "postgresql"', None)],
            )
        if self.backend == "sqlite" and self.dsn is not None:
            _raise_all(
                "StorageConfig",
                [(("dsn",), 'is only used with backend = "postgresql"', None)],
            )
        return self

    @field_validator("path", mode="before")
    @classmethod
    def _check_path(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise _problem("must be a file path (a non-empty string)")
        return value

    @field_validator("path")
    @classmethod
    def _resolve_path(cls, value: Path, info: ValidationInfo) -> Path:
        path = _beside_config(value, info)
        if path.name in ("", ".", ".."):
            raise _problem(f"must name a database file, not the directory {str(value)!r}")
        return path


class MemberSeed(_Section):
    """One `[[group.members]]` entry, seeded into the roster at start."""

    user_id: UserId
    stakeholder: str
    region: str

    @field_validator("stakeholder")
    @classmethod
    def _check_stakeholder(cls, value: str) -> str:
        if value not in STAKEHOLDER_GROUPS:
            raise _problem(
                f"'{value}' is not a stakeholder group{_suggest(value, STAKEHOLDER_GROUPS)}; "
                f"use one of: {', '.join(STAKEHOLDER_GROUPS)}"
            )
        return value

    @field_validator("region")
    @classmethod
    def _check_region(cls, value: str) -> str:
        if value not in REGIONS:
            raise _problem(
                f"'{value}' is not a region{_suggest(value, REGIONS)}; "
                f"use one of: {', '.join(REGIONS)}"
            )
        return value


def _duplicates(
    values: Iterable[str], label: str
) -> list[tuple[tuple[str | int, ...], str, object]]:
    """Problems for each repeated value, at `(index,)`, naming where it first appeared."""
    first_seen: dict[str, int] = {}
    problems: list[tuple[tuple[str | int, ...], str, object]] = []
    for index, value in enumerate(values):
        if value in first_seen:
            problems.append(
                ((index,), f"{value} is listed twice (also at {label}[{first_seen[value]}])", value)
            )
        else:
            first_seen[value] = index
    return problems


class GroupConfig(_Section):
    """`[group]`: the group whose admissions the bot runs, its chairs and seed roster."""

    name: str
    main_room: RoomRef
    space: str = ""
    chairs: tuple[UserId, ...]
    timezone: str = "UTC"
    # The language of the rooms (each person may choose their own for direct messages).
    language: str = SOURCE_LANGUAGE
    self_apply: StrictBool = True
    dm_rooms_per_server: int = Field(default=DM_ROOMS_PER_SERVER, ge=1, le=100_000)
    # How members get into a request's room: "restricted" (they join it themselves, being
    # in the main room: no invite, which the homeserver rate-limits hard) or "invite".
    request_rooms: Literal["restricted", "invite"] = "restricted"
    # Homeservers known unable to join restricted rooms: their members are invited.
    invite_servers: tuple[str, ...] = ()
    members: tuple[MemberSeed, ...] = ()

    @property
    def tzinfo(self) -> ZoneInfo:
        """The group's time zone (digests are scheduled and times shown in it)."""
        return ZoneInfo(self.timezone)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not value.strip():
            raise _problem("must not be empty")
        return value.strip()

    @field_validator("space")
    @classmethod
    def _check_space(cls, value: str) -> str:
        return _check_room(value) if value else value

    @field_validator("chairs")
    @classmethod
    def _check_chairs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise _problem("at least one chair is required")
        _raise_all("chairs", _duplicates(value, "chairs"))
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise _problem(
                f"'{value}' is not a known time zone (use an IANA name like UTC or Europe/Paris)"
            ) from None
        return value

    @field_validator("language")
    @classmethod
    def _check_language(cls, value: str) -> str:
        code = normalize_code(value)
        if code is None:
            raise _problem(
                f"'{value}' is not a language the bot speaks (one of {', '.join(LANGUAGES)})"
            )
        return code

    @field_validator("members")
    @classmethod
    def _check_members(cls, value: tuple[MemberSeed, ...]) -> tuple[MemberSeed, ...]:
        problems = [
            ((*loc, "user_id"), message, seen)
            for loc, message, seen in _duplicates((m.user_id for m in value), "members")
        ]
        _raise_all("members", problems)
        return value


class ProcessConfig(_Section):
    """`[process]`: deadlines, reminders, quorum and appeal window of each request.

    Durations keep the text written in the file; use the `*_ms` properties for milliseconds.
    """

    deadline: DurationText = "14d"
    min_deadline: DurationText = "72h"
    reminders: tuple[DurationText, ...] = ("48h", "24h")
    hum_min: int = DEFAULT_HUM_MIN
    quorum: float = 0.5
    appeal_window: DurationText = "14d"
    clock_skew: DurationText = "5m"
    contest_window: DurationText = "48h"

    @property
    def contest_window_ms(self) -> int:
        """How long after a disposition its objector may contest it, in milliseconds."""
        return parse_duration(self.contest_window)

    max_open_requests: int = Field(default=3, ge=1, le=1000)
    applications_per_day: int = Field(default=1, ge=1, le=100)

    @property
    def clock_skew_ms(self) -> int:
        """How far a sender's timestamp is believed around the bot's receive time, in ms."""
        return parse_duration(self.clock_skew)

    @property
    def deadline_ms(self) -> int:
        """The default deadline of a request, in milliseconds after it opens."""
        return parse_duration(self.deadline)

    @property
    def min_deadline_ms(self) -> int:
        """The shortest deadline a chair may set, in milliseconds."""
        return parse_duration(self.min_deadline)

    @property
    def reminders_ms(self) -> tuple[int, ...]:
        """How long before the deadline to remind members without a position, longest first."""
        return tuple(sorted((parse_duration(r) for r in self.reminders), reverse=True))

    @property
    def appeal_window_ms(self) -> int:
        """How long after an outcome an appeal may be lodged, in milliseconds."""
        return parse_duration(self.appeal_window)

    @field_validator("quorum", mode="before")
    @classmethod
    def _check_quorum_type(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _problem("must be a number greater than 0 and at most 1")
        return value

    @field_validator("quorum")
    @classmethod
    def _check_quorum(cls, value: float) -> float:
        if not 0 < value <= 1:
            raise _problem(f"{value} is out of range: must be greater than 0 and at most 1")
        return value

    @field_validator("hum_min", mode="before")
    @classmethod
    def _check_hum_min(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _problem(f"must be a whole number, at least {MIN_HUMS_TO_REPORT}")
        if value < MIN_HUMS_TO_REPORT:
            raise _problem(
                f"{value} is too small: with fewer than {MIN_HUMS_TO_REPORT} hums one could "
                f"be told apart; use at least {MIN_HUMS_TO_REPORT}"
            )
        return value

    @model_validator(mode="after")
    def _check_together(self) -> Self:
        problems: list[tuple[tuple[str | int, ...], str, object]] = []
        if self.deadline_ms < self.min_deadline_ms:
            problems.append(
                (
                    ("deadline",),
                    f"{self.deadline} is shorter than min_deadline ({self.min_deadline})",
                    self.deadline,
                )
            )
        seen: dict[int, int] = {}
        for index, text in enumerate(self.reminders):
            ms = parse_duration(text)
            if ms in seen:
                problems.append(
                    (
                        ("reminders", index),
                        f"{text} repeats reminders[{seen[ms]}] ({self.reminders[seen[ms]]})",
                        text,
                    )
                )
            else:
                seen[ms] = index
            if ms >= self.deadline_ms:
                problems.append(
                    (
                        ("reminders", index),
                        f"{text} is not shorter than the deadline ({self.deadline})",
                        text,
                    )
                )
        _raise_all("ProcessConfig", problems)
        return self


class DigestConfig(_Section):
    """`[digest]`: when the digest is posted in the main room ("" disables it)."""

    schedule: str = "0 9 * * mon"

    @property
    def enabled(self) -> bool:
        """Whether digests are posted on a schedule."""
        return bool(self.schedule)

    @property
    def cron(self) -> CronSchedule | None:
        """The parsed schedule (in the group's time zone), or None when disabled."""
        return parse_cron(self.schedule) if self.schedule else None

    @field_validator("schedule")
    @classmethod
    def _check_schedule(cls, value: str) -> str:
        value = " ".join(value.split())
        if value:
            try:
                parse_cron(value)
            except ValueError as exc:
                raise _problem(str(exc)) from None
        return value


class PublishConfig(_Section):
    """`[publish]`: the public site of decisions and what goes on it (see `bot.domain.publish`).

    `dir` (relative to the config file) is regenerated by the running bot after each decision,
    appeal answer or reopen; `room` is a public room where each outcome is announced."""

    dir: Path | None = None
    room: RoomRef | None = None
    names_beside_objections: bool = False
    record_files: bool = False

    def options(self) -> PublishOptions:
        """What the group chose to publish, as the site's builder takes it."""
        return PublishOptions(self.names_beside_objections, self.record_files)

    @field_validator("dir")
    @classmethod
    def _resolve_dir(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        if str(value) in ("", "."):
            raise _problem("must be a directory path (not empty, not the config's own directory)")
        return _beside_config(value, info)


class GroupEntry(GroupConfig):
    """One group of `[[groups]]`: everything `[group]` holds, with its own `id` and its own
    `process` and `digest` tables (each key not set there comes from the top-level
    `[process]` / `[digest]`, then from the defaults)."""

    id: str
    process: ProcessConfig = Field(default_factory=ProcessConfig)
    digest: DigestConfig = Field(default_factory=DigestConfig)

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _GROUP_ID_RE.fullmatch(value):
            raise _problem(
                f"'{value}' is not a group id (1-32 of a-z, 0-9, '-', '_'; starting with a "
                "letter or digit)"
            )
        return value


class Config(_Section):
    """The whole configuration file. Build it with `load_config`.

    One group (`[group]`, `[process]`, `[digest]`) or several (`[[groups]]`, each with an
    `id`); `entries` is the same either way, so the rest of the bot sees a list of groups.
    """

    matrix: MatrixConfig
    storage: StorageConfig = Field(default_factory=StorageConfig)
    # Required unless [[groups]] is given (then None): a file with neither is told that
    # [group] is missing together with every other problem.
    group: GroupConfig | None
    groups: tuple[GroupEntry, ...] = ()
    process: ProcessConfig = Field(default_factory=ProcessConfig)
    digest: DigestConfig = Field(default_factory=DigestConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)
    _entries: tuple[GroupEntry, ...] = PrivateAttr(default=())

    @model_validator(mode="before")
    @classmethod
    def _default_sections(cls, data: object) -> object:
        # Optional sections are validated from an empty table so that defaults see the
        # context too (a default storage path is resolved against the config directory).
        if not isinstance(data, dict):
            return data
        data = {"storage": {}, "process": {}, "digest": {}, "publish": {}, **data}
        groups = data.get("groups")
        if groups is not None and "group" not in data:
            data["group"] = None
        if isinstance(groups, list):
            # Top-level [process] and [digest] are every group's defaults, key by key.
            data["groups"] = [
                _with_defaults(entry, data["process"], data["digest"]) for entry in groups
            ]
        return data

    @model_validator(mode="after")
    def _one_layout(self) -> Self:
        if self.group is None and not self.groups:
            _raise_all("Config", [(("groups",), "must list at least one group", None)])
        if self.group is not None and self.groups:
            _raise_all(
                "Config",
                [(("groups",), "use either [group] (one group) or [[groups]], not both", None)],
            )
        problems: list[tuple[tuple[str | int, ...], str, object]] = [
            (("groups", index, "id"), message, seen)
            for (index,), message, seen in _duplicates((g.id for g in self.groups), "groups")
        ]
        problems += [
            (("groups", index, "main_room"), message, seen)
            for (index,), message, seen in _duplicates((g.main_room for g in self.groups), "groups")
        ]
        _raise_all("groups", problems)
        if self.group is not None:
            self._entries = (
                GroupEntry.model_construct(
                    **dict(self.group),
                    id=DEFAULT_GROUP_ID,
                    process=self.process,
                    digest=self.digest,
                ),
            )
        else:
            self._entries = self.groups
        return self

    @property
    def entries(self) -> tuple[GroupEntry, ...]:
        """Every group the bot serves, in the file's order (one for `[group]`)."""
        return self._entries

    @property
    def first(self) -> GroupEntry:
        """The first group: its `dm_rooms_per_server` is the bot's, and one-off tools that
        serve one group serve it unless told otherwise (`--group`)."""
        return self._entries[0]

    def entry(self, group_id: str | None) -> GroupEntry:
        """The group `group_id` (None: the first); `KeyError` names the ids when unknown."""
        if group_id is None:
            return self.first
        for entry in self._entries:
            if entry.id == group_id:
                return entry
        known = ", ".join(e.id for e in self._entries)
        raise KeyError(f"no group '{group_id}' in the config (its groups: {known})")


def _with_defaults(entry: object, process: object, digest: object) -> object:
    """A `[[groups]]` entry whose `process` / `digest` keys default to the top-level ones."""
    if not isinstance(entry, dict):
        return entry
    merged = dict(entry)
    for key, defaults in (("process", process), ("digest", digest)):
        own = merged.get(key, {})
        if isinstance(defaults, dict) and isinstance(own, dict):
            merged[key] = {**defaults, **own}
    return merged


# --------------------------------------------------------------------------- loading


_PLAIN_MESSAGES: Final[Mapping[str, str]] = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "dict_type": "must be a table",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "tuple_type": "must be an array",
    "list_type": "must be an array",
    "path_type": "must be a file path (a string)",
}


def _key_path(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "(config)"


def _issues_from(error: ValidationError) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    for detail in error.errors(include_url=False):
        loc = tuple(detail["loc"])
        kind = detail["type"]
        if kind == "missing" and len(loc) == 1 and loc[0] in _SECTIONS:
            message = f"required section [{loc[0]}] is missing"
        else:
            message = _PLAIN_MESSAGES.get(kind, detail["msg"])
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        issue = ConfigIssue(_key_path(loc), message)
        if issue not in issues:
            issues.append(issue)
    return issues


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate the TOML configuration at `path`.

    `env` supplies `CONSENSUS_BOT_PASSWORD` / `CONSENSUS_BOT_ACCESS_TOKEN` (None means the
    process environment). `password_file`, `access_token_file` and a relative `storage.path`
    are taken relative to the directory of the config file. Apart from reading those files
    this has no effects. Raises `ConfigError` listing every problem found.
    """
    environment: Mapping[str, str] = os.environ if env is None else env
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            [ConfigIssue("(file)", f"{path} does not exist (start from config.example.toml)")]
        ) from None
    except OSError as exc:
        raise ConfigError(
            [ConfigIssue("(file)", f"cannot read {path}: {exc.strerror or exc}")]
        ) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError([ConfigIssue("(file)", f"{path} is not UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigIssue("(file)", f"{path} is not valid TOML: {exc}")]) from None
    context = {"base_dir": path.absolute().parent, "env": environment}
    try:
        return Config.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(_issues_from(exc)) from None


# --------------------------------------------------------------------------- rendering


def _toml(value: str | int | float | bool | Path | Sequence[str]) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return "[" + ", ".join(json.dumps(item, ensure_ascii=False) for item in value) + "]"


def _secret_lines(kind: str, matrix: MatrixConfig) -> list[str]:
    if kind == "password":
        secret, source = matrix.password, matrix.password_source
        inline, from_file = matrix.password_inline, matrix.password_file
    else:
        secret, source = matrix.access_token, matrix.access_token_source
        inline, from_file = matrix.access_token_inline, matrix.access_token_file
    lines: list[str] = []
    if secret is not None and source is not None:
        lines.append(f"{kind} = {_toml(_MASK)}  # from {source}")
    elif inline is not None:
        lines.append(f"# {kind} is set in the file but not used: the environment overrides it")
    else:
        lines.append(f"# {kind}: not set")
    if from_file is not None:
        note = "read" if from_file.secret is not None else "not read: the environment overrides it"
        lines.append(f"{kind}_file = {_toml(from_file.path)}  # {note}")
    return lines


def _group_lines(table: str, g: GroupConfig) -> list[str]:
    lines = [
        f"name = {_toml(g.name)}",
        f"main_room = {_toml(g.main_room)}",
        f"space = {_toml(g.space)}" + ("" if g.space else "  # none"),
        f"chairs = {_toml(g.chairs)}",
        f"timezone = {_toml(g.timezone)}",
        f"language = {_toml(g.language)}",
        f"self_apply = {_toml(g.self_apply)}",
        f"dm_rooms_per_server = {_toml(g.dm_rooms_per_server)}",
        f"request_rooms = {_toml(g.request_rooms)}",
        f"invite_servers = {_toml(g.invite_servers)}",
    ]
    if not g.members:
        lines.append(f"# no [[{table}.members]] seeded")
    for member in g.members:
        lines += [
            "",
            f"[[{table}.members]]",
            f"user_id = {_toml(member.user_id)}",
            f"stakeholder = {_toml(member.stakeholder)}",
            f"region = {_toml(member.region)}",
        ]
    return lines


def _process_lines(table: str, p: ProcessConfig, d: DigestConfig) -> list[str]:
    return [
        "",
        f"[{table}process]",
        f"deadline = {_toml(p.deadline)}",
        f"min_deadline = {_toml(p.min_deadline)}",
        f"reminders = {_toml(p.reminders)}",
        f"quorum = {_toml(p.quorum)}",
        f"appeal_window = {_toml(p.appeal_window)}",
        f"hum_min = {_toml(p.hum_min)}",
        f"clock_skew = {_toml(p.clock_skew)}",
        f"contest_window = {_toml(p.contest_window)}",
        f"max_open_requests = {_toml(p.max_open_requests)}",
        f"applications_per_day = {_toml(p.applications_per_day)}",
        "",
        f"[{table}digest]",
        f"schedule = {_toml(d.schedule)}" + ("" if d.enabled else "  # disabled"),
    ]


def _layout_lines(config: Config) -> list[str]:
    """The groups as they were read: `[group]` (one group, id "main") or each `[[groups]]`
    entry with its process and digest as they apply after the top-level defaults."""
    if config.group is not None:
        return [
            f'# one group ([group]), known to the database as "{DEFAULT_GROUP_ID}"',
            "[group]",
            *_group_lines("group", config.group),
            *_process_lines("", config.process, config.digest),
            "",
        ]
    ids = ", ".join(e.id for e in config.entries)
    lines = [f"# {len(config.entries)} groups ([[groups]]): {ids}"]
    for entry in config.entries:
        lines += [
            "[[groups]]",
            f"id = {_toml(entry.id)}",
            *_group_lines("groups", entry),
            *_process_lines("groups.", entry.process, entry.digest),
            "",
        ]
    return lines


def render_config(config: Config) -> str:
    """The effective configuration as TOML, defaults included and secrets hidden.

    Each credential is shown as `"********"` with a comment saying where it came from.
    """
    m = config.matrix
    lines = [
        "# Effective configuration (secrets hidden)",
        "",
        "[matrix]",
        f"homeserver = {_toml(m.homeserver)}",
        f"user_id = {_toml(m.user_id)}",
        *_secret_lines("password", m),
        *_secret_lines("access_token", m),
        f"device_id = {_toml(m.device_id)}",
        f"command_prefix = {_toml(m.command_prefix)}",
        f"allowed_inviters = {_toml(m.allowed_inviters)}",
        f"sync_watchdog = {_toml(m.sync_watchdog)}",
        f"encryption = {_toml(m.encryption)}",
        f"crypto_store = {_toml(m.crypto_store)}",
        f"undecryptable_notice = {_toml(m.undecryptable_notice)}",
        "",
        "[storage]",
        f"backend = {_toml(config.storage.backend)}",
        f"path = {_toml(config.storage.path)}",
        *(
            [f"dsn = {_toml(mask_dsn(config.storage.dsn.get_secret_value()))}"]
            if config.storage.dsn
            else []
        ),
        f"retention = {_toml(config.storage.retention)}",
        f"failover_timeout = {_toml(config.storage.failover_timeout)}",
        "",
        *_layout_lines(config),
        "[publish]",
        *([f"dir = {_toml(str(config.publish.dir))}"] if config.publish.dir else ["# no dir"]),
        *([f"room = {_toml(config.publish.room)}"] if config.publish.room else ["# no room"]),
        f"names_beside_objections = {_toml(config.publish.names_beside_objections)}",
        f"record_files = {_toml(config.publish.record_files)}",
    ]
    return "\n".join(lines) + "\n"
