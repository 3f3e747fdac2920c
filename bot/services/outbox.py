"""The outbox: everything the bot sends is written down first, then sent, by priority.

Writing happens inside the transaction that decided to send (so a crash can neither lose nor
double it); sending happens afterwards, urgent items before bulk ones (see "priorities"
below), one operation at a time, each with its stored
transaction ID so a resend after a crash is dropped by the homeserver. Transient failures
(outage, 5xx, 429) are retried with exponential backoff and jitter, honouring
`retry_after_ms`; permanent ones are recorded and reported to the hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from bot.matrix.gateway import AuthLost, Gateway, GatewayError
from bot.matrix.render import Message
from bot.matrix.rooms import allow_room_of, invite_only
from bot.services.clock import Clock
from bot.services.plans import AfterCommit
from storage.backend import Backend
from storage.repo import OutboxItem, Repository

log = logging.getLogger(__name__)

BALLOT = "ballot"  # `target` placeholder: the request's ballot event, resolved when sent
DRAFT = "draft"  # `target` placeholder: the current round's draft, resolved when sent
TALLY = "tally"  # `target` placeholder: the ballot's live tally, resolved when sent
CARD = "card"  # `target` placeholder: the request card, resolved when sent
POLL = "poll"  # `target` placeholder: the request's poll event
PRIVATE = "private"  # `purpose`: once sent, nothing of the row stays (e.g. a hum's answer)
DM = "dm:"  # `room_id` prefix: the bot's direct chat with that user, created on first need
TIDY = "tidy:"  # `purpose` prefix: a member's tidy-up of a superseded reaction (one pending)
# `op`: read who is joined to a restricted room's allow room (and the room's join rule) and
# hand that to the services (`on_sent`), which invite the roster members missing there.
INVITE_ABSENT = "invite_absent"
# `purpose` of an invite to a restricted room for a member who could not join it alone: bulk
# (see priorities), so a few hundred stragglers never hold up a draft or an outcome.
STRAGGLER = "straggler"


def dm(user_id: str) -> str:
    """The outbox destination for a direct message to `user_id`."""
    return DM + user_id


TXN_KEY = "org.consensus_bot.txn"  # every sent event carries its transaction ID
DEDUP_WINDOW_MS = 23 * 3_600_000  # the homeserver drops a resent txn ID for 24 h
MAX_BACKOFF_S = 60.0
TRIES_PER_PASS = 4  # transient failures (not rate limits) before an item is deferred
RETRY_DEFERRED_S = 30.0  # how soon deferred items are tried again
MAX_ATTEMPTS = 500  # deferred passes before an item fails for good (~4 h)


def new_txn_id() -> str:
    """A fresh, globally unique transaction ID (stored with the row, so resends reuse it)."""
    return f"cb.{uuid.uuid4().hex}"


class Outbox:
    """Queues operations inside a transaction. Sends nothing itself.

    `after` is the plan of the job whose transaction this is (`bot.services.plans`): the
    job made it and runs it after its commit; the outbox only carries it to the services
    that queue, so they can plan through the one object they are handed."""

    def __init__(self, repo: Repository, now: int, after: AfterCommit) -> None:
        self.repo = repo
        self.now = now
        self.after = after
        self.queued = 0

    async def _put(self, op: str, payload: dict[str, Any], **where: Any) -> None:
        await self.repo.enqueue(new_txn_id(), op, payload, self.now, **where)
        self.queued += 1
        self.after.ring = True  # once committed, the sender is woken

    async def message(
        self,
        msg: Message,
        *,
        room_id: str | None = None,
        request_id: int | None = None,
        purpose: str | None = None,
    ) -> None:
        """Send a rendered message to `room_id`, or to the request's room when None."""
        await self._put(
            "message", msg.content(), room_id=room_id, request_id=request_id, purpose=purpose
        )

    async def edit(self, msg: Message, target: str, *, request_id: int | None = None) -> None:
        """Edit an earlier message of the bot (`target`: an event ID, or DRAFT) in place."""
        await self._put("edit", msg.edit_content(), request_id=request_id, target=target)

    async def redact(
        self, target: str, *, request_id: int, reason: str, purpose: str | None = None
    ) -> None:
        """Remove an event from the request's room (the bot's tidying of superseded
        reactions: the bot alone has the power to)."""
        await self._put(
            "redact", {"reason": reason}, request_id=request_id, target=target, purpose=purpose
        )

    async def react(
        self,
        key: str,
        target: str,
        *,
        room_id: str | None = None,
        request_id: int | None = None,
        purpose: str | None = None,
    ) -> None:
        """React to `target` (an event ID, or BALLOT for the request's ballot)."""
        await self._put(
            "reaction",
            {"key": key},
            room_id=room_id,
            request_id=request_id,
            target=target,
            purpose=purpose,
        )

    async def event(
        self,
        event_type: str,
        content: dict[str, Any],
        *,
        room_id: str | None = None,
        request_id: int | None = None,
        purpose: str | None = None,
        target: str | None = None,
    ) -> None:
        """Send an event of another type (e.g. a poll) to a room, referencing `target`."""
        await self._put(
            "event",
            {"type": event_type, "content": content},
            room_id=room_id,
            request_id=request_id,
            purpose=purpose,
            target=target,
        )

    async def state(
        self, room_id: str, event_type: str, state_key: str, content: dict[str, Any]
    ) -> None:
        """Set a state event (e.g. a Space's child)."""
        await self._put(
            "state",
            {"type": event_type, "state_key": state_key, "content": content},
            room_id=room_id,
        )

    async def file(
        self,
        data: str,
        filename: str,
        mimetype: str,
        caption: dict[str, Any],
        *,
        room_id: str,
        request_id: int | None = None,
        cache_key: str | None = None,
    ) -> None:
        """Upload `data` as a file and post it (with `caption`'s consensus_bot block).

        With a `cache_key` (content that never changes, e.g. a frozen record), the file is
        uploaded once and every later post refers to the same upload.
        """
        payload = {
            "data": data,
            "filename": filename,
            "mimetype": mimetype,
            "caption": caption,
            "cache_key": cache_key,
        }
        await self._put("file", payload, room_id=room_id, request_id=request_id)

    async def invite(
        self,
        user_id: str,
        *,
        room_id: str | None = None,
        request_id: int | None = None,
        purpose: str | None = None,
    ) -> None:
        """Invite a user to a room (the request's room when `room_id` is None)."""
        await self._put(
            "invite", {"user_id": user_id}, room_id=room_id, request_id=request_id, purpose=purpose
        )

    async def remove_from_room(
        self, user_id: str, *, room_id: str, request_id: int | None = None, reason: str = ""
    ) -> None:
        """Kick a user out of a room the bot controls (a member removed from the roster
        leaves the rooms of undecided requests: the bot's next messages there are no longer
        encrypted for them)."""
        payload = {"user_id": user_id, "reason": reason}
        await self._put("kick", payload, room_id=room_id, request_id=request_id)

    async def invite_absent(
        self, users: Sequence[str], allow_room: str, *, request_id: int
    ) -> None:
        """Invite to the request's restricted room those of `users` who cannot join it by
        themselves (not joined to `allow_room`), found out when sent (`INVITE_ABSENT`)."""
        payload = {"users": list(users), "allow_room": allow_room}
        await self._put(INVITE_ABSENT, payload, request_id=request_id)

    async def create_room(self, request_id: int, spec: dict[str, Any]) -> None:
        """Create the request's room (name, topic, state and power levels in `spec`)."""
        await self._put("create_room", spec, request_id=request_id, purpose="request_room")


