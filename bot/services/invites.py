"""Which invites the bot accepts: the invite policy."""

from __future__ import annotations

import logging

from bot.domain.mxid import server_of
from bot.matrix.events import Invite
from bot.services.settings import Settings
from storage.backend import Backend
from storage.repo import Repository

log = logging.getLogger(__name__)


class InvitePolicy:
    """Decides on invites. Construction does no I/O."""

    def __init__(self, settings: Settings, db: Backend) -> None:
        self.settings = settings
        self.db = db

    async def should_accept(self, invite: Invite) -> bool:
        """Accept invites from chairs and allowed inviters, and direct chats from members
        (from anyone when self-application is on)."""
        s = self.settings
        if invite.room_id == s.main_room_id:
            return True
        inviter = invite.inviter
        if inviter is None:
            return False
        if inviter in s.chairs or inviter in s.allowed_inviters:
            return True
        if invite.is_direct:
            async with self.db.transaction() as tx:
                repo = Repository(tx)
                member = await repo.member(inviter)
                if member is not None and member.active:
                    return True
                if not s.self_apply:
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
