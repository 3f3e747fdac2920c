"""The groups one bot serves, each with its own services: its own process.

Every group has its own `Settings` (main room, chairs, deadlines, quorum, language, …) and its
own `Ballots`, `Calendar` and `Handlers` built over them, so a rule is always applied with the
settings of the group whose request, room or roster it is about: a chair of one group is a
chair in that group's handlers only, and a ballot is counted with its own group's quorum. The
engine chooses the group of each event (`Groups.of`, `Groups.by_main_room`) and hands it to
that group's services; the database rows name their group (migration 0012).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from bot.domain.request import Request
from bot.matrix.events import CommandText
from bot.services.ballots import Ballots
from bot.services.calendar import Calendar
from bot.services.handlers import Handlers
from bot.services.settings import Settings
from storage.repo import Repository


@dataclass(frozen=True, slots=True)
class GroupServices:
    """One group's settings and the services built over them."""

    settings: Settings
    ballots: Ballots
    calendar: Calendar
    handlers: Handlers

    @property
    def group_id(self) -> str:
        """The group's id."""
        return self.settings.group_id


class Groups:
    """Every group the bot serves, in the config's order. Construction does no I/O."""

    def __init__(self, groups: Sequence[GroupServices]) -> None:
        if not groups:
            raise ValueError("a bot serves at least one group")
        self._all = tuple(groups)
        self._by_id = {g.group_id: g for g in self._all}
        self._by_main_room = {g.settings.main_room_id: g for g in self._all}

    def __iter__(self) -> Iterator[GroupServices]:
        return iter(self._all)

    def __len__(self) -> int:
        return len(self._all)

    @property
    def first(self) -> GroupServices:
        """The first group: the only one of a single-group bot. Its settings hold the
        bot-wide values (the same in every group's)."""
        return self._all[0]

    @property
    def ids(self) -> tuple[str, ...]:
        """The groups' ids, in the config's order."""
        return tuple(self._by_id)

    def get(self, group_id: str) -> GroupServices | None:
        """The group of this id, if the bot serves it."""
        return self._by_id.get(group_id)

    def of(self, req: Request) -> GroupServices:
        """The group a request was made to. A request of a group no longer served cannot
        be stored (the start refuses such a database), so this always finds one."""
        return self._by_id[req.group_id]

    def by_main_room(self, room_id: str) -> GroupServices | None:
        """The group whose main room this is."""
        return self._by_main_room.get(room_id)

    def is_main_room(self, room_id: str) -> bool:
        """Whether this is a group's main room."""
        return room_id in self._by_main_room

    def self_apply_anywhere(self) -> bool:
        """Whether any group takes applications by direct message."""
        return any(g.settings.self_apply for g in self._all)

    def chair_anywhere(self, user_id: str) -> bool:
        """Whether this user chairs any of the groups."""
        return any(user_id in g.settings.chairs for g in self._all)

    async def insider(self, repo: Repository, user_id: str) -> bool:
        """A chair or an active member of any group: not an outsider."""
        return self.chair_anywhere(user_id) or bool(await repo.groups_of(user_id))

    async def of_key(self, repo: Repository, request_id: int) -> GroupServices:
        """The group of a stored request (the first when it is gone)."""
        req = await repo.request(request_id)
        return self.first if req is None else self.of(req)

    async def handlers_for(self, repo: Repository, event: CommandText) -> Handlers | None:
        """The handlers of the group a command is about: the group whose main room or
        request room it was sent in; in a direct chat (or a room of no group) the group the
        chat was said to be about (`group ID`), else the sender's only group. None: ask."""
        group = self.by_main_room(event.room_id)
        if group is not None:
            return group.handlers
        req = await repo.request_by_room(event.room_id)
        if req is not None:
            return self.of(req).handlers
        if len(self._all) == 1:
            return self.first.handlers
        chosen = await repo.dm_group(event.room_id)
        group = None if chosen is None else self.get(chosen)
        if group is not None:
            return group.handlers
        mine = {g for g in await repo.groups_of(event.sender) if g in self._by_id}
        mine |= {g.group_id for g in self._all if event.sender in g.settings.chairs}
        if len(mine) == 1:
            return self._by_id[mine.pop()].handlers
        return None

    # What a job's plan needs of the calendars (`bot.services.plans.Timetable`).

    async def follow(self, request_ids: Iterable[int]) -> None:
        """Each group's calendar follows its own of these requests."""
        ids = set(request_ids)
        for group in self._all:
            await group.calendar.follow(ids)

    async def fire_digests(self, group_ids: set[str]) -> None:
        """Post these groups' digests now."""
        for group in self._all:
            await group.calendar.fire_digests(group_ids)
