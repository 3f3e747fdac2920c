"""Batch apply: turns decoded Matrix events into recorded decisions, one batch at a time.

One sync batch is applied in one transaction together with its `next_batch` token. The first
attempt reads the batch's working set at once and holds its writes back (`storage.unit`);
when an event fails, the batch is rolled back and applied again with every event in its own
savepoint, so the failing one is set aside without stopping the loop. Event IDs make every
apply idempotent. Everything to send goes to the outbox in the same transaction; the outbox
sender sends it after the commit, and timers follow the database after the commit too.

Encrypted events whose key has not arrived are held here (and released by the sync loop
when it comes). The ballot use cases live in `bot.services.ballots`, commands in
`bot.services.handlers`, the room-opening sequence in `bot.services.opening`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.domain.counting import Redaction
from bot.domain.ledger import PositionInput, Source
from bot.domain.lifecycle import RequestState
from bot.domain.positions import Position, position_for_reaction
from bot.domain.ratelimit import REACTION_TIER
from bot.matrix import render
from bot.matrix.events import (
    CommandText,
    EncryptedMessage,
    EncryptionEnabled,
    InboundEvent,
    LeftRoom,
    PollResponse,
    ReactionAdded,
    Redacted,
    SyncBatch,
)
from bot.services.ballots import TAKES_INPUTS, tidy_purpose
from bot.services.clock import Clock
from bot.services.groups import Groups
from bot.services.outbox import Doorbell, Outbox, dm
from bot.services.plans import AfterCommit
from bot.services.publish import Publisher
from storage.backend import Backend
from storage.repo import HeldEvent, Repository
from storage.unit import BatchNeeds, BatchRepository

__all__ = ["SYNC_TOKEN", "BatchResult", "Batches"]

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


class Batches:
    """Applies sync batches (and reconciliation's events) and keeps the held encrypted
    events. Construction does no I/O."""

    def __init__(
        self,
        groups: Groups,
        db: Backend,
        clock: Clock,
        doorbell: Doorbell,
        publisher: Publisher | None = None,
    ) -> None:
        self.groups = groups
        # The bot-wide values (identical in every group's settings): the user ID, prefix,
        # keys, encryption, retention. Whatever a group owns is read from that group's.
        self.settings = groups.first.settings
        self.db = db
        self.clock = clock
        self.doorbell = doorbell
        self.publisher = publisher

    async def sync_token(self) -> str | None:
        """The `next_batch` token stored with the last applied batch (None: never synced)."""
        async with self.db.transaction() as tx:
            return await Repository(tx).get_meta(SYNC_TOKEN)

    async def apply_batch(self, batch: SyncBatch, *, force: bool = False) -> BatchResult:
        """Apply a sync batch and store its token, all in one transaction; then do what the
        batch planned for after its commit (timers, the public site, the digest)."""
        # Released held events are judged now, when their key arrived (every window: close,
        # contest, appeal); only a position on a ballot still open keeps its receipt time
        # (`Ballots.record_input`), so a late key neither loses it nor reorders it, and a
        # key held back past the close cannot choose a position afterwards.
        now = self.clock.now_ms()
        try:
            # Events almost never fail: apply the batch without a savepoint per event (two
            # statements each, two network round trips on PostgreSQL) ...
            result, plan = await self._apply_batch(batch, now, force, isolate=False)
        except _EventFailed:
            # ... and when one does, roll the whole batch back (its plan with it) and apply it
            # again with each event in its own savepoint, so only the failing one is set aside.
            result, plan = await self._apply_batch(batch, now, force, isolate=True)
        await plan.run(self.groups, self.publisher, self.doorbell)
        return result

    async def _apply_batch(
        self, batch: SyncBatch, now: int, force: bool, *, isolate: bool
    ) -> tuple[BatchResult, AfterCommit]:
        """One attempt at a batch, in one transaction and with one plan (see `apply_batch`);
        returns the plan, committed, for the caller to run."""
        result = BatchResult()
        plan = AfterCommit()
        async with self.db.transaction() as tx:
            # The first attempt reads each run of positions' working set at once and holds
            # its writes back (storage.unit); the isolating one goes event by event, since a
            # savepoint that rolls back must take the working set's changes with it.
            repo = Repository(tx) if isolate else BatchRepository(tx)
            out = Outbox(repo, now, plan)
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
            if plan.retally:
                await repo.mark_tally_dirty(sorted(plan.retally))
            for left in batch.left:
                await self._on_left(repo, out, left, now)
            if batch.next_batch:
                await repo.set_meta(SYNC_TOKEN, batch.next_batch)
            result.queued = out.queued
            result.republish = plan.republish
        return result, plan

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
        plan = AfterCommit()
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            out = Outbox(repo, now, plan)
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
        await plan.run(self.groups, self.publisher, self.doorbell)
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
        try:
            # What a rolled-back event planned is forgotten with its savepoint.
            with out.after.tentative():
                async with repo.tx.savepoint():
                    await self._dispatch(repo, out, event, now, received_at)
            result.applied += 1
        except Exception as exc:
            ref = secrets.token_hex(3)
            result.failed += 1
            result.refs.append(ref)
            log.exception("event %s in %s failed (ref %s)", event.event_id, event.room_id, ref)
            await repo.record_failure(
                event.event_id, event.room_id, ref, f"{type(exc).__name__}: {exc}"[:2000], now
            )
            if isinstance(event, CommandText):
                handlers = await self.groups.handlers_for(repo, event)
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
            handlers = await self.groups.handlers_for(repo, event)
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
        if await self.groups.insider(repo, event.sender):
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
            out.after.retally.add(req.id)
            if req.state is RequestState.DRAFTED:
                out.after.redraft.add(req.id)
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
