"""Everything that happens at a time: deadlines, reminders, digests and chair nudges.

The database says what is due; the timers only wake us. Every wake-up re-reads the database
and records what it sent (reminders per member and slot, the last digest, the last nudge),
so firing twice sends nothing twice and a restart rebuilds every job.

Jobs that count many ballots (the tally refresh, the digest) take one short transaction per
ballot and yield between them: at 10,000 members a ballot's count takes tens of
milliseconds, and one transaction over all of them held the writer lock, and the loop, for
over a second (bench/stalls.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.domain.clock_rules import reminder_time, zone
from bot.domain.lifecycle import RequestState
from bot.domain.request import Request
from bot.matrix import render
from bot.services.ballots import Ballots
from bot.services.clock import Clock
from bot.services.deadlines import Timers
from bot.services.outbox import Doorbell, Outbox, dm
from bot.services.plans import AfterCommit
from bot.services.reach import remind_in_room
from bot.services.settings import Settings
from storage.backend import Backend
from storage.repo import Repository

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
TALLY_EVERY_S = 3.0  # how often changed live tallies are edited
LAST_DIGEST = "last_digest_at"  # each group's: `last_digest_at:<group id>` in meta


@dataclass(frozen=True, slots=True)
class OpenCounts:
    """What the digest says of an open ballot: who took part, of how many, objections open."""

    participated: int
    eligible: int
    objections: int


CHAIRS_NOTE = "@chairs-note"  # reminders_sent marker: the silent-groups note went out


class Calendar:
    """Schedules and fires the time-driven work. Construction does no I/O."""

    def __init__(
        self,
        settings: Settings,
        db: Backend,
        clock: Clock,
        ballots: Ballots,
        doorbell: Doorbell,
        timers: Timers | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.ballots = ballots
        self.doorbell = doorbell
        self.timers = timers  # None: no scheduler (tests that fire jobs by hand)

    @property
    def _last_digest(self) -> str:
        """The meta key of this group's last digest time."""
        return f"{LAST_DIGEST}:{self.settings.group_id}"

    # --- per request ------------------------------------------------------------------

    async def follow(self, request_ids: Iterable[int]) -> None:
        """After a commit: make the timers of these requests match the database (another
        group's requests are its calendar's)."""
        ids = sorted(set(request_ids))
        if not ids or self.timers is None:
            return
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            zones = await repo.member_zones(self.settings.group_id)
            for request_id in ids:
                req = await repo.request(request_id)
                if req is not None and req.group_id != self.settings.group_id:
                    continue
                if req is None or req.state is not RequestState.OPEN:
                    self.unschedule(request_id)
                else:
                    await self.schedule(repo, req, zones)

    async def run(self, plan: AfterCommit) -> None:
        """After one of the calendar's jobs committed: do what it planned (the calendar's
        jobs never change a decision, so there is no public site to regenerate)."""
        await plan.run(self, None, self.doorbell)

    async def restore(self, *, housekeeping: bool = True) -> int:
        """At start: schedule every open ballot (overdue deadlines fire at once), the digest
        and the chairs' nudges; returns how many ballots are open. `housekeeping`: also the
        bot-wide pruning (one group's calendar does it for the bot)."""
        if self.timers is None:
            return 0
        group = self.settings.group_id
        async with self.db.transaction() as tx:
            open_ids = [r.id for r in await Repository(tx).requests(group, [RequestState.OPEN])]
        await self.follow(open_ids)
        s = self.settings
        if s.digest_cron is not None:
            self.timers.cron(f"digest:{group}", s.digest_cron, zone(s.group_tz), self.fire_digest)
        self.timers.every(f"nudge:{group}", 3_600, self.nudge_chairs)
        self.timers.every(f"tallies:{group}", TALLY_EVERY_S, self.refresh_tallies)
        if housekeeping:  # bot-wide: once, not once per group
            self.timers.every("prune", 86_400, self.prune)
            await self.prune()
        return len(open_ids)

    async def refresh_tallies(self) -> None:
        """Edit the live tallies that changed since the last run (at most one edit per ballot
        every TALLY_EVERY_S seconds: kind to the homeserver's rate limits and to the ingest
        path, which only marks them)."""
        async with self.db.transaction() as tx:
            dirty = await Repository(tx).dirty_tallies(self.settings.group_id)
        for n, request_id in enumerate(dirty):
            if n:
                await asyncio.sleep(0)  # between ballots: the loop and other transactions
            now = self.clock.now_ms()
            plan = AfterCommit()
            async with self.db.transaction() as tx:
                repo = Repository(tx)
                # The mark is cleared with the edit it asked for: a failure keeps both.
                await repo.tally_refreshed(request_id)
                await self.ballots.retally(repo, Outbox(repo, now, plan), now, [request_id])
            await self.run(plan)

    async def prune(self) -> None:
        """Forget sent messages and processed event IDs older than `storage.retention`
        (decisions, positions and records are never pruned)."""
        before = self.clock.now_ms() - self.settings.retention_ms
        async with self.db.transaction() as tx:
            removed = await Repository(tx).prune(before)
        if removed:
            log.info("pruned %d sent messages and processed event IDs", removed)

    async def fire_deadline(self, request_id: int) -> None:
        """The deadline timer woke us: close the ballot if it is still open and due."""
        now = self.clock.now_ms()
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            req = await repo.request(request_id)
            if req is None or req.state is not RequestState.OPEN:
                return
            if req.deadline_at > now:
                await self.schedule(repo, req)  # moved later meanwhile
                return
            log.info("deadline of request %d reached", request_id)
            plan = AfterCommit()
            await self.ballots.close_ballot(repo, Outbox(repo, now, plan), req, now)
        await self.run(plan)

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
        self.timers.at(f"req:{req.id}:deadline", req.deadline_at, self.fire_deadline, req.id)
        offsets = sorted(self.settings.reminders_ms, reverse=True)
        if not offsets:
            return
        if zones is None:
            zones = await repo.member_zones(self.settings.group_id)
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
        return reminder_time(due, zone(tz, self.settings.group_tz), opened)

    def unschedule(self, request_id: int) -> None:
        """Drop every job of a request (closed, decided or blocked)."""
        if self.timers is not None:
            self.timers.cancel_prefix(f"req:{request_id}:")

    async def fire_reminder(self, request_id: int, slot: str, when: int, last: bool) -> None:
        """Remind the members whose send time for `slot` is `when` and who still have no
        position (once per slot each)."""
        now = self.clock.now_ms()
        plan = AfterCommit()
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            out = Outbox(repo, now, plan)
            req = await repo.request(request_id)
            if req is None or req.state is not RequestState.OPEN:
                return
            if not slot.endswith(f"@{req.deadline_at}"):
                return  # the deadline moved; the new schedule has its own slots
            offset = int(slot.split("@", 1)[0])
            if any(o < offset and req.deadline_at - o <= now for o in self.settings.reminders_ms):
                return  # after downtime a later reminder is due too: send only that one
            due = req.deadline_at - offset
            opened = req.opened_at or req.created_at
            zones = await self._voter_zones(repo, req)
            members = tuple(
                m for m, tz in zones.items() if self._send_time(due, tz, opened) == when
            )
            sent = await self.remind(repo, out, req, now, slot, members)
            if last:
                await self._note_silent_groups(repo, out, req, now, slot)
        log.info("request %d: %d reminders (%s)", request_id, sent, slot)
        await self.run(plan)

    async def _voter_zones(self, repo: Repository, req: Request) -> dict[str, str | None]:
        """Time zone (or None) of every member who counts on the request (the rule's voters)."""
        tally = await self.ballots.count(repo, req)
        return await repo.member_tzs([v.user_id for v in tally.voters])

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
        tally = await self.ballots.count(repo, req)
        tzs = await repo.member_tzs([v.user_id for v in tally.voters])
        targets = sorted(tzs) if members is None else [m for m in members if m in tzs]
        current = tally.current
        done = await repo.reminded(req.id, slot)
        if self.settings.allow_room:
            # A group whose members are all in the main room: one message there reaches
            # them (see bot/services/reach.py); a reminder is not personal, and the room
            # speaks the group's language.
            todo = [m for m in targets if m not in current and m not in done]
            group = self.settings.lang
            when = group.when(req.deadline_at, zone(self.settings.group_tz), now_ms=now)
            left = group.duration(req.deadline_at - now)
            return await remind_in_room(repo, out, self.settings, req, todo, slot, when, left, now)
        # Each member is reminded in their own language (`!cb language`), else the group's.
        chosen = await repo.languages_of(targets)
        count = 0
        for member in targets:
            if member in current or member in done:
                continue
            tz = zone(tzs.get(member), self.settings.group_tz)
            lang = self.settings.language(chosen.get(member))
            msg = render.reminder(
                req,
                member,
                lang.when(req.deadline_at, tz, now_ms=now),
                lang.duration(req.deadline_at - now),
                self.settings.prefix,
                lang,
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
        sense = await self.ballots.sense(repo, req)
        lang = self.settings.lang
        silent = [g.name for g in sense.by_stakeholder if g.members and g.silent]
        named = list(silent)
        regions = [f"the {name} region" for name in sense.silent_regions]
        silent += regions
        named += [lang._("the %(name)s region", name=name) for name in sense.silent_regions]
        developing = [g.name for g in sense.by_development if g.members and g.silent]
        silent += [f"members from {name}" for name in developing]
        named += [lang._("members from %(name)s", name=name) for name in developing]
        if not silent:
            return
        chairs = sorted(self.settings.chairs)
        text = lang._(
            "Chairs: the last reminder for %(title)s went out and nobody from %(groups)s has "
            "taken part yet. Consider %(command)s so every stakeholder group can be heard.",
            title=render.inline(render.title(req, lang)),
            groups=", ".join(named),
            command=f"{self.settings.prefix} extend 3d",
        )
        await out.message(
            render.notice(
                "reply", req.id, text, chairs, lang, event="silent-groups", groups=silent
            ),
            request_id=req.id,
        )

    # --- group-wide -------------------------------------------------------------------

    async def fire_digest(self) -> None:
        """Post the digest in the main room (cron job, `digest` command, missed run)."""
        counts = await self.open_counts()
        now = self.clock.now_ms()
        plan = AfterCommit()
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            await self.post_digest(repo, Outbox(repo, now, plan), now, counts)
        await self.run(plan)

    async def fire_digests(self, group_ids: set[str]) -> None:
        """Post the digest if this calendar's group is among those asked for."""
        if self.settings.group_id in group_ids:
            await self.fire_digest()

    async def open_counts(self) -> dict[int, OpenCounts]:
        """Each open ballot's counts for the digest, one transaction per ballot, yielding in
        between: the writer lock is never held across all of them."""
        async with self.db.transaction() as tx:
            ids = [
                r.id
                for r in await Repository(tx).requests(self.settings.group_id, [RequestState.OPEN])
            ]
        counts: dict[int, OpenCounts] = {}
        for request_id in ids:
            await asyncio.sleep(0)  # between ballots: the loop and other transactions
            async with self.db.transaction() as tx:
                repo = Repository(tx)
                req = await repo.request(request_id)
                if req is not None and req.state is RequestState.OPEN:
                    counts[request_id] = await self._open_count(repo, req)
        return counts

    async def _open_count(self, repo: Repository, req: Request) -> OpenCounts:
        sense = await self.ballots.sense(repo, req)
        return OpenCounts(sense.participated, sense.eligible, len(sense.open_objections))

    async def post_digest(
        self,
        repo: Repository,
        out: Outbox,
        now: int,
        counts: Mapping[int, OpenCounts] | None = None,
    ) -> None:
        """Queue the digest: open requests, objections, drafts awaiting the chair, outcomes.

        `counts` are the open ballots' figures taken just before (`open_counts`); a ballot
        missing from them (opened since, or no `counts`) is counted here."""
        counts = counts or {}
        since = int(await repo.get_meta(self._last_digest) or 0)
        tz = zone(self.settings.group_tz)
        lang = self.settings.lang
        lines = [lang._("📰 Digest — %(group)s", group=render.clean(self.settings.group_name, 200))]
        group = self.settings.group_id
        open_requests = await repo.requests(group, [RequestState.OPEN])
        data: dict[str, list[int]] = {
            "open": [],
            "awaiting_chair": [],
            "triage": [],
            "appeals": [],
            "decided": [],
        }
        if open_requests:
            lines.append(lang._("Open for positions:"))
        for req in reversed(open_requests):
            c = counts.get(req.id) or await self._open_count(repo, req)
            lines.append(
                "  "
                + lang._(
                    "#%(id)s %(name)s — closes %(when)s (in %(left)s); %(participated)s/"
                    "%(eligible)s took part",
                    id=req.number,
                    name=render.inline(req.applicant.display, 100),
                    when=lang.when(req.deadline_at, tz, now_ms=now),
                    left=lang.duration(req.deadline_at - now),
                    participated=lang.number(c.participated),
                    eligible=lang.number(c.eligible),
                )
                + (
                    lang.ngettext("; %(n)s objection open", "; %(n)s objections open", c.objections)
                    if c.objections
                    else ""
                )
            )
            data["open"].append(req.id)
        drafted = await repo.requests(group, [RequestState.DRAFTED])
        if drafted:
            lines.append(lang._("Awaiting the chair:"))
        for req in reversed(drafted):
            waited = lang.duration(now - (req.closed_at or now))
            lines.append(
                "  "
                + lang._(
                    "#%(id)s %(name)s — draft: %(proposal)s (waiting %(waited)s)",
                    id=req.number,
                    name=render.inline(req.applicant.display, 100),
                    proposal=render.proposal_label(req.proposal, lang),
                    waited=waited,
                )
            )
            data["awaiting_chair"].append(req.id)
        triage = sorted(await repo.requests(group, [RequestState.TRIAGE]), key=lambda r: r.id)
        if triage:
            lines.append(
                lang._(
                    "Applications awaiting triage (%(command)s):",
                    command=f"{self.settings.prefix} accept N",
                )
            )
        for req in triage:
            # Not yet accepted by a chair: the number and the MXID, never the chosen name.
            lines.append(f"  {render.inline(render.triage_title(req, lang))}")
            data["triage"].append(req.id)
        appeals = await repo.appeals(open_only=True)
        if appeals:
            lines.append(lang._("Appeals awaiting a chair:"))
        for appeal in appeals:
            # That it is open, not its text (the chairs have it by DM, the room in its room).
            lines.append(
                "  "
                + lang._(
                    "appeal #%(id)s of request #%(request)s by %(member)s",
                    id=appeal.id,
                    request=appeal.request_id,
                    member=appeal.member,
                )
            )
            data["appeals"].append(appeal.id)
        decided = await repo.decided_since(group, since)
        if decided:
            lines.append(lang._("Decided since the last digest:"))
        for req in decided:
            outcome = lang._(render.OUTCOME_LABELS[req.outcome.value]) if req.outcome else "?"
            lines.append(
                "  "
                + lang._(
                    "#%(id)s %(name)s — %(outcome)s (by %(chair)s, %(when)s)",
                    id=req.number,
                    name=render.inline(req.applicant.display, 100),
                    outcome=outcome,
                    chair=req.decided_by,
                    when=lang.when(req.decided_at or now, tz, now_ms=now),
                )
            )
            data["decided"].append(req.id)
        if len(lines) == 1:
            lines.append(lang._("Nothing is open, waiting or newly decided."))
        msg = render.notice("digest", None, "\n".join(lines), (), self.settings.lang, **data)
        await out.message(msg, room_id=self.settings.main_room_id)
        await repo.set_meta(self._last_digest, str(now))

    async def catch_up_digest(self) -> bool:
        """At start: post one digest if a scheduled one was missed while the bot was down."""
        cron = self.settings.digest_cron
        if cron is None or self.timers is None:
            return False
        now = self.clock.now_ms()
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            last = await repo.get_meta(self._last_digest)
            if last is None:  # first start: nothing was missed
                await repo.set_meta(self._last_digest, str(now))
                return False
        nxt = self.timers.next_cron_ms(cron, zone(self.settings.group_tz), int(last))
        if nxt is not None and nxt <= now:
            log.info("a digest was missed while the bot was down: posting one now")
            await self.fire_digest()
            return True
        return False

    async def nudge_chairs(self) -> None:
        """Remind the chairs (once a day) of drafts that have waited more than a day."""
        now = self.clock.now_ms()
        plan = AfterCommit()
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            out = Outbox(repo, now, plan)
            for req in await repo.requests(self.settings.group_id, [RequestState.DRAFTED]):
                if (req.closed_at or now) > now - DAY_MS:
                    continue
                if req.nudged_at is not None and req.nudged_at > now - DAY_MS:
                    continue
                chairs = sorted(self.settings.chairs)
                lang = self.settings.lang
                text = lang._(
                    "Chairs: the draft sense of the room for %(title)s has waited %(waited)s. "
                    "Confirm it (%(command)s) or decide with a rationale.",
                    title=render.inline(render.title(req, lang)),
                    waited=lang.duration(now - (req.closed_at or now)),
                    command=f"{self.settings.prefix} confirm",
                )
                await out.message(
                    render.notice("reply", req.id, text, chairs, lang, event="nudge"),
                    request_id=req.id,
                )
                await repo.update_request(req.id, nudged_at=now)
        await self.run(plan)
