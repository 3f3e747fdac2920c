"""The groups one bot serves, each with its own services: its own process.

Every group has its own `Settings` (main room, chairs, deadlines, quorum, language, …) and its
own `Ballots`, `Calendar` and `Handlers` built over them, so a rule is always applied with the
settings of the group whose request, room or roster it is about: a chair of one group is a
chair in that group's handlers only, and a ballot is counted with its own group's quorum. The
engine chooses the group of each event (`Groups.of`, `Groups.by_main_room`) and hands it to
that group's services; the database rows name their group (migration 0012).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from bot.domain.request import Request
from bot.services.ballots import Ballots
from bot.services.calendar import Calendar
from bot.services.handlers import Handlers
from bot.services.settings import Settings


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
