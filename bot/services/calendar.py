"""Everything that happens at a time: deadlines, reminders, digests and chair nudges.

The database says what is due; the timers only wake us. Every wake-up re-reads the database
and records what it sent (reminders per member and slot, the last digest, the last nudge),
so firing twice sends nothing twice and a restart rebuilds every job.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.domain.clock_rules import format_local, reminder_time, zone
from bot.domain.durations import format_duration, format_utc
from bot.domain.lifecycle import RequestState
from bot.domain.request import Request
from bot.matrix import render
from bot.services.outbox import Outbox, dm
from storage.repo import Repository

if TYPE_CHECKING:
    from bot.services.engine import Engine

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
LAST_DIGEST = "last_digest_at"
CHAIRS_NOTE = "@chairs-note"  # reminders_sent marker: the silent-groups note went out


class Calendar:
    """Schedules and fires the time-driven work of the engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def timers(self):  # type: ignore[no-untyped-def]
        """The engine's timers (None in tests without a scheduler)."""
        return self.engine.timers

    # --- per request ------------------------------------------------------------------

    async def schedule(
        self, repo: Repository, req: Request, zones: set[str | None] | None = None
    ) -> None:
        """(Re)schedule a request's deadline and reminders from what is stored.

        One reminder job per slot and distinct send time: members' zones are few, so this
        costs O(zones) per request, not O(members); who gets reminded is worked out when
        the job fires. `zones` lets a caller scheduling many requests look them up once.
        """
        if self.timers is None:
            return
        self.timers.cancel_prefix(f"req:{req.id}:")
        if req.state is not RequestState.OPEN:
            return
        e = self.engine
        self.timers.at(f"req:{req.id}:deadline", req.deadline_at, e.fire_deadline, req.id)
        offsets = sorted(e.settings.reminders_ms, reverse=True)
        if not offsets:
            return
        if zones is None:
            zones = await repo.member_zones()
        opened = req.opened_at or req.created_at
        for offset in offsets:
            due = req.deadline_at - offset
            if due <= opened:
                continue  # the ballot is shorter than this reminder's lead time
            slot = f"{offset}@{req.deadline_at}"
            last = offset == offsets[-1]
            for when in {self._send_time(due, tz, opened) for tz in zones | {None}}:
                job = f"req:{req.id}:remind:{slot}:{when}"
                self.timers.at(job, when, self.fire_reminder, req.id, slot, when, last)

    def _send_time(self, due: int, tz: str | None, opened: int) -> int:
        """When a member in `tz` gets a reminder due at `due` (depends on nothing else, so
        scheduling and firing agree)."""
        return reminder_time(due, zone(tz, self.engine.settings.group_tz), opened)

    def unschedule(self, request_id: int) -> None:
        """Drop every job of a request (closed, decided or blocked)."""
        if self.timers is not None:
            self.timers.cancel_prefix(f"req:{request_id}:")

    async def fire_reminder(self, request_id: int, slot: str, when: int, last: bool) -> None:
        """Remind the members whose send time for `slot` is `when` and who still have no
        position (once per slot each)."""
        e = self.engine
        now = e.clock.now_ms()
        async with e.db.transaction() as tx:
            repo = Repository(tx)
            req = await repo.request(request_id)
            if req is None or req.state is not RequestState.OPEN:
                return
            if not slot.endswith(f"@{req.deadline_at}"):
                return  # the deadline moved; the new schedule has its own slots
            offset = int(slot.split("@", 1)[0])
            if any(o < offset and req.deadline_at - o <= now for o in e.settings.reminders_ms):
                return  # after downtime a later reminder is due too: send only that one
            due = req.deadline_at - offset
            opened = req.opened_at or req.created_at
            zones = await repo.voter_zones(req.id)
            members = tuple(
                m for m, tz in zones.items() if self._send_time(due, tz, opened) == when
            )
            sent = await self.remind(repo, Outbox(repo, now), req, now, slot, members)
            if last:
                await self._note_silent_groups(repo, Outbox(repo, now), req, now, slot)
        log.info("request %d: %d reminders (%s)", request_id, sent, slot)
        e.wake()

    async def remind(
        self,
        repo: Repository,
        out: Outbox,
        req: Request,
        now: int,
        slot: str,
        members: tuple[str, ...] | None = None,
    ) -> int:
        """Queue a reminder DM to each eligible member without a position; returns how many."""
        e = self.engine
        tzs = await repo.voter_zones(req.id)
        targets = sorted(tzs) if members is None else [m for m in members if m in tzs]
        current = await repo.current(req.id)
        done = await repo.reminded(req.id, slot)
        count = 0
        for member in targets:
            if member in current or member in done:
                continue
            tz = zone(tzs.get(member), e.settings.group_tz)
            msg = render.reminder(
                req,
                member,
                format_local(req.deadline_at, tz),
                format_duration(req.deadline_at - now),
                e.settings.prefix,
            )
            await out.message(msg, room_id=dm(member), request_id=req.id)
            await repo.mark_reminded(req.id, slot, member, now)
            count += 1
        return count

    async def _note_silent_groups(
        self, repo: Repository, out: Outbox, req: Request, now: int, slot: str
    ) -> None:
        if CHAIRS_NOTE in await repo.reminded(req.id, slot):
            return
        await repo.mark_reminded(req.id, slot, CHAIRS_NOTE, now)
        sense = await self.engine.sense(repo, req)
        silent = [g.name for g in sense.by_stakeholder if g.members and g.silent]
        if not silent:
            return
        chairs = sorted(self.engine.settings.chairs)
        text = (
            f"Chairs: the last reminder for {render.clean(req.title)} went out and nobody from "
            f"{', '.join(silent)} has taken part yet. Consider "
            f"{self.engine.settings.prefix} extend 3d so every stakeholder group can be heard."
        )
        await out.message(
            render.notice("reply", req.id, text, chairs, event="silent-groups", groups=silent),
            request_id=req.id,
        )

    # --- group-wide -------------------------------------------------------------------

    async def fire_digest(self) -> None:
        """Post the digest in the main room (cron job, `digest` command, missed run)."""
        e = self.engine
        now = e.clock.now_ms()
        async with e.db.transaction() as tx:
            repo = Repository(tx)
            await self.post_digest(repo, Outbox(repo, now), now)
        e.wake()

    async def post_digest(self, repo: Repository, out: Outbox, now: int) -> None:
        """Queue the digest: open requests, objections, drafts awaiting the chair, outcomes."""
        e = self.engine
        since = int(await repo.get_meta(LAST_DIGEST) or 0)
        tz = zone(e.settings.group_tz)
        lines = [f"📰 Digest — {render.clean(e.settings.group_name, 200)}"]
        open_requests = await repo.requests([RequestState.OPEN])
        data: dict[str, list[int]] = {"open": [], "awaiting_chair": [], "decided": []}
        if open_requests:
            lines.append("Open for positions:")
        for req in reversed(open_requests):
            sense = await e.sense(repo, req)
            objections = len(sense.open_objections)
            lines.append(
                f"  #{req.id} {render.clean(req.applicant.display, 100)} — closes "
                f"{format_local(req.deadline_at, tz)} (in "
                f"{format_duration(req.deadline_at - now)}); {sense.participated}/"
                f"{sense.eligible} took part"
                + (f"; {objections} objection(s) open" if objections else "")
            )
            data["open"].append(req.id)
        drafted = await repo.requests([RequestState.DRAFTED])
        if drafted:
            lines.append("Awaiting the chair:")
        for req in reversed(drafted):
            waited = format_duration(now - (req.closed_at or now))
            lines.append(
                f"  #{req.id} {render.clean(req.applicant.display, 100)} — draft: "
                f"{render.proposal_label(req.proposal)} (waiting {waited})"
            )
            data["awaiting_chair"].append(req.id)
        decided = await repo.decided_since(since)
        if decided:
            lines.append("Decided since the last digest:")
        for req in decided:
            outcome = req.outcome.value if req.outcome else "?"
            lines.append(
                f"  #{req.id} {render.clean(req.applicant.display, 100)} — {outcome} "
                f"(by {req.decided_by}, {format_utc(req.decided_at or now)})"
            )
            data["decided"].append(req.id)
        if len(lines) == 1:
            lines.append("Nothing is open, waiting or newly decided.")
        msg = render.notice("digest", None, "\n".join(lines), (), **data)
        await out.message(msg, room_id=e.settings.main_room_id)
        await repo.set_meta(LAST_DIGEST, str(now))

    async def catch_up_digest(self) -> bool:
        """At start: post one digest if a scheduled one was missed while the bot was down."""
        e = self.engine
        cron = e.settings.digest_cron
        if cron is None or self.timers is None:
            return False
        now = e.clock.now_ms()
        async with e.db.transaction() as tx:
            repo = Repository(tx)
            last = await repo.get_meta(LAST_DIGEST)
            if last is None:  # first start: nothing was missed
                await repo.set_meta(LAST_DIGEST, str(now))
                return False
        nxt = self.timers.next_cron_ms(cron, zone(e.settings.group_tz), int(last))
        if nxt is not None and nxt <= now:
            log.info("a digest was missed while the bot was down: posting one now")
            await self.fire_digest()
            return True
        return False

    async def nudge_chairs(self) -> None:
        """Remind the chairs (once a day) of drafts that have waited more than a day."""
        e = self.engine
        now = e.clock.now_ms()
        async with e.db.transaction() as tx:
            repo = Repository(tx)
            out = Outbox(repo, now)
            for req in await repo.requests([RequestState.DRAFTED]):
                if (req.closed_at or now) > now - DAY_MS:
                    continue
                if req.nudged_at is not None and req.nudged_at > now - DAY_MS:
                    continue
                chairs = sorted(e.settings.chairs)
                text = (
                    f"Chairs: the draft sense of the room for {render.clean(req.title)} has "
                    f"waited {format_duration(now - (req.closed_at or now))}. Confirm it "
                    f"({e.settings.prefix} confirm) or decide with a rationale."
                )
                await out.message(
                    render.notice("reply", req.id, text, chairs, event="nudge"), request_id=req.id
                )
                await repo.update_request(req.id, nudged_at=now)
        e.wake()
