"""Opening a request's room: one sequence, from the queued room to the open ballot.

1. `queue_room` (a request was filed, or accepted from triage): the room's `create_room` is
   queued with up to ten invitees (`Ballots.file_request`, `Ballots.accept`).
2. The outbox sender creates it. A create that failed after the server made the room, or a
   crash in between, adopts that room instead of making a second one (`find_created_room`,
   by the bot's marker and the bot's own `m.room.create`).
3. `room_ready` (the room's ID is recorded): the ballot opens; the card, the ballot, its
   poll, the live tally and the announcement are queued, and the members invited (in a
   restricted room only who cannot join it alone).
4. In a restricted room, who is missing from the allow room is read when sent
   (`INVITE_ABSENT`) and invited (`bot.services.reach.on_absent`).
5. The ballot, poll, card and tally event IDs are stored as they are sent (`recorded`); the
   tally is pinned.
6. After the commit: the ballot's timers start (the plan `room_ready` made, run by the
   hooks), and its reactions are read back once (any that raced its ID being stored:
   `after_sent`).

A room that can never be created blocks the request (`failed`). Steps 2-6 run in the outbox
sender's hooks (`bot.services.hooks`). This module depends only on what it uses of the
ballots and the reconciliation (the protocols below), so the ballots can queue step 1
without an import cycle.
"""

from __future__ import annotations

import logging
from typing import Protocol
from urllib.parse import quote

from bot.domain.lifecycle import Action, RequestState, transition
from bot.domain.request import Request
from bot.matrix import render
from bot.matrix.gateway import Gateway, GatewayError
from bot.matrix.rooms import (
    CREATE_ROOM_INVITES,
    POLL_START,
    adoptable,
    allow_room_of,
    request_marker,
    request_room_spec,
)
from bot.services.outbox import CARD, INVITE_ABSENT, TALLY, Outbox
from bot.services.reach import (
    invite_to_restricted,
    must_invite,
    on_absent,
    on_absent_failed,
    tell_applicant,
)
from bot.services.settings import Settings
from storage.backend import Backend
from storage.repo import OutboxItem, Repository

log = logging.getLogger(__name__)

BALLOT_PURPOSE = "ballot"
POLL_PURPOSE = "poll"


class BallotDesk(Protocol):
    """What the opening needs of the ballots (`bot.services.ballots.Ballots`)."""

    async def live_tally(self, repo: Repository, req: Request, now: int) -> render.Message:
        """The ballot's live tally as it stands."""
        ...

    async def block(self, repo: Repository, out: Outbox, req: Request, why: str, now: int) -> None:
        """Stop a request whose room the bot cannot control, and tell the chairs."""
        ...


class Reconciles(Protocol):
    """What the opening needs of the reconciliation: read open ballots back."""

    async def reconcile(self, room_ids: set[str] | None = None) -> int:
        """Re-read these rooms' open ballots and apply what was missed."""
        ...


# --- 1. the room is queued ---------------------------------------------------------------


async def queue_room(repo: Repository, out: Outbox, settings: Settings, req: Request) -> None:
    """Queue the creation of a request's room (step 1)."""
    spec = room_spec(settings, req)
    # Invites cost one rate-limited request each; createRoom takes up to ten at once.
    roster = await repo.active_members(req.group_id)
    people = {m.user_id for m in roster} | set(settings.chairs)
    if settings.allow_room:  # restricted: the rest join by themselves
        people = {p for p in people if must_invite(p, settings)}
    spec["invite"] = sorted(people - {settings.bot_user_id})[:CREATE_ROOM_INVITES]
    await out.create_room(req.id, spec)


def room_spec(settings: Settings, req: Request) -> dict[str, object]:
    """The request room's name, topic, state and power levels."""
    s = settings
    return request_room_spec(
        name=render.inline(render.title(req, s.lang), 200),
        topic=s.lang._(
            "%(group)s: participation request #%(id)s. React to the ballot or use %(help)s.",
            group=s.group_name,
            id=req.number,
            help=f"{s.prefix} help",
        ),
        marker=request_marker(s.marker_key, req.id),
        chairs=s.chairs,
        bot_user_id=s.bot_user_id,
        bot_needs_power_entry=s.bot_needs_power_entry,
        space_id=s.space_id,
        server_name=s.server_name,
        encrypted=s.encrypts,
        allow_room=s.allow_room,
    )


