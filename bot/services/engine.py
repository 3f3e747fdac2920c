"""The engine: turns decoded Matrix events into recorded decisions, one batch at a time.

One sync batch is applied in one transaction together with its `next_batch` token, every
event inside its own savepoint so one failing event is set aside without stopping the loop.
Event IDs make every apply idempotent. Everything to send goes to the outbox in the same
transaction; the outbox sender sends it after the commit, and timers follow the database
after the commit too. The ballot use cases live in `bot.services.ballots`, commands in
`bot.services.handlers`, everything that happens at a time in `bot.services.calendar`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from bot.domain.clock_rules import zone
from bot.domain.counting import Redaction
from bot.domain.ledger import PositionInput, Source
from bot.domain.lifecycle import UNDECIDED, RequestState
from bot.domain.mxid import server_of
from bot.domain.positions import Position, position_for_reaction
from bot.domain.ratelimit import REACTION_TIER
from bot.matrix import render
from bot.matrix.decode import decode_event
from bot.matrix.events import (
    CommandText,
    EncryptedMessage,
    EncryptionEnabled,
    InboundEvent,
    Invite,
    LeftRoom,
    PollResponse,
    ReactionAdded,
    Redacted,
    SyncBatch,
)
from bot.matrix.gateway import Gateway, GatewayError
from bot.matrix.rooms import adoptable, allow_room_of, dm_initial_state, request_marker
from bot.services.ballots import TAKES_INPUTS, tidy_purpose
from bot.services.clock import Clock
from bot.services.groups import Groups, GroupServices
from bot.services.handlers import Handlers
from bot.services.outbox import CARD, DRAFT, INVITE_ABSENT, TALLY, TIDY, Doorbell, Outbox, dm
from bot.services.publish import Publisher
from bot.services.reach import on_absent, on_absent_failed
from storage.backend import Backend
from storage.repo import HeldEvent, OutboxItem, Repository
from storage.unit import BatchNeeds, BatchRepository

__all__ = ["SYNC_TOKEN", "BatchResult", "Engine"]

log = logging.getLogger(__name__)

SYNC_TOKEN = "sync_token"  # noqa: S105 - a meta key, not a secret


@dataclass(slots=True)
class BatchResult:
    """What one applied batch did (for logs, tests and the benchmarks)."""

    applied: int = 0
    duplicates: int = 0
    failed: int = 0
    queued: int = 0
    refs: list[str] = field(default_factory=list)
    republish: bool = False  # a decision changed: the public site is regenerated


# Encrypted events that may wait for their keys: per sender; and, for senders who are neither
# members nor chairs, per homeserver and per room together (so outsiders cannot fill the table
# with ciphertext nobody will ever give the bot a key for, nor crowd members out).
MAX_HELD_PER_SENDER = 200
MAX_HELD_PER_SERVER = 1_000
MAX_HELD_PER_ROOM = 2_000


class _EventFailed(Exception):
    """An event failed in a batch applied without savepoints: apply it again, isolated."""


class Engine:
    """Applies sync batches and serves the outbox sender's hooks. Construction does no I/O."""

    def __init__(
        self,
        groups: Groups,
        db: Backend,
        clock: Clock,
        doorbell: Doorbell,
        gateway: Gateway | None = None,
        publisher: Publisher | None = None,
    ) -> None:
        self.groups = groups
        # The bot-wide values (identical in every group's settings): the user ID, prefix,
        # keys, encryption, retention. Whatever a group owns is read from that group's.
        self.settings = groups.first.settings
        self.publisher = publisher
        self.db = db
        self.clock = clock
        self.doorbell = doorbell
        self.gateway = gateway

    # --- batches ----------------------------------------------------------------------

    async def apply_batch(self, batch: SyncBatch, *, force: bool = False) -> BatchResult:
        """Apply a sync batch and store its token, all in one transaction; then let the
        timers follow what was committed."""
        # Released held events are judged now, when their key arrived (every window: close,
        # contest, appeal); only a position on a ballot still open keeps its receipt time
        # (`Ballots.record_input`), so a late key neither loses it nor reorders it, and a
        # key held back past the close cannot choose a position afterwards.
        now = self.clock.now_ms()
        try:
            # Events almost never fail: apply the batch without a savepoint per event (two
            # statements each, two network round trips on PostgreSQL) ...
            result, reschedule = await self._apply_batch(batch, now, force, isolate=False)
        except _EventFailed:
            # ... and when one does, roll the whole batch back and apply it again with each
            # event in its own savepoint, so only the failing one is set aside.
            result, reschedule = await self._apply_batch(batch, now, force, isolate=True)
        await self._follow(reschedule)
        if result.republish and self.publisher is not None:
            await self.publisher.refresh()  # after the commit: the site shows what is stored
        return result

    async def _apply_batch(
        self, batch: SyncBatch, now: int, force: bool, *, isolate: bool
    ) -> tuple[BatchResult, set[int]]:
        """One attempt at a batch, in one transaction (see `apply_batch`)."""
        result = BatchResult()
        async with self.db.transaction() as tx:
            # The first attempt reads each run of positions' working set at once and holds
            # its writes back (storage.unit); the isolating one goes event by event, since a
            # savepoint that rolls back must take the working set's changes with it.
            repo = Repository(tx) if isolate else BatchRepository(tx)
            out = Outbox(repo, now)
            # One query per 500 events for what was applied before, one `executemany` to
            # mark this batch.
            seen = await repo.seen_among([e.event_id for e in batch.events])
            applied: list[tuple[str, str]] = []
            for index, event in enumerate(batch.events):
                if isinstance(repo, BatchRepository) and not repo.loaded:
                    await repo.preload(_needs(batch.events[index:], seen, force))
                await self._apply_one(
                    repo,
                    out,
                    event,
                    now,
                    result,
                    seen,
                    force=force,
                    isolate=isolate,
                    received_at=batch.received_at,
                )
                if self._held(event):
                    continue  # not applied: its decrypted self comes under the same ID
                if event.event_id not in seen:
                    seen.add(event.event_id)
                    applied.append((event.event_id, event.room_id))
            if isinstance(repo, BatchRepository):
                repo.invalidate()  # the redraft and the rest read what was written
            await repo.mark_processed_many(applied, now)
            if batch.released:
                await repo.release_held(batch.released)
            for group in self.groups:
                await group.ballots.redraft(repo, out)
            # The live tallies are edited by a periodic job (calendar), off this path: a batch
            # only marks them, so a burst costs one statement, not a recount per ballot.
            if out.retally:
                await repo.mark_tally_dirty(sorted(out.retally))
            for left in batch.left:
                await self._on_left(repo, out, left, now)
            if batch.next_batch:
                await repo.set_meta(SYNC_TOKEN, batch.next_batch)
            result.queued = out.queued
            result.republish = out.republish
            reschedule = set(out.reschedule)
        return result, reschedule

    async def apply_events(self, events: list[InboundEvent], *, force: bool = False) -> BatchResult:
        """Apply events outside a sync (reconciliation), idempotently.

        With `force`, events seen before are applied again: reconciliation re-reads
        reactions and poll answers that may have been passed over (e.g. one that arrived
        before its ballot's ID was stored); the ledger's event IDs keep that idempotent.
        """
        batch = SyncBatch(next_batch="", events=events)
        return await self.apply_batch(batch, force=force)

    async def held(self) -> list[HeldEvent]:
        """Encrypted events waiting for their keys, oldest receipt first (the first 1,000)."""
        async with self.db.transaction() as tx:
            return await Repository(tx).held_events()

    async def held_sessions(self) -> list[tuple[str, str, str]]:
        """(room ID, sender key, session ID) of the Megolm sessions held events wait for."""
        async with self.db.transaction() as tx:
            return await Repository(tx).held_sessions()

    async def held_in_sessions(self, sessions: list[tuple[str, str, str]]) -> list[HeldEvent]:
        """The held events of these sessions (and the oldest few without one), oldest first."""
        async with self.db.transaction() as tx:
            return await Repository(tx).held_in_sessions(sessions)

    async def tell_unreadable(self) -> int:
        """Tell, once, the senders of encrypted messages that stayed unreadable longer than
        `undecryptable_notice_ms`; returns how many senders were told."""
        now = self.clock.now_ms()
        cutoff = now - self.settings.undecryptable_notice_ms
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            out = Outbox(repo, now)
            due = await repo.held_due_notice(cutoff)
            told: set[tuple[str, str]] = set()
            for held in due:
                if (held.room_id, held.sender) in told:
                    continue
                told.add((held.room_id, held.sender))
                lang = self.settings.lang
                text = lang._(
                    "%(user)s: I could not read your encrypted message of %(when)s: its key was "
                    "not shared with my device. If your app only shares keys with verified "
                    "devices, allow this bot's device (it is cross-signed), then send the "
                    "message again.",
                    user=held.sender,
                    when=lang.when(held.received_at, self.settings.group_tz),
                )
                await out.message(
                    render.notice("reply", None, text, (held.sender,), lang, event="unreadable"),
                    room_id=held.room_id,
                )
            await repo.mark_held_notified([h.event_id for h in due], now)
        if told:
            self.doorbell.ring()
        return len(told)

    async def unseen(self, event_ids: list[str]) -> set[str]:
        """Which of these events were never applied."""
        async with self.db.transaction() as tx:
            return set(event_ids) - await Repository(tx).seen_among(event_ids)

    async def _apply_one(
        self,
        repo: Repository,
        out: Outbox,
        event: InboundEvent,
        now: int,
        result: BatchResult,
        seen: set[str],
        *,
        force: bool = False,
        isolate: bool = True,
        received_at: int | None = None,
    ) -> None:
        idempotent = isinstance(event, ReactionAdded | Redacted | PollResponse)
        if not (force and idempotent) and event.event_id in seen:
            result.duplicates += 1
            return
        if not isolate:
            try:
                await self._dispatch(repo, out, event, now, received_at)
            except Exception as exc:
                raise _EventFailed from exc
            result.applied += 1
            return
        # What a rolled-back event planned for after the commit must be forgotten with it.
        plans = (set(out.reschedule), set(out.redraft), out.republish)
        try:
            async with repo.tx.savepoint():
                await self._dispatch(repo, out, event, now, received_at)
            result.applied += 1
        except Exception as exc:
            out.reschedule, out.redraft, out.republish = plans
            ref = secrets.token_hex(3)
            result.failed += 1
            result.refs.append(ref)
            log.exception("event %s in %s failed (ref %s)", event.event_id, event.room_id, ref)
            await repo.record_failure(
                event.event_id, event.room_id, ref, f"{type(exc).__name__}: {exc}"[:2000], now
            )
            if isinstance(event, CommandText):
                handlers = await self._handlers_for(repo, event)
                await (handlers or self.groups.first.handlers).went_wrong(repo, out, event, ref)

    async def _dispatch(
        self,
        repo: Repository,
        out: Outbox,
        event: InboundEvent,
        now: int,
        received_at: int | None = None,
    ) -> None:
        """Apply one event at `now`; `received_at`: when a released held event was received."""
        if isinstance(event, ReactionAdded):
            await self._on_reaction(repo, out, event, now, received_at)
        elif isinstance(event, Redacted):
            await self._on_redaction(repo, out, event, now)
        elif isinstance(event, CommandText):
            handlers = await self._handlers_for(repo, event)
            await (handlers or self.groups.first.handlers).handle(
                repo, out, event, now, received_at=received_at, unsure=handlers is None
            )
        elif isinstance(event, PollResponse):
            await self._on_poll_response(repo, out, event, now, received_at)
        elif isinstance(event, EncryptedMessage):
            await self._on_encrypted(repo, out, event, now)
        elif isinstance(event, EncryptionEnabled) and not self.settings.encrypts:
            req = await repo.request_by_room(event.room_id)
            if req is not None:
                why = f"{event.sender} switched on encryption"
                await self.groups.of(req).ballots.block(repo, out, req, why, now)

    # --- positions --------------------------------------------------------------------

    async def _on_reaction(
        self,
        repo: Repository,
        out: Outbox,
        event: ReactionAdded,
        now: int,
        received_at: int | None = None,
    ) -> None:
        req = await repo.request_by_ballot(event.relates_to)
        if req is None or req.room_id != event.room_id or req.state not in TAKES_INPUTS:
            return
        position = position_for_reaction(event.key)
        if position is None or position is Position.RECUSE:
            return
        item = PositionInput(
            event.event_id,
            event.sender,
            position,
            event.ts,
            Source.REACTION,
            room_id=event.room_id,
        )
        # Reactions are limited per sender like commands. One past the limit still counts
        # (the tally must match the ballot) but is not answered: no prompt for a reason.
        group = self.groups.of(req)
        limiter = group.handlers.limiter
        admitted = limiter.check(f"reaction:{event.sender}", REACTION_TIER, now).admitted
        await group.ballots.record_input(
            repo,
            out,
            req,
            item,
            now,
            ask_reason_in_reply_to=event.event_id,
            received_at=received_at,
            quiet=not admitted,
        )

    def _held(self, event: InboundEvent) -> bool:
        """Whether an event is an encrypted one kept until its key arrives."""
        return isinstance(event, EncryptedMessage) and self.settings.encrypts

    async def _on_encrypted(
        self, repo: Repository, out: Outbox, event: EncryptedMessage, now: int
    ) -> None:
        """With encryption on: keep the event until its key arrives (see `held`).

        With encryption off: say once per room that the bot cannot read encrypted messages,
        and open an unencrypted direct chat where the sender can use its commands."""
        if self.settings.encrypts:
            full = await self._held_full(repo, event)
            if full:
                # Unreadable events cost space until their key comes: nobody can fill the
                # disk with ciphertext nobody will ever give the bot a key for.
                log.warning("encrypted event %s not kept: too many held %s", event.event_id, full)
                return
            await repo.hold_event(
                event.event_id,
                event.room_id,
                event.sender,
                event.ts,
                now,
                event.raw,
                event.sender_key,
                event.session_id,
            )
            return
        key = f"encrypted_notice:{event.room_id}"
        if await repo.get_meta(key) is not None:
            return
        await repo.set_meta(key, str(now))
        await repo.forget_dm_room(event.room_id)  # the welcome must go to a readable chat
        prefix = self.settings.prefix
        lang = self.settings.language(await repo.language(event.sender))
        text = lang._(
            "%(user)s: I cannot read encrypted messages. Send me commands in a chat without "
            "encryption: I have opened one with you. Try %(command)s there.",
            user=event.sender,
            command=f"{prefix} help",
        )
        await out.message(
            render.notice("reply", None, text, (event.sender,), lang, event="encrypted"),
            room_id=event.room_id,
        )
        welcome = lang._(
            "Hello! Send me commands here (this chat is not encrypted). Try %(command)s.",
            command=f"{prefix} help",
        )
        await out.message(render.notice("reply", None, welcome, (), lang), room_id=dm(event.sender))

    async def _held_full(self, repo: Repository, event: EncryptedMessage) -> str:
        """Which cap holding this event would exceed ("" when none): per sender for
        everyone; per homeserver and per room for senders who are neither members nor
        chairs, so outsiders together cannot crowd members' events out."""
        by_sender, by_room, by_server = await repo.held_counts(event.sender, event.room_id)
        if by_sender >= MAX_HELD_PER_SENDER:
            return "from its sender"
        if await self._insider(repo, event.sender):
            return ""
        if by_server >= MAX_HELD_PER_SERVER:
            return "from its homeserver"
        if by_room >= MAX_HELD_PER_ROOM:
            return "in its room"
        return ""

    async def _on_poll_response(
        self,
        repo: Repository,
        out: Outbox,
        event: PollResponse,
        now: int,
        received_at: int | None = None,
    ) -> None:
        req = await repo.request_by_poll(event.poll_id)
        if req is None or req.room_id != event.room_id or req.state not in TAKES_INPUTS:
            return
        position: Position | None = None
        if event.answers:
            try:
                position = Position(event.answers[0])
            except ValueError:
                return  # not one of our answers
            if position is Position.RECUSE:
                return
        item = PositionInput(
            event.event_id, event.sender, position, event.ts, Source.POLL, room_id=event.room_id
        )
        await self.groups.of(req).ballots.record_input(
            repo, out, req, item, now, received_at=received_at
        )

    async def _on_redaction(self, repo: Repository, out: Outbox, event: Redacted, now: int) -> None:
        """Store every redaction (the rule decides which retract a position), then let the
        author's objection follow."""
        redaction = Redaction(
            event.event_id, event.redacts, event.room_id, event.sender, event.ts, now
        )
        await repo.add_redaction(redaction)
        found = await repo.input_by_event(event.redacts)
        if found is None:
            return  # not a position (or not seen yet: the stored redaction waits for it)
        request_id, item = found
        req = await repo.request(request_id)
        if req is None or req.state not in (RequestState.OPEN, RequestState.DRAFTED):
            return  # a decided request's record is frozen; a reopen recounts
        ballots = self.groups.of(req).ballots
        tally = ballots.tally(req, await repo.member_rows(req.id, item.member))
        if redaction.redacts in tally.retracted_by:
            out.retally.add(req.id)
            if req.state is RequestState.DRAFTED:
                out.redraft.add(req.id)
        await ballots.follow_objection(repo, out, req, item.member, now)

    async def _on_left(self, repo: Repository, out: Outbox, left: LeftRoom, now: int) -> None:
        req = await repo.request_by_room(left.room_id)
        if req is None or req.state in (RequestState.DECIDED, RequestState.BLOCKED):
            return
        how = "banned" if left.membership == "ban" else "removed"
        who = f" by {left.by}" if left.by and left.by != self.settings.bot_user_id else ""
        if left.by == self.settings.bot_user_id:
            return  # we left on purpose
        why = f"the bot was {how} from its room{who}"
        await self.groups.of(req).ballots.block(repo, out, req, why, now)

    # --- invites ----------------------------------------------------------------------

    # --- groups -------------------------------------------------------------------------

    async def _follow(self, request_ids: set[int]) -> None:
        """After a commit: each group's calendar follows its own of these requests."""
        for group in self.groups:
            await group.calendar.follow(request_ids)

    async def _group_of(self, repo: Repository, request_id: int) -> GroupServices:
        """The group of a stored request (the first when it is gone)."""
        req = await repo.request(request_id)
        return self.groups.first if req is None else self.groups.of(req)

    def _chair_anywhere(self, user_id: str) -> bool:
        """Whether this user chairs any of the groups."""
        return any(user_id in g.settings.chairs for g in self.groups)

    async def _insider(self, repo: Repository, user_id: str) -> bool:
        """A chair or an active member of any group: not an outsider."""
        return self._chair_anywhere(user_id) or bool(await repo.groups_of(user_id))

    async def _handlers_for(self, repo: Repository, event: CommandText) -> Handlers | None:
        """The handlers of the group a command is about: the group whose main room or
        request room it was sent in; in a direct chat (or a room of no group) the group the
        chat was said to be about, else the sender's only group. None: ask which."""
        group = self.groups.by_main_room(event.room_id)
        if group is not None:
            return group.handlers
        req = await repo.request_by_room(event.room_id)
        if req is not None:
            return self.groups.of(req).handlers
        if len(self.groups) == 1:
            return self.groups.first.handlers
        chosen = await repo.dm_group(event.room_id)
        group = None if chosen is None else self.groups.get(chosen)
        if group is not None:
            return group.handlers
        mine = {g for g in await repo.groups_of(event.sender) if self.groups.get(g)}
        mine |= {g.group_id for g in self.groups if event.sender in g.settings.chairs}
        if len(mine) == 1:
            only = self.groups.get(mine.pop())
            assert only is not None
            return only.handlers
        return None

    async def should_accept(self, invite: Invite) -> bool:
        """Accept invites from chairs and allowed inviters, and direct chats from members
        (from anyone when self-application is on)."""
        s = self.settings
        if self.groups.by_main_room(invite.room_id) is not None:
            return True
        inviter = invite.inviter
        if inviter is None:
            return False
        if self._chair_anywhere(inviter) or inviter in s.allowed_inviters:
            return True
        if invite.is_direct:
            async with self.db.transaction() as tx:
                repo = Repository(tx)
                if await repo.groups_of(inviter):
                    return True
                if not s.self_apply:
                    return False
                # An outsider's: each server's outsiders share a bounded number of direct
                # chats (one server can mint any number of users); an outsider's own older
                # chat does not count, it is left when this one is joined (`remember_dm`).
                taken = await repo.outsider_dm_count(server_of(inviter), but=inviter)
            if taken >= s.dm_rooms_per_server:
                log.info("refusing a direct chat from %s: its server is at the cap", inviter)
                return False
            return True
        return False

    # --- outbox hooks -----------------------------------------------------------------

    async def on_sent(self, repo: Repository, item: OutboxItem, result: str, now: int) -> None:
        """Record what a sent operation produced."""
        out = Outbox(repo, now)
        if item.op == "create_room" and item.request_id is not None:
            invited = frozenset(item.payload.get("invite", []))
            allow = allow_room_of(item.payload)
            ballots = (await self._group_of(repo, item.request_id)).ballots
            await ballots.room_ready(repo, out, item.request_id, result, now, invited, allow)
        elif item.op == INVITE_ABSENT and item.request_id is not None:
            settings = (await self._group_of(repo, item.request_id)).settings
            await on_absent(repo, out, settings, item, result)
        elif item.purpose == "ballot" and item.request_id is not None:
            await repo.update_request(item.request_id, ballot_event_id=result)
        elif item.op == "redact" and item.target and item.request_id is not None:
            # The bot's tidying of a superseded reaction: stored as it is sent (the sync
            # skips the bot's own events), so the rule knows it can never count again.
            req = await repo.request(item.request_id)
            if req is not None and req.room_id:
                bot = self.settings.bot_user_id
                await repo.add_redaction(Redaction(result, item.target, req.room_id, bot, now, now))
                if item.purpose is not None and item.purpose.startswith(TIDY):
                    member = item.purpose.removeprefix(TIDY)
                    await self.groups.of(req).ballots.tidied(repo, out, req, member)
        elif item.purpose == DRAFT and item.request_id is not None:
            await repo.update_request(item.request_id, draft_event_id=result)
        elif item.purpose == CARD and item.request_id is not None:
            await repo.update_request(item.request_id, card_event_id=result)
        elif item.purpose == TALLY and item.request_id is not None:
            await repo.update_request(item.request_id, tally_event_id=result)
            req = await repo.request(item.request_id)
            if req is not None and req.room_id:
                await out.state(req.room_id, "m.room.pinned_events", "", {"pinned": [result]})
        elif item.purpose == "poll" and item.request_id is not None:
            await repo.update_request(item.request_id, poll_event_id=result)

    async def after_sent(self, item: OutboxItem) -> None:
        """After a room was made: schedule its ballot. After a ballot or poll went out: read
        back anything that raced its ID being stored."""
        if item.op == "create_room" and item.request_id is not None:
            await self._follow({item.request_id})
        if item.purpose not in ("ballot", "poll") or item.request_id is None:
            return
        async with self.db.transaction() as tx:
            req = await Repository(tx).request(item.request_id)
        if req is None or req.room_id is None:
            return
        try:
            await self.reconcile({req.room_id})
        except GatewayError as exc:
            log.warning("could not re-read the new ballot of #%d: %s", req.id, exc)

    async def on_failed(self, repo: Repository, item: OutboxItem, error: str, now: int) -> None:
        """An operation failed for good: a request whose room cannot be made is blocked."""
        if item.op == INVITE_ABSENT and item.request_id is not None:
            await on_absent_failed(Outbox(repo, now), item)
        if item.op == "create_room" and item.request_id is not None:
            req = await repo.request(item.request_id)
            if req is not None:
                why = "its room could not be created"
                await self.groups.of(req).ballots.block(repo, Outbox(repo, now), req, why, now)

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
            return await self.groups.of(req).ballots.tidy_target(repo, req, member, item.target)

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

    async def remember_dm(self, user_id: str, room_id: str) -> list[str]:
        """A user opened a direct chat with the bot: use it for their reminders.

        An outsider (not a chair, not an active member) keeps one direct chat: the older
        ones are forgotten and returned, for the caller to leave."""
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            await repo.set_dm_room(user_id, room_id, self.clock.now_ms())
            if await self._insider(repo, user_id):
                return []
            older = [r for r in await repo.dm_rooms_of(user_id) if r != room_id]
            for old in older:
                await repo.forget_dm_room(old)
        return older

    async def prune_dm_rooms(self, limit: int = 500) -> list[str]:
        """Forget direct chats with outsiders that nobody uses, and return them to be left:
        made longer than `storage.retention` ago, no command in them within it (the events
        applied are kept that long), and no request of the user's undecided or decided within
        it (they may still appeal, and are told the answer there)."""
        before = self.clock.now_ms() - self.settings.retention_ms
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            idle = await repo.idle_outsider_dms(before, UNDECIDED, limit)
            idle = [(room, user) for room, user in idle if not self._chair_anywhere(user)]
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
        await self._follow(reschedule)
        return sum(1 for tz in found.values() if tz)

    # --- reconciliation ---------------------------------------------------------------

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
            result = await self.apply_events(events, force=True)
            fixed += result.applied
        return fixed


