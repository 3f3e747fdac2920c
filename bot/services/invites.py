"""Which invites the bot accepts: the invite policy."""

from __future__ import annotations

import logging
from typing import Protocol

from bot.domain.mxid import server_of
from bot.matrix.events import Invite
from bot.services.settings import Settings
from storage.backend import Backend
from storage.repo import Repository

log = logging.getLogger(__name__)


class Rosters(Protocol):
    """What the invite policy needs of the groups (`bot.services.groups.Groups`)."""

    def is_main_room(self, room_id: str) -> bool:
        """Whether this is a group's main room."""
        ...

    def chair_anywhere(self, user_id: str) -> bool:
        """Whether this user chairs any group."""
        ...

    def self_apply_anywhere(self) -> bool:
        """Whether any group takes applications by direct message."""
        ...


class InvitePolicy:
    """Decides on invites. Construction does no I/O."""

    def __init__(self, settings: Settings, db: Backend, groups: Rosters) -> None:
        self.settings = settings  # the bot-wide values
        self.db = db
        self.groups = groups

    async def should_accept(self, invite: Invite) -> bool:
        """Accept invites from chairs and allowed inviters, and direct chats from members
        (from anyone when self-application is on)."""
        s = self.settings
        if self.groups.is_main_room(invite.room_id):
            return True
        inviter = invite.inviter
        if inviter is None:
            return False
        if self.groups.chair_anywhere(inviter) or inviter in s.allowed_inviters:
            return True
        if invite.is_direct:
            async with self.db.transaction() as tx:
                repo = Repository(tx)
                if await repo.groups_of(inviter):  # an active member of some group
                    return True
                if not self.groups.self_apply_anywhere():
                    return False
                # An outsider's: each server's outsiders share a bounded number of direct
                # chats (one server can mint any number of users); an outsider's own older
                # chat does not count, it is left when this one is joined (`DirectChats.remember`).
                taken = await repo.outsider_dm_count(server_of(inviter), but=inviter)
            if taken >= s.dm_rooms_per_server:
                log.info("refusing a direct chat from %s: its server is at the cap", inviter)
                return False
            return True
        return False