class OutboxHooks(Protocol):
    """What the services do once an operation went through or failed for good."""

    async def on_sent(
        self, repo: Repository, item: OutboxItem, result: str, now: int
    ) -> AfterCommit:
        """Record the result (a room or event ID) of a sent operation, in the sender's
        transaction; returns what to do once it committed (`after_commit`)."""
        ...

    async def on_failed(
        self, repo: Repository, item: OutboxItem, error: str, now: int
    ) -> AfterCommit:
        """An operation failed for good (in the sender's transaction, like `on_sent`)."""
        ...

    async def find_created_room(self, item: OutboxItem) -> str | None:
        """After a crash during room creation: the room created before, if any."""
        ...

    async def dm_room(self, user_id: str) -> str:
        """The bot's direct chat with a user, created when there is none yet."""
        ...

    async def after_commit(self, item: OutboxItem, plan: AfterCommit, *, sent: bool) -> None:
        """Once `on_sent`'s (`sent`) or `on_failed`'s transaction committed: its plan, and
        the follow-ups of a sent operation."""
        ...

    async def tidy_target(self, item: OutboxItem) -> str | None:
        """Just before a tidy-up is sent: the reaction to remove now, None for none."""
        ...


class Doorbell:
    """Rung by whoever queued something; the outbox sender waits on it."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def ring(self) -> None:
        """Something was queued: send it soon."""
        self._event.set()

    def is_set(self) -> bool:
        """True when rung and not yet answered."""
        return self._event.is_set()

    def clear(self) -> None:
        """The sender is answering."""
        self._event.clear()

    async def wait(self) -> None:
        """Until rung."""
        await self._event.wait()


class OutboxSender:
    """Sends queued operations in order; the doorbell wakes it, `run()` is its task."""

    def __init__(
        self,
        db: Backend,
        gateway: Gateway,
        hooks: OutboxHooks,
        clock: Clock,
        doorbell: Doorbell,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.db = db
        self.gateway = gateway
        self.hooks = hooks
        self.clock = clock
        self._sleep = sleep
        self._wake = doorbell
        self.sent = 0
        self.retries = 0
        self._urgent_run = 0  # urgent items sent since the last bulk one (for `pick`)

    def kick(self) -> None:
        """Something was queued: send it soon."""
        self._wake.ring()

    async def run(self) -> None:
        """Send for ever (the app cancels this task to stop)."""
        self._wake.ring()  # anything left from before a restart goes out first
        deferred = False
        while True:
            if deferred:  # something is stuck: try it again in a while, or when kicked
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), RETRY_DEFERRED_S)
            else:
                await self._wake.wait()
            self._wake.clear()
            deferred = await self.drain()

    async def drain(self) -> bool:
        """Send everything pending now, by priority; True when something had to be deferred.

        Urgent items go before bulk ones, four to one when both wait (see `pick`). Order is
        kept per request and per room within each class, and a bulk item never overtakes an
        earlier urgent one of its request or room (which it may depend on: a room, a ballot).
        When an item is deferred (its homeserver call keeps failing), the later items of the
        same request or room wait with it and everything else goes on. When something new is
        queued meanwhile (the doorbell rings), the pending list is read again: it may be
        urgent.
        """
        stuck: set[object] = set()
        while True:
            self._wake.clear()  # what is queued from here on rings again and is read again
            async with self.db.transaction() as tx:
                items = await Repository(tx).pending_outbox(limit=500)
            ready = [i for i in items if not _keys(i) & stuck]
            if not ready:
                return bool(stuck)
            while ready and not self._wake.is_set():
                item = pick(ready, self._urgent_run)
                ready.remove(item)
                if _keys(item) & stuck:
                    continue
                if superseded(item, items):
                    # A later edit of the same message replaces this one whole: only the
                    # latest goes out (a burst of changes to a draft costs one edit).
                    async with self.db.transaction() as tx:
                        await Repository(tx).outbox_done(item.id, None, self.clock.now_ms())
                    continue
                self._urgent_run = self._urgent_run + 1 if urgent(item) else 0
                try:
                    done = await self._send_one(item)
                except AuthLost:
                    raise
                except Exception:
                    # A bug must not stop every later message: set this one aside, loudly.
                    log.exception("outbox item %s (%s) failed; set aside", item.id, item.op)
                    async with self.db.transaction() as tx:
                        await Repository(tx).outbox_attempt(item.id, "internal error", give_up=True)
                    continue
                if not done:
                    stuck |= _keys(item)

    async def _send_one(self, item: OutboxItem) -> bool:
        """Send one item; False when it keeps failing and is deferred for a while."""
        if item.purpose is not None and item.purpose.startswith(TIDY):
            # A tidy-up is checked again now: the member may have redacted the reaction
            # themselves meanwhile, and the bot never redacts a reaction twice.
            aimed = await self.hooks.tidy_target(item)
            if aimed is None:
                async with self.db.transaction() as tx:
                    await Repository(tx).outbox_done(item.id, None, self.clock.now_ms())
                return True
            item = replace(item, target=aimed)
        delay = 1.0
        tries = 0
        while True:
            try:
                result = await self._perform(item, retry=tries > 0 or item.attempts > 0)
            except GatewayError as exc:
                if exc.auth:
                    raise AuthLost(exc) from exc
                limited = exc.errcode == "M_LIMIT_EXCEEDED" or exc.status == 429
                if exc.transient and (limited or tries < TRIES_PER_PASS):
                    # A rate limit binds the whole account: wait it out in place.
                    self.retries += 1
                    wait = (exc.retry_after_ms or 0) / 1000 or delay
                    wait = min(MAX_BACKOFF_S, wait) * random.uniform(1.0, 1.3)
                    log.warning("send %s %s: %s; retrying in %.1fs", item.op, item.id, exc, wait)
                    await self._sleep(wait)
                    delay = min(MAX_BACKOFF_S, delay * 2)
                    tries += 0 if limited else 1
                    continue
                if exc.transient and item.attempts + 1 < MAX_ATTEMPTS:
                    log.warning("send %s %s keeps failing (%s); deferred", item.op, item.id, exc)
                    async with self.db.transaction() as tx:
                        await Repository(tx).outbox_attempt(item.id, str(exc)[:500], give_up=False)
                    return False
                if item.op == "create_room":
                    # The server may have made the room and failed an invite after it.
                    found = await self.hooks.find_created_room(item)
                    if found:
                        result = found
                        break
                    if allow_room_of(item.payload):
                        # A room version or server that cannot do restricted rooms: make
                        # it invite-only (the services then invite everyone, see
                        # INVITE_ABSENT, which reads the join rule the room really has).
                        log.warning(
                            "the server refused a restricted request room (%s); making it "
                            "invite-only: every member is invited",
                            exc,
                        )
                        item = replace(item, payload=invite_only(item.payload))
                        continue
                log.error("send %s %s failed for good: %s", item.op, item.id, exc)
                async with self.db.transaction() as tx:
                    repo = Repository(tx)
                    await repo.outbox_attempt(item.id, str(exc)[:500], give_up=True)
                    plan = await self.hooks.on_failed(repo, item, str(exc), self.clock.now_ms())
                await self._after_commit(item, plan, sent=False)
                return True
            except _Unresolvable as exc:
                log.error("send %s %s dropped: %s", item.op, item.id, exc)
                async with self.db.transaction() as tx:
                    await Repository(tx).outbox_attempt(item.id, str(exc), give_up=True)
                return True
            break
        # Sent (or a room created before a failure adopted): record it with its result.
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            plan = await self.hooks.on_sent(repo, item, result, self.clock.now_ms())
            # A private answer leaves nothing behind; a sent file's bytes are not kept.
            private = item.purpose == PRIVATE
            await repo.outbox_done(
                item.id,
                result,
                self.clock.now_ms(),
                keep_payload=not private and item.op != "file",
                keep_where=not private,
            )
        self.sent += 1
        await self._after_commit(item, plan, sent=True)
        return True

    async def _after_commit(self, item: OutboxItem, plan: AfterCommit, *, sent: bool) -> None:
        try:
            await self.hooks.after_commit(item, plan, sent=sent)
        except Exception:  # the item is done; a follow-up failing must not undo that
            log.exception("after outbox item %s", item.id)

    async def _resolve(self, item: OutboxItem) -> tuple[str, str | None]:
        """The room and target event of an item, filled in from its request when needed."""
        room_id, target = item.room_id, item.target
        if room_id is not None and room_id.startswith(DM):
            room_id = await self.hooks.dm_room(room_id.removeprefix(DM))
        if room_id is not None and target not in (BALLOT, POLL, DRAFT, TALLY, CARD):
            return room_id, target
        async with self.db.transaction() as tx:
            req = await Repository(tx).request(item.request_id) if item.request_id else None
        if req is None:
            raise _Unresolvable("its request is unknown")
        room_id = room_id or req.room_id
        if target == BALLOT:
            target = req.ballot_event_id
        elif target == POLL:
            target = req.poll_event_id
        elif target == DRAFT:
            target = req.draft_event_id
        elif target == TALLY:
            target = req.tally_event_id
        elif target == CARD:
            target = req.card_event_id
        if target in (None, "") and item.target is not None:
            raise _Unresolvable(f"the {item.target} was never posted")
        if room_id is None:
            raise _Unresolvable("the request has no room")
        return room_id, target

    async def _perform(self, item: OutboxItem, *, retry: bool) -> str:
        if item.op == "create_room":
            if retry:
                # We may have crashed after the server created it: adopt that room.
                found = await self.hooks.find_created_room(item)
                if found:
                    return found
            async with self.db.transaction() as tx:  # note the attempt before making it
                await Repository(tx).outbox_attempt(item.id, "creating", give_up=False)
            p = item.payload
            return await self.gateway.create_room(
                name=p["name"],
                topic=p["topic"],
                initial_state=p["initial_state"],
                power_level_override=p["power_levels"],
                invite=p.get("invite", []),
            )
        room_id, target = await self._resolve(item)
        if item.op in ("message", "edit", "event", "file") and self._past_dedup(item):
            # The homeserver forgets transaction IDs after a day: after a longer outage a
            # resend could post twice, so look for the marked event first.
            found = await self._sent_before(room_id, item.txn_id)
            if found:
                return found
        if item.op == "message":
            content = {**item.payload, TXN_KEY: item.txn_id}
            return await self.gateway.send_message(room_id, content, item.txn_id)
        if item.op == "edit":
            assert target is not None
            content = {
                **item.payload,
                TXN_KEY: item.txn_id,
                "m.relates_to": {"rel_type": "m.replace", "event_id": target},
            }
            return await self.gateway.send_message(room_id, content, item.txn_id)
        if item.op == "reaction":
            assert target is not None
            return await self.gateway.send_reaction(
                room_id, target, item.payload["key"], item.txn_id
            )
        if item.op == "event":
            content = {**item.payload["content"], TXN_KEY: item.txn_id}
            if target is not None:  # relate to the resolved event (e.g. a poll's end)
                content["m.relates_to"] = {"rel_type": "m.reference", "event_id": target}
            return await self.gateway.send_message(
                room_id, content, item.txn_id, item.payload["type"]
            )
        if item.op == "file":
            p = item.payload
            raw = p["data"].encode("utf-8")
            where: dict[str, Any]
            if await self.gateway.encrypts(room_id):
                # Encrypted attachment: a fresh key per post, so no shared upload cache.
                where = {"file": await self.gateway.upload_encrypted(raw, p["filename"])}
            else:
                uri = await self._upload(raw, p["mimetype"], p["filename"], p.get("cache_key"))
                where = {"url": uri}
            content = {
                **p["caption"],
                TXN_KEY: item.txn_id,
                "msgtype": "m.file",
                "body": p["filename"],
                "filename": p["filename"],
                **where,
                "info": {"mimetype": p["mimetype"], "size": len(raw)},
            }
            return await self.gateway.send_message(room_id, content, item.txn_id)
        if item.op == "redact":
            assert target is not None
            return await self.gateway.redact(
                room_id, target, item.txn_id, str(item.payload.get("reason", ""))
            )
        if item.op == "state":
            p = item.payload
            await self.gateway.put_state(room_id, p["type"], p["content"], p["state_key"])
            return room_id
        if item.op == INVITE_ABSENT:
            rule = await self.gateway.state_event(room_id, "m.room.join_rules")
            joined = await self.gateway.joined_members(item.payload["allow_room"])
            join_rule = rule.get("join_rule") if isinstance(rule, dict) else None
            return json.dumps({"join_rule": join_rule, "joined": sorted(joined)})
        if item.op == "invite":
            await self.gateway.invite(room_id, item.payload["user_id"])
            return str(item.payload["user_id"])
        if item.op == "kick":
            p = item.payload
            await self.gateway.kick(room_id, p["user_id"], str(p.get("reason", "")))
            return str(p["user_id"])
        raise _Unresolvable(f"unknown operation {item.op}")

    def _past_dedup(self, item: OutboxItem) -> bool:
        return self.clock.now_ms() - item.created_at > DEDUP_WINDOW_MS

    async def _sent_before(self, room_id: str, txn_id: str) -> str | None:
        """The event this bot sent with this transaction ID, if it is among the room's
        latest events (a resend after a long outage)."""
        for event in await self.gateway.recent_events(room_id):
            content = event.get("content")
            if (
                event.get("sender") == self.gateway.user_id
                and isinstance(content, dict)
                and content.get(TXN_KEY) == txn_id
                and isinstance(event.get("event_id"), str)
            ):
                return str(event["event_id"])
        return None

    async def _upload(self, raw: bytes, mimetype: str, filename: str, cache_key: str | None) -> str:
        """Upload a file, or reuse the upload of the same unchanging content."""
        if cache_key:
            async with self.db.transaction() as tx:
                known = await Repository(tx).upload(cache_key)
            if known:
                return known
        uri = await self.gateway.upload(raw, mimetype, filename)
        if cache_key:
            async with self.db.transaction() as tx:
                await Repository(tx).remember_upload(cache_key, uri, self.clock.now_ms())
        return uri


def _keys(item: OutboxItem) -> set[object]:
    """What an item's order is kept within: its request and its room."""
    keys: set[object] = set()
    if item.request_id is not None:
        keys.add(("request", item.request_id))
    if item.room_id is not None:
        keys.add(("room", item.room_id))
    return keys


