"""The vocabulary of command declarations: who, where, which parameters, and how to read them.

Everything here is a frozen value. The one table of commands lives in `commands.table`; the
parser (`commands.parser`) and the help texts (`commands.help`) are generated from it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, TypeVar

from bot.domain.errors import Refusal
from bot.domain.text import N_

T_co = TypeVar("T_co", covariant=True)


class ConversionError(Refusal, ValueError):
    """An argument could not be read; the message is one sentence fit to show a user."""


class Converter(Protocol[T_co]):
    """Turns one argument word into a typed value, or raises `ConversionError`."""

    @property
    def metavar(self) -> str:
        """The placeholder shown in usage lines, e.g. `N`, `WHEN`, `for|against`."""
        ...

    def convert(self, text: str, now_ms: int) -> T_co:
        """Convert `text`; `now_ms` is the current time (for arguments such as WHEN)."""
        ...


class Role(enum.Enum):
    """Who may run a command (checked by the services layer against the roster)."""

    ANYONE = "anyone"
    MEMBER = "member"
    CHAIR = "chair"
    MEMBER_OR_CHAIR = "member_or_chair"


class Place(enum.Enum):
    """Where a command may be sent."""

    MAIN = "main"  # the group's main room
    REQUEST = "request"  # the room of one participation request
    DM = "dm"  # a direct chat with the bot


ANYWHERE: frozenset[Place] = frozenset(Place)


class Section(enum.Enum):
    """The heading a command is listed under in `!cb help`, in display order."""

    POSITIONS = N_("Taking a position")
    REQUESTS = N_("Filing a request")
    INFORMATION = N_("Information")
    CHAIR = N_("Chair tools")


class Executor(enum.Enum):
    """What runs a command: the key under which the services layer binds its handler.

    Declared here, with the table, so that the binding is part of each command's one
    declaration; the services check at start that every key has exactly one handler, and
    this package never imports them (tests/unit/test_layering.py). Commands that differ only
    in the position they take share `POSITION`.
    """

    POSITION = "position"
    WITHDRAW = "withdraw"
    HUM = "hum"
    REQUEST = "request"
    APPLY = "apply"
    EDIT = "edit"
    AFFIRM = "affirm"
    ASK = "ask"
    ANSWER = "answer"
    MINE = "mine"
    LANGUAGE = "language"
    GROUP = "group"
    HELP = "help"
    STATUS = "status"
    LIST = "list"
    MEMBERS = "members"
    OBJECTIONS = "objections"
    EXPORT = "export"
    DISPOSE = "dispose"
    CONTEST = "contest"
    APPEAL = "appeal"
    APPEAL_ANSWER = "appeal-answer"
    DEADLINE = "deadline"
    EXTEND = "extend"
    CLOSE = "close"
    CONFIRM = "confirm"
    DECIDE = "decide"
    REOPEN = "reopen"
    REMIND = "remind"
    TRIAGE = "triage"
    ACCEPT = "accept"
    REJECT = "reject"
    CANCEL = "cancel"
    DIGEST = "digest"
    MEMBER_ADD = "member-add"
    MEMBER_REMOVE = "member-remove"


@dataclass(frozen=True, slots=True)
class Positional:
    """One word in a fixed position. Missing optional ones parse to None."""

    name: str
    converter: Converter[object]
    help: str
    required: bool = True
    metavar: str | None = None

    @property
    def label(self) -> str:
        """The placeholder shown in usage lines."""
        return self.metavar or self.converter.metavar


@dataclass(frozen=True, slots=True)
class Option:
    """`--name VALUE` or `--name=VALUE`, anywhere among the words. Absent ones parse to None."""

    name: str
    converter: Converter[object]
    help: str
    metavar: str | None = None
    required: bool = False
    hash_word: bool = False
    """A word `#N` among the leading words (where the positionals and the first word of the
    free text go) gives this option too: `support #7 Good work` is `support --request 7 Good
    work`, `hum for #7` is `hum for --request 7`. A quoted word, or one after `--`, is not."""

    @property
    def label(self) -> str:
        """The placeholder for the value shown in usage lines."""
        return self.metavar or self.converter.metavar


@dataclass(frozen=True, slots=True)
class Rest:
    """Free text: all remaining words (a statement, a reason). Absent optional text is None.

    The words are re-joined with single spaces (line breaks between words are kept) and keep
    their quotes as typed, except that text given entirely as one quoted word is unquoted.
    """

    name: str
    help: str
    required: bool = False
    metavar: str | None = None

    @property
    def label(self) -> str:
        """The placeholder shown in usage lines (without the trailing ellipsis)."""
        return self.metavar or self.name.upper()


Param = Positional | Option | Rest


def _is_words(text: str) -> bool:
    """Lower-case words separated by single spaces, e.g. `member add`, `+1`, `no objection`."""
    return bool(text) and text == text.strip().lower() and text.split(" ") == text.split()


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """The one declaration of a command: parsing, usage and help are derived from it.

    `name` may be two words (`member add`). `examples` are written without the prefix and
    are parsed by the tests, so the help can never show an example that does not work.
    `aliases` are other names people type (`yes` for `support`); the parser resolves them to
    this command and says which one was used. `private_answer` marks the commands whose
    answers must not be read in other rooms (see the field).

    An entry with `forwards` is not a command but a front word (`vote`): `vote X …` is parsed
    as the command X, one of `forwards` (or an alias of one), with `hint` as the note to send
    with the acknowledgement (`%(command)s` becomes X's name, `%(choices)s` the forwards). Its
    `params` only describe it in the help; it is never dispatched itself.
    """

    name: str
    summary: str
    params: tuple[Param, ...]
    role: Role
    places: frozenset[Place]
    details: str = ""
    examples: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    section: Section = Section.INFORMATION
    forwards: tuple[str, ...] = ()
    hint: str = ""
    executor: Executor | None = None
    """What runs the command (None only for a front word such as `vote`, never dispatched);
    `commands.table` checks at import that every command has one and every key is used."""
    private_answer: bool = False
    """The answer carries a request's details (positions, reasons, objections, the record,
    applications): it is given only in that request's own room or the sender's direct chat
    with the bot; typed anywhere else, the answer goes by direct message."""

    def __post_init__(self) -> None:
        """Reject declarations the parser could not honour (caught at import time)."""
        for word in (self.name, *self.aliases):
            if not _is_words(word):
                raise ValueError(f"command name {word!r} must be lower-case words")
        if self.name in self.aliases or len(set(self.aliases)) != len(self.aliases):
            raise ValueError(f"command {self.name!r} repeats a name among its aliases")
        if bool(self.forwards) != bool(self.hint):
            raise ValueError(f"{self.name}: forwards and hint go together")
        if self.hint:
            _ = self.hint % {"command": "x", "choices": "x"}  # a placeholder typo fails here
        if not self.summary.strip():
            raise ValueError(f"command {self.name!r} needs a summary")
        if not self.places:
            raise ValueError(f"command {self.name!r} must be allowed somewhere")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"command {self.name!r} declares a parameter twice")
        seen_optional = False
        seen_rest = False
        for param in self.params:
            if isinstance(param, Positional):
                if seen_rest:
                    raise ValueError(f"{self.name}: positional {param.name!r} after free text")
                if param.required and seen_optional:
                    raise ValueError(f"{self.name}: required {param.name!r} after optional")
                seen_optional = seen_optional or not param.required
            elif isinstance(param, Rest):
                if seen_rest:
                    raise ValueError(f"{self.name}: more than one free-text parameter")
                seen_rest = True
            elif param.name != param.name.lower() or param.name.startswith("-"):
                raise ValueError(f"{self.name}: option name {param.name!r} must be bare lower")
        if sum(1 for p in self.params if isinstance(p, Option) and p.hash_word) > 1:
            raise ValueError(f"{self.name}: more than one option taken from a #N word")

    @property
    def positionals(self) -> tuple[Positional, ...]:
        """The positional parameters, in order."""
        return tuple(p for p in self.params if isinstance(p, Positional))

    @property
    def rest(self) -> Rest | None:
        """The free-text parameter, if any."""
        return next((p for p in self.params if isinstance(p, Rest)), None)

    @property
    def options(self) -> tuple[Option, ...]:
        """The `--name` parameters, in declaration order."""
        return tuple(p for p in self.params if isinstance(p, Option))
