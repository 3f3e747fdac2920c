"""The engine: turns decoded Matrix events and timer wake-ups into recorded decisions.

One sync batch is applied in one transaction together with its `next_batch` token, every
event inside its own savepoint so one failing event is set aside without stopping the loop.
Event IDs make every apply idempotent. Everything to send goes to the outbox in the same
transaction; the outbox sender sends it after the commit.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from bot.domain.clock_rules import zone
from bot.domain.hums import Hum, Side, Strength, hum_report
from bot.domain.ledger import PositionInput, Source, current_input
from bot.domain.lifecycle import Action, LifecycleError, Outcome, RequestState, transition
from bot.domain.objections import ObjectionState
from bot.domain.positions import LEGEND, Position, position_for_reaction
from bot.domain.request import Applicant, Request
from bot.domain.sense import Sense, determine
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
from bot.services.calendar import Calendar
from bot.services.clock import Clock
from bot.services.deadlines import Timers
from bot.services.outbox import BALLOT, POLL, Outbox, dm
from storage.database import Database
from storage.repo import OutboxItem, Repository

log = logging.getLogger(__name__)

REQUEST_STATE_TYPE = "org.consensus_bot.request"  # marks a room as a request's room
DM_STATE_TYPE = "org.consensus_bot.dm"  # marks the bot's direct chat with a user
POLL_START = "org.matrix.msc3381.poll.start"
CREATE_ROOM_INVITES = 10  # Synapse refuses createRoom with more invitees
POLL_END = "org.matrix.msc3381.poll.end"
SYNC_TOKEN = "sync_token"  # noqa: S105 - a meta key, not a secret


@dataclass(frozen=True, slots=True)
class Settings:
    """What the engine needs to know, resolved from the config (and the server) at start."""

    bot_user_id: str
    prefix: str
    main_room_id: str
    group_name: str
    chairs: frozenset[str]
    allowed_inviters: frozenset[str] = frozenset()
    self_apply: bool = True
    deadline_ms: int = 14 * 86_400_000
    min_deadline_ms: int = 72 * 3_600_000
    quorum: float = 0.5
    instance_id: str = "dev"
    bot_needs_power_entry: bool = False  # room versions before 12 do not privilege creators
    reminders_ms: tuple[int, ...] = ()
    group_tz: str = "UTC"
    space_id: str | None = None
    server_name: str = ""
    digest_cron: dict[str, str] | None = None
    hum_key: bytes = b"dev"
    appeal_window_ms: int | None = None


@dataclass(slots=True)
class BatchResult:
    """What one applied batch did (for logs, tests and the benchmarks)."""

    applied: int = 0
    duplicates: int = 0
    failed: int = 0
    queued: int = 0
    refs: list[str] = field(default_factory=list)


def _takes_inputs(req: Request) -> bool:
    """Positions are recorded for ballots that have been opened and not blocked."""
    return req.state in (RequestState.OPEN, RequestState.DRAFTED, RequestState.DECIDED)


class Engine:
    """Use cases of the bot. Construction does no I/O."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: Clock,
        gateway: Gateway | None = None,
        timers: Timers | None = None,
    ) -> None:
        from bot.services.handlers import Handlers  # handlers call back into the engine

        self.settings = settings
        self.db = db
        self.clock = clock
        self.gateway = gateway
        self.timers = timers
        self.handlers = Handlers(self)
        self.calendar = Calendar(self)
        self._redraft: set[int] = set()  # drafts to post again at the end of this batch

    on_queued: Any = None  # set by the app: wakes the outbox sender

    def wake(self) -> None:
        """Something was queued outside a sync batch: wake the outbox sender."""
        if self.on_queued is not None:
            self.on_queued()

    # --- batches ----------------------------------------------------------------------

    async def apply_batch(self, batch: SyncBatch, *, force: bool = False) -> BatchResult:
        """Apply a sync batch and store its token, all in one transaction."""
        now = self.clock.now_ms()
        result = BatchResult()
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            out = Outbox(repo, now)
            self._redraft = set()
            # One query for what was applied before, one statement to mark this batch.
            seen = await repo.seen_among([e.event_id for e in batch.events])
            applied: list[tuple[str, str]] = []
            for event in batch.events:
                await self._apply_one(repo, out, event, now, result, seen, force=force)
                if event.event_id not in seen:
                    seen.add(event.event_id)
                    applied.append((event.event_id, event.room_id))
            await repo.mark_processed_many(applied, now)
            for request_id in sorted(self._redraft):
                late = await repo.request(request_id)
                if late is not None and late.state is RequestState.DRAFTED:
                    await self.post_draft(repo, out, late)
            for left in batch.left:
                await self._on_left(repo, out, left, now)
            if batch.next_batch:
                await repo.set_meta(SYNC_TOKEN, batch.next_batch)
            result.queued = out.queued
        return result

    async def apply_events(self, events: list[InboundEvent], *, force: bool = False) -> BatchResult:
        """Apply events outside a sync (reconciliation), idempotently.

        With `force`, events seen before are applied again: reconciliation re-reads
        reactions and poll answers that may have been passed over (e.g. one that arrived
        before its ballot's ID was stored); the ledger's event IDs keep that idempotent.
        """
        batch = SyncBatch(next_batch="", events=events)
        return await self.apply_batch(batch, force=force)

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
    ) -> None:
        idempotent = isinstance(event, ReactionAdded | Redacted | PollResponse)
        if not (force and idempotent) and event.event_id in seen:
            result.duplicates += 1
            return
        try:
            async with repo.tx.savepoint():
                await self._dispatch(repo, out, event, now)
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
                await self.acknowledge(
                    out,
                    event,
                    ok=False,
                    message=render.reply(
                        f"Something went wrong (ref {ref}); the operators can find it in the log.",
                        reply_to=event.event_id,
                    ),
                )

    async def _dispatch(self, repo: Repository, out: Outbox, event: InboundEvent, now: int) -> None:
        if isinstance(event, ReactionAdded):
            await self._on_reaction(repo, out, event, now)
        elif isinstance(event, Redacted):
            await self._on_redaction(repo, out, event, now)
        elif isinstance(event, CommandText):
            await self.handlers.handle(repo, out, event, now)
        elif isinstance(event, PollResponse):
            await self._on_poll_response(repo, out, event, now)
        elif isinstance(event, EncryptedMessage):
            await self._on_encrypted(repo, out, event, now)
        elif isinstance(event, EncryptionEnabled):
            req = await repo.request_by_room(event.room_id)
            if req is not None:
                await self.block(repo, out, req, f"{event.sender} switched on encryption", now)

    # --- positions --------------------------------------------------------------------

    async def _on_reaction(
        self, repo: Repository, out: Outbox, event: ReactionAdded, now: int
    ) -> None:
        req = await repo.request_by_ballot(event.relates_to)
        if req is None or req.room_id != event.room_id or not _takes_inputs(req):
            return
        position = position_for_reaction(event.key)
        if position is None or position is Position.RECUSE:
            return
        if not await repo.is_voter(req.id, event.sender):
            log.info("reaction from %s ignored: not eligible on #%d", event.sender, req.id)
            return
        item = PositionInput(event.event_id, event.sender, position, event.ts, Source.REACTION)
        await self.record_input(repo, out, req, item, now, ask_reason_in_reply_to=event.event_id)

    async def _on_encrypted(
        self, repo: Repository, out: Outbox, event: EncryptedMessage, now: int
    ) -> None:
        """Say once per room that the bot cannot read encrypted messages, and open an
        unencrypted direct chat where the sender can use its commands."""
        key = f"encrypted_notice:{event.room_id}"
        if await repo.get_meta(key) is not None:
            return
        await repo.set_meta(key, str(now))
        await repo.forget_dm_room(event.room_id)  # the welcome must go to a readable chat
        prefix = self.settings.prefix
        text = (
            f"{event.sender}: I cannot read encrypted messages. Send me commands in a chat "
            f"without encryption: I have opened one with you. Try {prefix} help there."
        )
        await out.message(
            render.notice("reply", None, text, (event.sender,), event="encrypted"),
            room_id=event.room_id,
        )
        welcome = f"Hello! Send me commands here (this chat is not encrypted). Try {prefix} help."
        await out.message(render.notice("reply", None, welcome, ()), room_id=dm(event.sender))

    async def _on_poll_response(
        self, repo: Repository, out: Outbox, event: PollResponse, now: int
    ) -> None:
        req = await repo.request_by_poll(event.poll_id)
        if req is None or req.room_id != event.room_id or not _takes_inputs(req):
            return
        if not await repo.is_voter(req.id, event.sender):
            return
        position: Position | None = None
        if event.answers:
            try:
                position = Position(event.answers[0])
            except ValueError:
                return  # not one of our answers
            if position is Position.RECUSE:
                return
        item = PositionInput(event.event_id, event.sender, position, event.ts, Source.POLL)
        await self.record_input(repo, out, req, item, now)

    async def _on_redaction(self, repo: Repository, out: Outbox, event: Redacted, now: int) -> None:
        await repo.add_redaction(
            event.event_id, event.redacts, event.room_id, event.sender, event.ts
        )
        found = await repo.input_by_event(event.redacts)
        if found is None:
            return  # not a position (or not seen yet: the tombstone waits for it)
        request_id, item = found
        req = await repo.request(request_id)
        if req is None or req.room_id != event.room_id:
            return  # a redaction only counts in the room of what it redacts
        if req.state is RequestState.OPEN:  # else the reopen recomputes
            await self._recompute(repo, out, req, item.member, now, None)
        elif req.counts_late(event.ts):
            self._redraft.add(req.id)
            await self._recompute(repo, out, req, item.member, now, None)

    async def record_input(
        self,
        repo: Repository,
        out: Outbox,
        req: Request,
        item: PositionInput,
        now: int,
        *,
        ask_reason_in_reply_to: str | None = None,
    ) -> PositionInput | None:
        """Append an input to the ledger; while the ballot is open, update the member's
        current position (inputs to a closed ballot are kept and count after a reopen)."""
        if not await repo.add_input(req.id, item, now):
            return None
        if req.state is RequestState.OPEN:
            return await self._recompute(repo, out, req, item.member, now, ask_reason_in_reply_to)
        if req.counts_late(item.ts):
            # Sent before the close but seen after it (a slow sync, or the bot was down):
            # it counts, and the chair gets the draft again once this batch is applied.
            self._redraft.add(req.id)
            return await self._recompute(repo, out, req, item.member, now, None)
        return None

    async def recompute_all(self, repo: Repository, out: Outbox, req: Request, now: int) -> None:
        """Recompute every member's current position (after a reopen)."""
        for member in sorted({i.member for i in await repo.inputs(req.id)}):
            await self._recompute(repo, out, req, member, now, None)

    async def _recompute(
        self,
        repo: Repository,
        out: Outbox,
        req: Request,
        member: str,
        now: int,
        ask_reason_in_reply_to: str | None,
    ) -> PositionInput | None:
        inputs = await repo.inputs(req.id, member)
        if req.state is RequestState.DRAFTED:  # a late input: only what was sent in time
            inputs = [i for i in inputs if req.counts_late(i.ts)]
        assert req.room_id is not None
        redacted = await repo.redacted_among((i.event_id for i in inputs), req.room_id)
        latest = current_input(inputs, redacted)
        current = latest if latest is not None and latest.position is not None else None
        await repo.set_current(req.id, member, current)
        open_objection = await repo.open_objection(req.id, member)
        if current is not None and current.position is Position.OBJECT:
            last = await repo.latest_objection(req.id, member)
            # A chair's disposition covers every objecting input recorded before it (both
            # times on the bot's clock: the server's origin_server_ts may be skewed).
            recorded = await repo.recorded_at(current.event_id)
            settled = (
                last is not None
                and last.disposed_by_chair
                and last.disposed_at is not None
                and recorded is not None
                and recorded <= last.disposed_at
            )
            if open_objection is None and settled:
                pass  # the chair disposed of this objection; only a newer one reopens it
            elif open_objection is None:
                oid = await repo.add_objection(
                    req.id, member, current.event_id, current.reason, now
                )
                if not current.reason and ask_reason_in_reply_to:
                    await out.message(
                        render.Message(
                            "reply",
                            req.id,
                            f"{member}: your objection is recorded as #{oid}. An objection blocks "
                            f"consensus until it is addressed, so please say why: "
                            f"{self.settings.prefix} object REASON",
                            f"<p>{render.esc(member)}: your objection is recorded as "
                            f"#{oid}. An objection blocks consensus until it is addressed, so "
                            f"please say why: <code>{render.esc(self.settings.prefix)} object "
                            f"REASON</code></p>",
                            {"objections": [{"id": oid, "member": member, "state": "open"}]},
                            (member,),
                            ask_reason_in_reply_to,
                        ),
                        request_id=req.id,
                    )
            elif current.reason and current.reason != open_objection.reason:
                await repo.set_objection_reason(open_objection.id, current.reason)
        elif open_objection is not None:
            # The objector moved away from `object` (another position, withdraw, or removed 👎).
            change = current.position.label if current and current.position else "no position"
            await repo.dispose_objection(
                open_objection.id,
                ObjectionState.WITHDRAWN,
                member,
                f"the objector changed their position to {change}",
                now,
            )
        return current

    # --- requests ---------------------------------------------------------------------

    async def file_request(
        self,
        repo: Repository,
        out: Outbox,
        applicant: Applicant,
        statement: str,
        filed_by: str,
        filed_event_id: str,
        deadline_at: int | None,
        now: int,
        *,
        self_applied: bool = False,
    ) -> Request:
        """File a request and queue its room's creation. Raises ValueError with a user message."""
        existing = await repo.request_by_filing(filed_event_id)
        if existing is not None:
            return existing
        open_one = await repo.active_request_for(applicant.applicant)
        if open_one is not None:
            raise ValueError(f"request #{open_one} for {applicant.applicant} is still open")
        due = deadline_at if deadline_at is not None else now + self.settings.deadline_ms
        if due - now < self.settings.min_deadline_ms:
            from bot.domain.durations import format_duration

            raise ValueError(
                "the deadline must be at least "
                f"{format_duration(self.settings.min_deadline_ms)} away, so every region "
                "can take part"
            )
        request_id = await repo.create_request(
            applicant, statement, filed_by, filed_event_id, self_applied, due, now
        )
        req = await repo.request(request_id)
        assert req is not None
        spec = self._room_spec(req)
        # Invites cost one rate-limited request each; createRoom takes up to ten at once.
        people = {m.user_id for m in await repo.active_members()} | set(self.settings.chairs)
        spec["invite"] = sorted(people - {self.settings.bot_user_id})[:CREATE_ROOM_INVITES]
        await out.create_room(request_id, spec)
        return req

    def _room_spec(self, req: Request) -> dict[str, Any]:
        s = self.settings
        users = dict.fromkeys(sorted(s.chairs - {s.bot_user_id}), 50)
        if s.bot_needs_power_entry:
            users[s.bot_user_id] = 100
        return {
            "name": render.clean(req.title, 200),
            "topic": (
                f"{s.group_name}: participation request #{req.id}. React to the ballot or use "
                f"{s.prefix} help."
            ),
            "initial_state": [
                {
                    "type": "m.room.guest_access",
                    "state_key": "",
                    "content": {"guest_access": "forbidden"},
                },
                {
                    "type": "m.room.history_visibility",
                    "state_key": "",
                    "content": {"history_visibility": "shared"},
                },
                {
                    "type": REQUEST_STATE_TYPE,
                    "state_key": "",
                    "content": {"request": req.id, "instance": s.instance_id},
                },
                *self._space_parent(),
            ],
            "power_levels": {
                "users": users,
                "users_default": 0,
                "events_default": 0,
                "state_default": 100,
                "invite": 100,
                "kick": 100,
                "ban": 100,
                "redact": 100,  # nobody but the bot removes others' positions
                "events": {"m.reaction": 0, "m.room.redaction": 0},
                "notifications": {"room": 50},
            },
        }

    def _space_parent(self) -> list[dict[str, Any]]:
        s = self.settings
        if not s.space_id:
            return []
        content = {"via": [s.server_name], "canonical": True}
        return [{"type": "m.space.parent", "state_key": s.space_id, "content": content}]

    async def room_ready(
        self,
        repo: Repository,
        out: Outbox,
        request_id: int,
        room_id: str,
        now: int,
        invited: frozenset[str] = frozenset(),
    ) -> None:
        """The request's room exists: open the ballot, post the card and invite everyone."""
        req = await repo.request(request_id)
        if req is None or req.state is not RequestState.PENDING:
            return
        state = transition(req.state, Action.ROOM_READY)
        await repo.update_request(request_id, state=state, room_id=room_id, opened_at=now)
        await repo.snapshot_eligible(request_id)
        req = await repo.request(request_id)
        assert req is not None
        await out.message(render.request_card(req, now), request_id=req.id)
        await out.message(
            render.ballot(req, self.settings.prefix), request_id=req.id, purpose="ballot"
        )
        for emoji, _ in LEGEND:
            await out.react(emoji, BALLOT, request_id=req.id)
        # The same ballot as a native poll, for clients that show polls: one ledger for all.
        await out.event(POLL_START, render.poll_start(req), request_id=req.id, purpose="poll")
        if self.settings.space_id:
            await out.state(
                self.settings.space_id,
                "m.space.child",
                room_id,
                {"via": [self.settings.server_name]},
            )
        invitees = {v.user_id for v in await repo.voters(req.id)} | set(self.settings.chairs)
        for user_id in sorted(invitees - {self.settings.bot_user_id} - invited):
            await out.invite(user_id, request_id=req.id)
        await out.message(
            render.announcement(req), room_id=self.settings.main_room_id, request_id=req.id
        )
        await self.calendar.schedule(repo, req)

    async def sense(self, repo: Repository, req: Request) -> Sense:
        """The draft sense of the room from what is stored now."""
        voters = await repo.voters(req.id)
        current = await repo.current(req.id)
        positions = {m: i.position for m, i in current.items() if i.position is not None}
        return determine(voters, positions, await repo.objections(req.id), self.settings.quorum)

    async def hums(self, repo: Repository, req: Request) -> str:
        """What the room hears of the hums: each side's loudness, never names or counts."""
        hums = [Hum(Side(side), Strength(strength)) for side, strength in await repo.hums(req.id)]
        return hum_report(hums).describe()

    def hummer(self, request_id: int, member: str) -> str:
        """The anonymous key under which a member's hum is stored."""
        msg = f"{request_id}:{member}".encode()
        return hmac.new(self.settings.hum_key, msg, hashlib.sha256).hexdigest()[:32]

    async def close_ballot(self, repo: Repository, out: Outbox, req: Request, now: int) -> Sense:
        """Close the ballot and post the draft sense of the room for the chair."""
        state = transition(req.state, Action.CLOSE)
        sense = await self.sense(repo, req)
        await repo.update_request(req.id, state=state, closed_at=now, proposal=sense.proposal)
        await self.post_draft(repo, out, req, sense)
        if req.poll_event_id:
            await out.event(POLL_END, render.poll_end(req), request_id=req.id, target=POLL)
        self.calendar.unschedule(req.id)
        return sense

    async def post_draft(
        self, repo: Repository, out: Outbox, req: Request, sense: Sense | None = None
    ) -> None:
        """Queue the draft sense of the room for the chairs (at close, and after changes)."""
        sense = sense or await self.sense(repo, req)
        await repo.update_request(req.id, proposal=sense.proposal)
        hums = await self.hums(repo, req)
        chairs = sorted(self.settings.chairs)
        await out.message(
            render.summary(req, sense, final=True, mentions=chairs, hums=hums), request_id=req.id
        )

    async def decide(
        self,
        repo: Repository,
        out: Outbox,
        req: Request,
        outcome: Outcome,
        chair: str,
        rationale: str,
        now: int,
        *,
        action: Action,
    ) -> Request:
        """Record the chair's decision, announce it and admit the applicant when admitted."""
        state = transition(req.state, action)
        await repo.update_request(
            req.id,
            state=state,
            outcome=outcome,
            decided_by=chair,
            rationale=rationale,
            decided_at=now,
        )
        decided = await repo.request(req.id)
        assert decided is not None
        message = render.outcome(decided)
        await out.message(message, request_id=req.id)
        await out.message(message, room_id=self.settings.main_room_id, request_id=req.id)
        user_id = decided.applicant.user_id
        if outcome is Outcome.ADMIT and user_id:
            await repo.upsert_member(
                user_id,
                decided.applicant.stakeholder or "",
                decided.applicant.region or "",
                now,
                f"admission:#{req.id}",
            )
            await out.invite(user_id, room_id=self.settings.main_room_id, request_id=req.id)
        self.calendar.unschedule(req.id)
        return decided

    async def block(self, repo: Repository, out: Outbox, req: Request, why: str, now: int) -> None:
        """The bot lost control of a request's room: stop counting and tell the chairs."""
        try:
            state = transition(req.state, Action.BLOCK)
        except LifecycleError:
            return
        await repo.update_request(req.id, state=state)
        text = (
            f"⚠ {render.clean(req.title)} is blocked: {render.clean(why)}. Positions are no longer "
            "counted there; a chair should look into it."
        )
        await out.message(
            render.Message(
                "reply",
                req.id,
                text,
                f"<p>{render.esc(text)}</p>",
                {"event": "blocked"},
                tuple(sorted(self.settings.chairs)),
            ),
            room_id=self.settings.main_room_id,
            request_id=req.id,
        )
        self.calendar.unschedule(req.id)

    async def _on_left(self, repo: Repository, out: Outbox, left: LeftRoom, now: int) -> None:
        req = await repo.request_by_room(left.room_id)
        if req is None or req.state in (RequestState.DECIDED, RequestState.BLOCKED):
            return
        how = "banned" if left.membership == "ban" else "removed"
        who = f" by {left.by}" if left.by and left.by != self.settings.bot_user_id else ""
        if left.by == self.settings.bot_user_id:
            return  # we left on purpose
        await self.block(repo, out, req, f"the bot was {how} from its room{who}", now)

    # --- timers -----------------------------------------------------------------------

    async def fire_deadline(self, request_id: int) -> None:
        """The deadline timer woke us: close the ballot if it is still open and due."""
        now = self.clock.now_ms()
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            req = await repo.request(request_id)
            if req is None or req.state is not RequestState.OPEN:
                return
            if req.deadline_at > now:
                await self.calendar.schedule(repo, req)  # moved later meanwhile
                return
            log.info("deadline of request %d reached", request_id)
            await self.close_ballot(repo, Outbox(repo, now), req, now)
        self.wake()

    async def restore_timers(self) -> int:
        """At start: schedule every open ballot's deadline (overdue ones fire at once)."""
        if self.timers is None:
            return 0
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            open_requests = await repo.requests([RequestState.OPEN])
            zones = await repo.member_zones()
            for req in open_requests:
                await self.calendar.schedule(repo, req, zones)
        s = self.settings
        if s.digest_cron is not None:
            self.timers.cron("digest", s.digest_cron, zone(s.group_tz), self.calendar.fire_digest)
        self.timers.every("nudge", 3_600, self.calendar.nudge_chairs)
        return len(open_requests)

    # --- invites ----------------------------------------------------------------------

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
            if s.self_apply:
                return True
            async with self.db.transaction() as tx:
                member = await Repository(tx).member(inviter)
            return member is not None and member.active
        return False

    # --- outbox hooks -----------------------------------------------------------------

    async def on_sent(self, repo: Repository, item: OutboxItem, result: str, now: int) -> None:
        """Record what a sent operation produced."""
        out = Outbox(repo, now)
        if item.op == "create_room" and item.request_id is not None:
            invited = frozenset(item.payload.get("invite", []))
            await self.room_ready(repo, out, item.request_id, result, now, invited)
        elif item.purpose == "ballot" and item.request_id is not None:
            await repo.update_request(item.request_id, ballot_event_id=result)
        elif item.purpose == "poll" and item.request_id is not None:
            await repo.update_request(item.request_id, poll_event_id=result)

    async def after_sent(self, item: OutboxItem) -> None:
        """After a ballot or poll went out: read back anything that raced its ID being stored."""
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
        if item.op == "create_room" and item.request_id is not None:
            req = await repo.request(item.request_id)
            if req is not None:
                await self.block(repo, Outbox(repo, now), req, "its room could not be created", now)

    async def find_created_room(self, item: OutboxItem) -> str | None:
        """Find a room created for this request before a crash (by its marker state event)."""
        if self.gateway is None or item.request_id is None:
            return None
        marker = {"request": item.request_id, "instance": self.settings.instance_id}
        room_id = await self._find_marked_room(REQUEST_STATE_TYPE, marker)
        if room_id:
            log.info("adopting room %s created before a restart", room_id)
        return room_id

    async def dm_room(self, user_id: str) -> str:
        """The bot's direct chat with a user: known, found again after a crash, or created."""
        async with self.db.transaction() as tx:
            known = await Repository(tx).dm_room(user_id)
        if known:
            return known
        if self.gateway is None:
            raise GatewayError("no homeserver connection")
        marker = {"user": user_id, "instance": self.settings.instance_id}
        room_id = await self._find_marked_room(DM_STATE_TYPE, marker)
        if room_id is None:
            room_id = await self.gateway.create_room(
                name="",
                topic=f"{self.settings.group_name}: Consensus Bot",
                initial_state=[
                    {"type": DM_STATE_TYPE, "state_key": "", "content": marker},
                    {
                        "type": "m.room.guest_access",
                        "state_key": "",
                        "content": {"guest_access": "forbidden"},
                    },
                ],
                power_level_override={},
                invite=[user_id],
                is_direct=True,
            )
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            await repo.set_dm_room(user_id, room_id, self.clock.now_ms())
            return await repo.dm_room(user_id) or room_id

    async def remember_dm(self, user_id: str, room_id: str) -> None:
        """A user opened a direct chat with the bot: use it for their reminders."""
        async with self.db.transaction() as tx:
            await Repository(tx).set_dm_room(user_id, room_id, self.clock.now_ms())

    async def refresh_timezones(self, limit: int = 100) -> int:
        """Read members' `m.tz` profile field (spec v1.16) where not known yet.

        "" is stored for "looked up, none set", so each member is asked once; open ballots
        are rescheduled afterwards so reminders avoid their night.
        """
        if self.gateway is None:
            return 0
        async with self.db.transaction() as tx:
            members = [m.user_id for m in await Repository(tx).active_members() if m.tz is None]
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
            zones = await repo.member_zones()
            for req in await repo.requests([RequestState.OPEN]):
                await self.calendar.schedule(repo, req, zones)
        return sum(1 for tz in found.values() if tz)

    async def _find_marked_room(self, state_type: str, marker: dict[str, Any]) -> str | None:
        assert self.gateway is not None
        for room_id in await self.gateway.joined_rooms():
            try:
                content = await self.gateway.state_event(room_id, state_type)
            except GatewayError as exc:
                if exc.transient:
                    raise  # try the whole search again later rather than create a duplicate
                continue
            if isinstance(content, dict) and all(content.get(k) == v for k, v in marker.items()):
                return room_id
        return None

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
                for r in await repo.requests([RequestState.OPEN])
                if r.ballot_event_id and r.room_id and (room_ids is None or r.room_id in room_ids)
            ]
            known = {r.id: await repo.inputs(r.id) for r in ballots}
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
            for item in known[req.id]:
                if item.source is Source.REACTION and item.event_id not in live:
                    # Missing from /relations: retract only on evidence of a redaction (a
                    # partial or lagging answer must not erase a live position).
                    redaction = await self.gateway.redaction_of(req.room_id, item.event_id)
                    if redaction is not None:
                        redaction_id, sender, ts = redaction
                        events.append(
                            Redacted(req.room_id, redaction_id, sender, ts, item.event_id)
                        )
            result = await self.apply_events(events, force=True)
            fixed += result.applied
        return fixed

    async def acknowledge(
        self, out: Outbox, event: CommandText, *, ok: bool, message: render.Message | None
    ) -> None:
        """React ✅/❌ to a command and send its reply, if any, in the same room."""
        await out.react("✅" if ok else "❌", event.event_id, room_id=event.room_id)
        if message is not None:
            await out.message(message, room_id=event.room_id, request_id=message.request)