# --- priorities ------------------------------------------------------------------------
#
# Under a homeserver's rate limits (Synapse's default: a burst of 10 events, then one every
# 5 s) the order of sending is the latency of every answer. Items are urgent or bulk:
#
#   urgent: everything a person waits for: outcomes, drafts, command acknowledgements and
#           replies, ballots, rooms, invites, objection prompts;
#   bulk:   what only keeps the room tidy or informed in the background: tidy-ups of
#           superseded reactions, the live tally (post and edits), reminders and digests,
#           and the invites of members who could not join a restricted room by themselves.
#
# Weighted round robin, not strict priority: while both classes wait, URGENT_PER_BULK urgent
# items go for every bulk one. Urgent answers are slowed by at most one bulk send in five
# (a fifth of the throughput), and a flood of urgent items (bounded anyway by the per-sender
# command limits) never starves the bulk class. Aging was the alternative; it was rejected
# because aged bulk items, being older, would then all go before a newer draft. Within a
# class the order is first queued, first sent.

URGENT_PER_BULK = 4
BULK_KINDS = frozenset({"tally", "reminder", "digest"})  # `consensus_bot` kinds that can wait


def urgent(item: OutboxItem) -> bool:
    """Whether someone waits for this item (see the priorities above)."""
    if item.op == "redact" or TALLY in (item.purpose, item.target) or item.purpose == STRAGGLER:
        return False
    content = item.payload if item.op == "message" else item.payload.get("m.new_content", {})
    meta = content.get("consensus_bot") if isinstance(content, dict) else None
    return not (isinstance(meta, dict) and meta.get("kind") in BULK_KINDS)


def superseded(item: OutboxItem, items: Sequence[OutboxItem]) -> bool:
    """Whether `item` is an edit that a later pending edit of the same message replaces."""
    return item.op == "edit" and any(
        other.op == "edit"
        and other.id > item.id
        and other.target == item.target
        and other.request_id == item.request_id
        and other.room_id == item.room_id
        for other in items
    )


def pick(items: Sequence[OutboxItem], urgent_run: int) -> OutboxItem:
    """The item to send next among `items` (pending, oldest first), after `urgent_run` urgent
    items in a row: the oldest urgent one, except that every URGENT_PER_BULK-th turn (or when
    no urgent item waits) goes to the oldest bulk item that no earlier urgent item of its
    request or room must precede."""
    first_urgent = next((i for i in items if urgent(i)), None)
    if first_urgent is not None and urgent_run < URGENT_PER_BULK:
        return first_urgent
    ahead: set[object] = set()  # the requests and rooms of urgent items seen so far
    for item in items:
        if urgent(item):
            ahead |= _keys(item)
        elif not _keys(item) & ahead:
            return item
    assert first_urgent is not None  # a bulk item can only be held back by an urgent one
    return first_urgent


class _Unresolvable(Exception):
    """An operation that can never be sent (its room or target does not exist)."""
