"""What a command's executor is handed: a narrow context, not the whole unit of work.

An executor (bound to its command in `commands/table.py`) reads and writes only through
`CommandStore` (the requests, objections, appeals, questions, roster entries and languages
a command itself looks at) and says things only through `Replies`. Everything larger — a
filing, a close, a decision, a count — is a use case of the ballots, the calendar or the
export, run over the job's whole repository and outbox by `Act`, so the executor never holds
them. mypy holds executors to this: `Ctx.repo` and `Ctx.out` are the protocols below, which
`Repository` and `Outbox` satisfy as they are.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from bot.domain.appeals import Appeal
from bot.domain.lifecycle import RequestState
from bot.domain.objections import Objection, ObjectionState
from bot.domain.request import Request
from bot.i18n.catalog import Language, english
from bot.matrix.events import CommandText
from bot.matrix.render import Message
from bot.services.outbox import Outbox, dm
from bot.services.plans import AfterCommit
from commands.spec import Place
from storage.repo import FrozenRecord, Member, Repository

P = ParamSpec("P")
T = TypeVar("T")


class CommandStore(Protocol):
    """The reads and writes an executor makes itself (see the module)."""

    async def request(self, request_id: int) -> Request | None: ...
    async def request_numbered(self, group_id: str, number: int) -> Request | None: ...
    async def requests(
        self, group_id: str | None, states: Sequence[RequestState] | None = None
    ) -> list[Request]: ...
    async def request_for(
        self, group_id: str, applicant: str, states: Sequence[RequestState]
    ) -> Request | None: ...
    async def filed_by_applicant(self, applicant: str) -> list[Request]: ...
    async def update_request(self, request_id: int, **fields: Any) -> None: ...
    async def frozen_records(self, request_id: int) -> list[FrozenRecord]: ...
    async def objections(self, request_id: int) -> list[Objection]: ...
    async def objection(self, objection_id: int) -> Objection | None: ...
    async def dispose_objection(
        self,
        objection_id: int,
        state: ObjectionState,
        by: str,
        rationale: str | None,
        now: int,
        duplicate_of: int | None = None,
    ) -> None: ...
    async def contest_objection(
        self, objection_id: int, by: str, reason: str, now: int
    ) -> None: ...
    async def appeals(
        self,
        request_id: int | None = None,
        *,
        open_only: bool = False,
        group_id: str | None = None,
    ) -> list[Appeal]: ...
    async def appeal(self, appeal_id: int) -> Appeal | None: ...
    async def add_appeal(
        self, request_id: int, segment: int, member: str, reason: str, now: int
    ) -> int: ...
    async def answer_appeal(
        self, appeal_id: int, state: str, by: str, rationale: str, now: int
    ) -> None: ...
    async def question(self, question_id: int) -> tuple[int, str, str] | None: ...
    async def add_question(
        self, request_id: int, asked_by: str, question: str, now: int
    ) -> int: ...
    async def answer_question(self, question_id: int, answer: str, now: int) -> None: ...
    async def set_hum(self, request_id: int, hummer: str, side: str, strength: str) -> None: ...
    async def member(self, group_id: str, user_id: str) -> Member | None: ...
    async def active_members(self, group_id: str) -> list[Member]: ...
    async def upsert_member(
        self,
        group_id: str,
        user_id: str,
        stakeholder: str,
        region: str,
        now: int,
        added_by: str,
        country: str | None = None,
    ) -> None: ...
    async def deactivate_member(self, group_id: str, user_id: str, now: int) -> bool: ...
    async def language(self, user_id: str) -> str | None: ...
    async def languages_of(self, user_ids: Sequence[str]) -> dict[str, str]: ...
    async def set_language(self, user_id: str, language: str, now: int) -> None: ...
    async def dm_group(self, room_id: str) -> str | None: ...
    async def set_dm_group(self, room_id: str, group_id: str) -> None: ...


class Replies(Protocol):
    """What an executor may say and do in rooms, and plan for after the commit."""

    after: AfterCommit

    async def message(
        self,
        msg: Message,
        *,
        room_id: str | None = None,
        request_id: int | None = None,
        purpose: str | None = None,
    ) -> None: ...
    async def file(
        self,
        data: str,
        filename: str,
        mimetype: str,
        caption: dict[str, Any],
        *,
        room_id: str,
        request_id: int | None = None,
        cache_key: str | None = None,
    ) -> None: ...
    async def invite(
        self,
        user_id: str,
        *,
        room_id: str | None = None,
        request_id: int | None = None,
        purpose: str | None = None,
    ) -> None: ...
    async def remove_from_room(
        self, user_id: str, *, room_id: str, request_id: int | None = None, reason: str = ""
    ) -> None: ...


class Act:
    """Runs a use case over the job's whole repository and outbox, for an executor that
    holds neither: `await ctx.act(self.ballots.decide, req, …)`; `ctx.act.read(…)` for one
    that only reads."""

    def __init__(self, repo: Repository, out: Outbox) -> None:
        self._repo = repo
        self._out = out

    async def __call__(
        self,
        use: Callable[Concatenate[Repository, Outbox, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`use(repository, outbox, *args, **kwargs)`."""
        return await use(self._repo, self._out, *args, **kwargs)

    async def read(
        self,
        use: Callable[Concatenate[Repository, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`use(repository, *args, **kwargs)`."""
        return await use(self._repo, *args, **kwargs)


@dataclass(frozen=True, slots=True)
class Where:
    """The room a command was typed in, as the bot knows it.

    `place` is None for a room the bot keeps no role for: not the main room, not a
    request's room, not the sender's own direct chat (e.g. a room an outsider made and
    invited the bot to, or someone else's direct chat). No message is ever sent there (the
    ✅/❌ reaction on the command alone): every answer goes to the sender's direct chat.
    """

    place: Place | None
    room_request: Request | None


@dataclass(slots=True)
class Ctx:
    """Everything an executor may use (see the module)."""

    repo: CommandStore
    out: Replies
    act: Act
    now: int
    event: CommandText
    place: Place
    room_request: Request | None
    is_chair: bool
    member: Member | None
    where: Where  # the room as it is (`place` above: as the command is served)
    received_at: int | None = None  # a released held event: when it was received
    # What the answer is said in: the sender's own language in a direct message, the
    # group's in a room (bot/i18n).
    lang: Language = field(default_factory=english)

    def answer_room(self, request_id: int | None) -> str:
        """Where details of request `request_id` may be said (see `details_room`)."""
        return details_room(self.event, self.where, request_id)


def details_room(event: CommandText, where: Where, request_id: int | None) -> str:
    """Where details of request `request_id` (None: of several) may be said: in that
    request's own room or the sender's own direct chat; anywhere else by direct message."""
    if where.place is Place.DM:
        return event.room_id
    if where.room_request is not None and where.room_request.id == request_id:
        return event.room_id
    return dm(event.sender)
