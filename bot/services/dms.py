"""The bot's direct chats with people, and what it reads of their profiles.

A direct chat is the bot's own table's, never found by scanning rooms (anyone can copy a
marker into a room they made). Outsiders (neither chairs nor active members) keep one chat
each, and chats nobody uses are forgotten and left (`prune`).
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from bot.domain.clock_rules import zone
from bot.domain.lifecycle import UNDECIDED, RequestState
from bot.matrix.gateway import Gateway, GatewayError
from bot.matrix.rooms import dm_initial_state
from bot.services.clock import Clock
from bot.services.groups import Groups
from storage.backend import Backend
from storage.repo import Repository

log = logging.getLogger(__name__)


class DirectChats:
    """The bot's direct chats, and members' time zones. Construction does no I/O."""

    def __init__(
        self,
        groups: Groups,
        db: Backend,
        clock: Clock,
        gateway: Gateway | None = None,
    ) -> None:
        self.groups = groups
        self.settings = groups.first.settings  # the bot-wide values
        self.db = db
        self.clock = clock
        self.gateway = gateway

    async def dm_room(self, user_id: str) -> str:
        """The bot's direct chat with a user: the one in the bot's own table, or a new one.

        Never found by scanning rooms for a marker: anyone can copy a marker into a room
        they made. A crash between creating a chat and storing it costs a second chat.
        """
        async with self.db.transaction() as tx:
            known = await Repository(tx).dm_room(user_id)
        if known:
            return known
        if self.gateway is None:
            raise GatewayError("no homeserver connection")
        room_id = await self.gateway.create_room(
            name="",
            # One group: its name; several: the chat serves them all.
            topic=f"{self.settings.group_name}: Consensus Bot"
            if len(self.groups) == 1
            else "Consensus Bot",
            initial_state=dm_initial_state(encrypted=self.settings.encrypts),
            power_level_override={},
            invite=[user_id],
            is_direct=True,
        )
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            await repo.set_dm_room(user_id, room_id, self.clock.now_ms())
            return await repo.dm_room(user_id) or room_id

    async def remember(self, user_id: str, room_id: str) -> list[str]:
        """A user opened a direct chat with the bot: use it for their reminders.

        An outsider (not a chair, not an active member) keeps one direct chat: the older
        ones are forgotten and returned, for the caller to leave."""
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            await repo.set_dm_room(user_id, room_id, self.clock.now_ms())
            if await self.groups.insider(repo, user_id):
                return []
            older = [r for r in await repo.dm_rooms_of(user_id) if r != room_id]
            for old in older:
                await repo.forget_dm_room(old)
        return older

    async def prune(self, limit: int = 500) -> list[str]:
        """Forget direct chats with outsiders that nobody uses, and return them to be left:
        made longer than `storage.retention` ago, no command in them within it (the events
        applied are kept that long), and no request of the user's undecided or decided within
        it (they may still appeal, and are told the answer there)."""
        before = self.clock.now_ms() - self.settings.retention_ms
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            idle = await repo.idle_outsider_dms(before, UNDECIDED, limit)
            idle = [(room, user) for room, user in idle if not self.groups.chair_anywhere(user)]
            for room, _user in idle:
                await repo.forget_dm_room(room)
        return [room for room, _user in idle]

    async def refresh_timezones(self, limit: int = 100) -> int:
        """Read members' `m.tz` profile field (spec v1.16) where not known yet.

        "" is stored for "looked up, none set", so each member is asked once; open ballots
        are rescheduled afterwards so reminders avoid their night.
        """
        if self.gateway is None:
            return 0
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            members = sorted(
                {
                    m.user_id
                    for group in self.groups
                    for m in await repo.active_members(group.group_id)
                    if m.tz is None
                }
            )
        found: dict[str, str] = {}
        for user_id in members[:limit]:
            tz = ""
            for field_name in ("m.tz", "us.cloke.msc4175.tz"):
                try:
                    path = f"/_matrix/client/v3/profile/{quote(user_id, safe='')}/{field_name}"
                    value = (await self.gateway.raw("GET", path)).get(field_name)
                except GatewayError:
                    continue
                if isinstance(value, str) and zone(value, "").key == value:
                    tz = value
                    break
            found[user_id] = tz
        if not found:
            return 0
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            for user_id, tz in found.items():
                await repo.set_member_tz(user_id, tz)
            reschedule = {r.id for r in await repo.requests(None, [RequestState.OPEN])}
        await self.groups.follow(reschedule)
        return sum(1 for tz in found.values() if tz)
