"""The outbox sender's hooks (`bot.services.outbox.OutboxHooks`), as one thin facade.

Each hook hands its item to the service whose job it is: the room-opening sequence
(`bot.services.opening`), the ballots' tidy-ups of superseded reactions, the direct chats
(`bot.services.dms`). Nothing is decided here.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.domain.counting import Redaction
from bot.services.dms import DirectChats
from bot.services.groups import Groups
from bot.services.opening import RoomOpening
from bot.services.outbox import DRAFT, TIDY, Doorbell, Outbox
from bot.services.plans import AfterCommit
from bot.services.publish import Publisher
from storage.backend import Backend
from storage.repo import OutboxItem, Repository


class SentHooks:
    """What the services do once an outbox item went through or failed for good."""

    def __init__(
        self,
        groups: Groups,
        db: Backend,
        openings: Mapping[str, RoomOpening],
        dms: DirectChats,
        doorbell: Doorbell,
        publisher: Publisher | None = None,
    ) -> None:
        self.groups = groups
        self.settings = groups.first.settings  # the bot-wide values
        self.db = db
        self.openings = openings  # each group's room-opening sequence, by group id
        # Steps of the opening that concern no one group's rules (finding a room made
        # before a crash, reading a sent ballot back) go to the first group's.
        self.opening = openings[groups.first.group_id]
        self.dms = dms
        self.doorbell = doorbell
        self.publisher = publisher

    async def on_sent(
        self, repo: Repository, item: OutboxItem, result: str, now: int
    ) -> AfterCommit:
        """Record what a sent operation produced (a room or event ID); returns the plan for
        after the sender's commit (`after_commit`)."""
        plan = AfterCommit()
        await self._record(repo, Outbox(repo, now, plan), item, result, now)
        return plan

    async def _record(
        self, repo: Repository, out: Outbox, item: OutboxItem, result: str, now: int
    ) -> None:
        if item.request_id is None:
            return
        group = await self.groups.of_key(repo, item.request_id)
        if await self.openings[group.group_id].recorded(repo, out, item, result, now):
            return
        if item.op == "redact" and item.target:
            # The bot's tidying of a superseded reaction: stored as it is sent (the sync
            # skips the bot's own events), so the rule knows it can never count again.
            req = await repo.request(item.request_id)
            if req is not None and req.room_id:
                bot = self.settings.bot_user_id
                await repo.add_redaction(Redaction(result, item.target, req.room_id, bot, now, now))
                if item.purpose is not None and item.purpose.startswith(TIDY):
                    member = item.purpose.removeprefix(TIDY)
                    await group.ballots.tidied(repo, out, req, member)
        elif item.purpose == DRAFT:
            await repo.update_request(item.request_id, draft_event_id=result)

    async def on_failed(
        self, repo: Repository, item: OutboxItem, error: str, now: int
    ) -> AfterCommit:
        """An operation failed for good (see `RoomOpening.failed`)."""
        plan = AfterCommit()
        if item.request_id is not None:
            group = await self.groups.of_key(repo, item.request_id)
            await self.openings[group.group_id].failed(repo, Outbox(repo, now, plan), item, now)
        return plan

    async def after_commit(self, item: OutboxItem, plan: AfterCommit, *, sent: bool) -> None:
        """Once `on_sent`'s or `on_failed`'s transaction committed: run its plan (a new
        room's timers start), then a sent ballot's follow-up (`RoomOpening.after_sent`)."""
        await plan.run(self.groups, self.publisher, self.doorbell)
        if sent:
            await self.opening.after_sent(item)

    async def find_created_room(self, item: OutboxItem) -> str | None:
        """After a crash during room creation: the room created before, if any."""
        return await self.opening.find_created_room(item)

    async def dm_room(self, user_id: str) -> str:
        """The bot's direct chat with a user, created when there is none yet."""
        return await self.dms.dm_room(user_id)

    async def tidy_target(self, item: OutboxItem) -> str | None:
        """Just before a tidy-up is sent: the reaction it should remove now, if any."""
        if item.purpose is None or item.request_id is None or item.target is None:
            return None
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            req = await repo.request(item.request_id)
            if req is None:
                return None
            member = item.purpose.removeprefix(TIDY)
            ballots = self.groups.of(req).ballots
            return await ballots.tidy_target(repo, req, member, item.target)