def _needs(events: Sequence[InboundEvent], seen: set[str], force: bool) -> BatchNeeds:
    """What applying `events` will ask the database (storage.unit preloads it)."""
    ballots: set[str] = set()
    polls: set[str] = set()
    inputs: set[str] = set()
    redactions: set[str] = set()
    senders: set[str] = set()
    rooms: set[str] = set()
    asks: set[tuple[str, str, str]] = set()
    for event in events:
        if event.event_id in seen and not force:
            continue
        senders.add(event.sender)
        rooms.add(event.room_id)
        if isinstance(event, ReactionAdded):
            ballots.add(event.relates_to)
            inputs.add(event.event_id)
            asks.add(("ballot", event.relates_to, event.sender))
        elif isinstance(event, PollResponse):
            polls.add(event.poll_id)
            inputs.add(event.event_id)
            asks.add(("poll", event.poll_id, event.sender))
        elif isinstance(event, Redacted):
            redactions.add(event.event_id)
            inputs.add(event.redacts)
        elif isinstance(event, CommandText):
            inputs.add(event.event_id)  # a position by command is an input under its ID
            asks.add(("room", event.room_id, event.sender))
    return BatchNeeds(
        frozenset(ballots),
        frozenset(polls),
        frozenset(inputs),
        frozenset(redactions),
        frozenset(senders),
        frozenset(rooms),
        frozenset(asks),
        frozenset(tidy_purpose(sender) for sender in senders),  # what `Ballots._tidy` asks
    )
