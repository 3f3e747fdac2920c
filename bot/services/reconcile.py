"""Reconciliation: what a timeline gap or downtime hid is read back and applied.

The ballots' reactions and poll answers are re-read from the server's relations endpoint and
applied idempotently through the batch apply (`Batches.apply_events`); a reaction counted
here but gone from the server is retracted only on evidence of its redaction.
"""

from __future__ import annotations

import logging

from bot.domain.lifecycle import RequestState
from bot.matrix.decode import decode_event
from bot.matrix.events import InboundEvent, PollResponse, ReactionAdded, Redacted
from bot.matrix.gateway import Gateway
from bot.services.batches import Batches
from bot.services.settings import Settings
from storage.backend import Backend
from storage.repo import Repository

log = logging.getLogger(__name__)


class Reconciler:
    """Closes gaps from the relations endpoint. Construction does no I/O."""

    def __init__(
        self, settings: Settings, db: Backend, batches: Batches, gateway: Gateway | None = None
    ) -> None:
        self.settings = settings
        self.db = db
        self.batches = batches
        self.gateway = gateway

    async def reconcile(self, room_ids: set[str] | None = None) -> int:
        """Re-read open ballots from the relations endpoint and apply what was missed.

        Reactions we never saw are applied (idempotently); reactions we count but the server
        no longer has were redacted while we were away, and are retracted.
        """
        if self.gateway is None:
            return 0
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            ballots = [
                r
                for r in await repo.requests(None, [RequestState.OPEN])
                if r.ballot_event_id and r.room_id and (room_ids is None or r.room_id in room_ids)
            ]
            known = {r.id: await repo.reaction_ids(r.id) for r in ballots}
        fixed = 0
        for req in ballots:
            assert req.room_id is not None
            assert req.ballot_event_id is not None
            raw = await self.gateway.reactions(req.room_id, req.ballot_event_id)
            if req.poll_event_id:
                raw += await self.gateway.relations(req.room_id, req.poll_event_id, "m.reference")
            events: list[InboundEvent] = []
            live: set[str] = set()
            for ev in raw:
                decoded = decode_event(
                    req.room_id, ev, self.settings.bot_user_id, self.settings.prefix
                )
                if isinstance(decoded, ReactionAdded):
                    live.add(decoded.event_id)
                    events.append(decoded)
                elif isinstance(decoded, PollResponse):
                    events.append(decoded)
            for reaction_id in known[req.id]:
                if reaction_id not in live:
                    # Missing from /relations: retract only on evidence of a redaction (a
                    # partial or lagging answer must not erase a live position).
                    redaction = await self.gateway.redaction_of(req.room_id, reaction_id)
                    if redaction is not None:
                        redaction_id, sender, ts = redaction
                        events.append(Redacted(req.room_id, redaction_id, sender, ts, reaction_id))
            result = await self.batches.apply_events(events, force=True)
            fixed += result.applied
        return fixed
