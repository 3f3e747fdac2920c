"""The bot's own sync loop (not nio's `sync_forever`).

nio's loop stores the token before callbacks run, stops on the first exception and never
backs off. Here the token is stored by the batch apply in the same transaction as the batch's
effects; failures back off exponentially with jitter and honour `retry_after_ms`; a
watchdog logs loudly when the homeserver has been unreachable for too long.

Nothing a homeserver sends can end the loop (only a lost login, `AuthLost`, or
cancellation do). Decoding is total per event (`bot.matrix.decode`): an event that cannot
be decoded is set aside with a logged reference and the rest of the batch applies. A
response that cannot be parsed at all is a GatewayError like an outage; any other exception
from the sync call is logged at ERROR with a reference (`ref …`, with its traceback) and
retried with the same backoff, so a bug on that path shows in the log instead of silently
stopping the bot.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from bot.matrix.crypto import Outcome
from bot.matrix.decode import decode_event, decode_sync, invites_filter, sync_filter
from bot.matrix.events import InboundEvent, Invite, SyncBatch
from bot.matrix.gateway import AuthLost, Gateway, GatewayError
from bot.services.batches import Batches
from bot.services.dms import DirectChats
from bot.services.invites import InvitePolicy
from bot.services.reconcile import Reconciler
from bot.services.settings import Settings

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0
MAX_GAP_PAGES = 20  # x 100 events
HELD_RETRY_S = 30.0  # held encrypted events are retried this often, and whenever keys arrive
DM_PRUNE_EVERY_S = 3_600.0  # unused direct chats are looked for at most this often


class Syncer:
    """Long-polls `/sync`, hands each batch to the batch apply, wakes the outbox sender."""

    def __init__(
        self,
        gateway: Gateway,
        settings: Settings,
        batches: Batches,
        reconciler: Reconciler,
        dms: DirectChats,
        invites: InvitePolicy,
        wake_sender: Callable[[], None],
        *,
        timeout_ms: int = 30_000,
        watchdog_s: float = 300.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_first_batch: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.gateway = gateway
        self.settings = settings
        self.ingest = batches  # (`self.batches` counts the batches applied)
        self.reconciler = reconciler
        self.dms = dms
        self.invites = invites
        self.wake_sender = wake_sender
        self.timeout_ms = timeout_ms
        self.watchdog_s = watchdog_s
        self._sleep = sleep
        self._on_first_batch = on_first_batch
        self._pending_invites: dict[str, Invite] = {}
        self._held_checked = float("-inf")  # loop time of the last retry of held events
        self._dms_pruned = float("-inf")  # loop time of the last look for unused direct chats
        self.batches = 0
        self.failures = 0
        self.undecodable = 0  # events set aside because decoding them failed
        self.synced = asyncio.Event()  # set after each applied batch (tests and demo wait on it)

    async def run(self) -> None:
        """Sync until cancelled."""
        token = await self.ingest.sync_token()
        first = token is None
        backoff = 1.0
        failing_since: float | None = None
        loop = asyncio.get_running_loop()
        settings = self.settings
        filt = sync_filter()
        if token is not None:
            await self._pending_invites_at_start()
        while True:
            try:
                raw = await self.gateway.sync(token, 0 if first else self.timeout_ms, filt)
            except GatewayError as exc:
                if exc.auth:
                    raise AuthLost(exc) from exc
                self.failures += 1
                now = loop.time()
                failing_since = failing_since or now
                down_for = now - failing_since
                if down_for > self.watchdog_s:
                    log.error("sync has failed for %.0f s: %s", down_for, exc)
                else:
                    log.warning("sync failed: %s", exc)
                wait = (exc.retry_after_ms or 0) / 1000 or backoff
                await self._sleep(min(MAX_BACKOFF_S, wait) * random.uniform(1.0, 1.5))
                backoff = min(MAX_BACKOFF_S, backoff * 2)
                continue
            except Exception:
                # Not an error the gateway knows: never let it end the loop silently.
                self.failures += 1
                failing_since = failing_since or loop.time()
                log.exception("sync failed unexpectedly (ref %s)", secrets.token_hex(3))
                await self._sleep(backoff * random.uniform(1.0, 1.5))
                backoff = min(MAX_BACKOFF_S, backoff * 2)
                continue
            if failing_since is not None:
                log.info("homeserver reachable again after %.0f s", loop.time() - failing_since)
            failing_since = None
            backoff = 1.0
            got_keys = await self._absorb_keys(raw)
            batch = decode_sync(raw, settings.bot_user_id, settings.prefix, initial=first)
            if batch.undecodable:
                self.undecodable += len(batch.undecodable)
                log.error(
                    "%d events set aside as undecodable (refs %s); the rest of the batch applies",
                    len(batch.undecodable),
                    ", ".join(batch.undecodable),
                )
            if batch.prev_batch and token is not None:
                try:
                    batch.events = await self._fill_gaps(batch.prev_batch, token) + batch.events
                except GatewayError as exc:
                    # Without the gap the token must not advance: try the same sync again.
                    log.warning("could not fill a timeline gap: %s", exc)
                    await self._sleep(backoff * random.uniform(1.0, 1.5))
                    backoff = min(MAX_BACKOFF_S, backoff * 2)
                    continue
            result = await self.ingest.apply_batch(batch)
            if result.applied or result.failed:
                log.info(
                    "batch: %d applied, %d duplicates, %d failed, %d queued",
                    result.applied,
                    result.duplicates,
                    result.failed,
                    result.queued,
                )
            token = batch.next_batch or token
            first = False
            self.batches += 1
            self.wake_sender()
            for invite in batch.invites:
                self._pending_invites[invite.room_id] = invite
            await self._handle_invites()
            if batch.limited_rooms:
                try:
                    fixed = await self.reconciler.reconcile(batch.limited_rooms)
                    log.info(
                        "timeline gap in %d rooms: %d events recovered",
                        len(batch.limited_rooms),
                        fixed,
                    )
                except GatewayError as exc:
                    log.warning("reconciliation postponed: %s", exc)
                self.wake_sender()
            if self.gateway.crypto is not None and (
                got_keys or loop.time() - self._held_checked >= HELD_RETRY_S
            ):
                self._held_checked = loop.time()
                await self.release_held()
            if self._on_first_batch is not None:
                callback, self._on_first_batch = self._on_first_batch, None
                await callback()
            self.synced.set()
            self.synced = asyncio.Event()

    async def _absorb_keys(self, raw: Any) -> bool:
        """With encryption: give the Olm machine the keys in a response, then decrypt its
        timelines in place (what stays encrypted is held by the batch apply). True when room keys
        arrived. A failure here never holds the batch back: the keys are kept by the store
        and the housekeeping calls are made again after the next sync."""
        crypto = self.gateway.crypto
        if crypto is None or not isinstance(raw, dict):
            return False
        got = False
        try:
            got = await crypto.absorb(raw)
        except GatewayError as exc:
            log.warning("key housekeeping postponed: %s", exc)
        except Exception:
            log.exception(
                "the keys of a sync response could not be read (ref %s)", secrets.token_hex(3)
            )
        try:
            crypto.decrypt_timeline(raw)
        except Exception:
            log.exception("decrypting a sync response failed (ref %s)", secrets.token_hex(3))
        return got

    async def release_held(self) -> int:
        """Try again the held encrypted events whose session key has arrived, wherever they
        are in the table (so no flood of events whose keys never come can keep them waiting):
        apply them (oldest first, each with its original event ID and receipt time, judged
        now, see `Batches.apply_batch`), drop the refused ones, and tell the senders of those
        unreadable for too long. Returns how many were applied or dropped."""
        crypto = self.gateway.crypto
        if crypto is None:
            return 0
        settings = self.settings
        ready: dict[int, list[InboundEvent]] = {}
        released: dict[int, list[str]] = {}
        sessions = [s for s in await self.ingest.held_sessions() if crypto.has_key(*s)]
        for held in await self.ingest.held_in_sessions(sessions):
            try:
                event = json.loads(held.raw)
            except ValueError:
                event = None
            result = crypto.decrypt(held.room_id, event) if isinstance(event, dict) else None
            if result is not None and result.outcome is Outcome.WAITING:
                continue
            released.setdefault(held.received_at, []).append(held.event_id)
            if result is None or result.event is None:
                log.warning("held event %s dropped: %s", held.event_id, result and result.reason)
                continue
            decoded = decode_event(
                held.room_id, result.event, settings.bot_user_id, settings.prefix
            )
            if decoded is not None:
                ready.setdefault(held.received_at, []).append(decoded)
        for received_at in sorted(released):
            batch = SyncBatch(
                next_batch="",
                events=ready.get(received_at, []),
                released=released[received_at],
                received_at=received_at,
            )
            await self.ingest.apply_batch(batch)
        if released:
            log.info("%d held encrypted events released", sum(map(len, released.values())))
            self.wake_sender()
        if await self.ingest.tell_unreadable():
            self.wake_sender()
        return sum(map(len, released.values()))

    async def _pending_invites_at_start(self) -> None:
        """Invites still pending from before a restart: an incremental sync does not repeat
        them, so read them from a sync without a token (timelines and state left out)."""
        try:
            raw = await self.gateway.sync(None, 0, invites_filter())
        except GatewayError as exc:
            log.warning("could not read pending invites at start: %s", exc)
            return
        batch = decode_sync(raw, self.settings.bot_user_id, "", initial=True)
        for invite in batch.invites:
            self._pending_invites[invite.room_id] = invite

    async def _fill_gaps(self, prev_batch: dict[str, str], since: str) -> list[InboundEvent]:
        """Events a `limited` timeline left out, oldest first, read back through `/messages`
        from the gap's end down to `since`, the token the sync started from.

        Events applied before (e.g. by reconciliation) are skipped; a gap longer than
        MAX_GAP_PAGES pages is logged (the ballots are still reconciled from relations).
        """
        settings = self.settings
        missed: list[InboundEvent] = []
        for room_id, token in prev_batch.items():
            decoded: list[InboundEvent] = []
            page_token: str | None = token
            for _ in range(MAX_GAP_PAGES):
                if page_token is None:
                    break
                raw_events, page_token = await self.gateway.messages(room_id, page_token, since)
                decoded.extend(
                    ev
                    for raw in raw_events
                    if (ev := decode_event(room_id, raw, settings.bot_user_id, settings.prefix))
                )
            else:
                log.warning("timeline gap in %s longer than %d pages", room_id, MAX_GAP_PAGES)
            unseen = await self.ingest.unseen([ev.event_id for ev in decoded])
            room_events = [ev for ev in reversed(decoded) if ev.event_id in unseen]
            if room_events:
                log.info("filled a timeline gap in %s: %d events", room_id, len(room_events))
            missed.extend(room_events)
        return missed

    async def _handle_invites(self) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._dms_pruned >= DM_PRUNE_EVERY_S:
            self._dms_pruned = now
            try:
                await self._leave(await self.dms.prune(), "unused direct chat")
            except Exception:
                # Housekeeping: it must never stop the sync loop; it runs again in an hour.
                log.exception(
                    "looking for unused direct chats failed (ref %s)", secrets.token_hex(3)
                )
        for room_id, invite in list(self._pending_invites.items()):
            try:
                if await self.invites.should_accept(invite):
                    log.info("accepting invite to %s from %s", room_id, invite.inviter)
                    await self.gateway.join(room_id)
                    if invite.is_direct and invite.inviter:
                        older = await self.dms.remember(invite.inviter, room_id)
                        await self._leave(older, "an outsider's older direct chat")
                else:
                    log.info("rejecting invite to %s from %s", room_id, invite.inviter)
                    await self.gateway.leave(room_id)
            except GatewayError as exc:
                if exc.transient:
                    continue  # try again after the next sync
                log.warning("invite to %s: %s", room_id, exc)
            del self._pending_invites[room_id]

    async def _leave(self, rooms: list[str], why: str) -> None:
        """Leave rooms the direct chats have forgotten; one that cannot be left now stays joined
        (it is no longer anyone's direct chat, so nothing is sent there)."""
        for room_id in rooms:
            try:
                await self.gateway.leave(room_id)
                log.info("left %s: %s", room_id, why)
            except GatewayError as exc:
                log.warning("could not leave %s: %s", room_id, exc)