class RoomOpening:
    """Steps 2-6 of the sequence (see the module). Construction does no I/O."""

    def __init__(
        self,
        settings: Settings,
        db: Backend,
        ballots: BallotDesk,
        reconciler: Reconciles,
        gateway: Gateway | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.ballots = ballots
        self.reconciler = reconciler
        self.gateway = gateway

    # --- 2. the room is created, or one made before a crash adopted ------------------------

    async def find_created_room(self, item: OutboxItem) -> str | None:
        """Find a room created for this request before a crash: one the bot created (its
        `m.room.create`) carrying the bot's marker with the request's secret token. A copied
        marker, or a room someone else created, is never adopted."""
        if self.gateway is None or item.request_id is None:
            return None
        marker = request_marker(self.settings.marker_key, item.request_id)
        for room_id in await self.gateway.joined_rooms():
            try:
                state = await self.gateway.raw(
                    "GET", f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/state"
                )
            except GatewayError as exc:
                if exc.transient:
                    raise  # search again later rather than create a duplicate
                continue
            if isinstance(state, list) and adoptable(state, self.settings.bot_user_id, marker):
                log.info("adopting room %s created before a restart", room_id)
                return room_id
        return None

    # --- 3-5. what was sent is recorded ----------------------------------------------------

    async def recorded(
        self, repo: Repository, out: Outbox, item: OutboxItem, result: str, now: int
    ) -> bool:
        """Record what a sent step of the opening produced; False for an item that is not
        one (the caller records those)."""
        request_id = item.request_id
        if request_id is None:
            return False
        if item.op == "create_room":
            invited = frozenset(item.payload.get("invite", []))
            allow = allow_room_of(item.payload)
            await self.room_ready(repo, out, request_id, result, now, invited, allow)
        elif item.op == INVITE_ABSENT:
            await on_absent(repo, out, self.settings, item, result)
        elif item.purpose == BALLOT_PURPOSE:
            await repo.update_request(request_id, ballot_event_id=result)
        elif item.purpose == POLL_PURPOSE:
            await repo.update_request(request_id, poll_event_id=result)
        elif item.purpose == CARD:
            await repo.update_request(request_id, card_event_id=result)
        elif item.purpose == TALLY:
            await repo.update_request(request_id, tally_event_id=result)
            req = await repo.request(request_id)
            if req is not None and req.room_id:
                await out.state(req.room_id, "m.room.pinned_events", "", {"pinned": [result]})
        else:
            return False
        return True

    async def room_ready(
        self,
        repo: Repository,
        out: Outbox,
        request_id: int,
        room_id: str,
        now: int,
        invited: frozenset[str] = frozenset(),
        allow_room: str | None = None,
    ) -> None:
        """The request's room exists: open the ballot, post the card and invite everyone
        (or, in a room restricted to `allow_room`'s members, only who cannot join it)."""
        req = await repo.request(request_id)
        if req is None or req.state is not RequestState.PENDING:
            return
        state = transition(req.state, Action.ROOM_READY)
        await repo.update_request(request_id, state=state, room_id=room_id, opened_at=now)
        await repo.snapshot_eligible(request_id)
        req = await repo.request(request_id)
        assert req is not None
        s = self.settings
        tz = s.group_tz
        lang = s.lang
        await out.message(render.request_card(req, now, tz, lang), request_id=req.id, purpose=CARD)
        await out.message(
            render.ballot(req, s.prefix, tz, now, lang),
            request_id=req.id,
            purpose=BALLOT_PURPOSE,
        )
        # No reactions are seeded on the ballot: every counter a member sees is a real one.
        # The same ballot as a native poll, for clients that show polls: one ledger for all
        # (undisclosed, so the client shows no second count before the close).
        await out.event(
            POLL_START, render.poll_start(req, lang), request_id=req.id, purpose=POLL_PURPOSE
        )
        tally = await self.ballots.live_tally(repo, req, now)
        await out.message(tally, request_id=req.id, purpose=TALLY)
        if s.space_id:
            await out.state(s.space_id, "m.space.child", room_id, {"via": [s.server_name]})
        invitees = {v.user_id for v in await repo.voters(req.id)} | set(s.chairs)
        if allow_room:
            await invite_to_restricted(out, s, req.id, invitees, invited, allow_room)
        else:
            for user_id in sorted(invitees - {s.bot_user_id} - invited):
                await out.invite(user_id, request_id=req.id)
        await out.message(
            render.announcement(req, tz, now, via=s.server_name, lang=lang),
            room_id=s.main_room_id,
            request_id=req.id,
        )
        if req.applicant.user_id:
            applicant = s.language(await repo.language(req.applicant.user_id))
            await tell_applicant(
                out,
                req,
                applicant._(
                    "Your request to join %(group)s (#%(id)s) is now in front of the members, "
                    "until %(when)s. They may ask you questions through me; you will hear the "
                    "outcome from me, with the chair's rationale.",
                    group=s.group_name,
                    id=req.number,
                    when=applicant.when(req.deadline_at, tz, now_ms=now),
                ),
                "opened",
                applicant,
            )
        out.after.schedule_changed(req.id)

    # --- 6. after the commit ---------------------------------------------------------------

    async def after_sent(self, item: OutboxItem) -> None:
        """After a ballot or poll went out and its ID is stored: read back anything that
        raced that ID being stored."""
        if item.purpose not in (BALLOT_PURPOSE, POLL_PURPOSE) or item.request_id is None:
            return
        async with self.db.transaction() as tx:
            req = await Repository(tx).request(item.request_id)
        if req is None or req.room_id is None:
            return
        try:
            await self.reconciler.reconcile({req.room_id})
        except GatewayError as exc:
            log.warning("could not re-read the new ballot of #%d: %s", req.id, exc)

    # --- a step failed for good ------------------------------------------------------------

    async def failed(self, repo: Repository, out: Outbox, item: OutboxItem, now: int) -> None:
        """A step failed for good: without the allow room's members everyone is invited; a
        request whose room cannot be made is blocked."""
        if item.op == INVITE_ABSENT and item.request_id is not None:
            await on_absent_failed(out, item)
        if item.op == "create_room" and item.request_id is not None:
            req = await repo.request(item.request_id)
            if req is not None:
                await self.ballots.block(repo, out, req, "its room could not be created", now)
