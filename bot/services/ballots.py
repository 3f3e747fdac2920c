"""Ballot use cases: file, open, record an input, draft, close, decide, block.

Every method runs inside the caller's transaction and queues what to send in its `Outbox`;
timer changes, drafts and tallies to redo and the public site are noted in the job's plan
(`out.after`, `bot.services.plans`) and done by the job at its end or after its commit, so a
rolled-back savepoint can never leave a timer behind or missing. What
counts is decided by `bot.domain.counting.count` only: this service loads raw rows, asks the
rule, and stores what follows (objection rows, the frozen record).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import ParamSpec, TypeVar

from bot.domain.counting import (
    Ballot,
    Standing,
    Status,
    Tally,
    count,
    in_time,
    standing,
    still_eligible,
)
from bot.domain.errors import Refusal
from bot.domain.hums import Hum, HumReport, Side, Strength, hum_report_given
from bot.domain.intake import incomplete
from bot.domain.ledger import PositionInput, Source
from bot.domain.lifecycle import (
    IN_PROGRESS,
    UNDECIDED,
    Action,
    LifecycleError,
    Outcome,
    RequestState,
    transition,
)
from bot.domain.objections import Objection, ObjectionState, ObjectionStep, objection_step
from bot.domain.positions import Position
from bot.domain.process import RoughShape, rough_shape
from bot.domain.record import HumAggregate, Record
from bot.domain.request import Applicant, Request
from bot.domain.sense import Sense
from bot.domain.text import N_, Phrase, Span, phrase
from bot.i18n.catalog import Language
from bot.matrix import render
from bot.matrix.rooms import (
    POLL_END,
)
from bot.services.export import freeze, live_record
from bot.services.opening import queue_room
from bot.services.outbox import CARD, DRAFT, POLL, TALLY, TIDY, Outbox, dm
from bot.services.reach import tell_applicant
from bot.services.settings import Settings
from storage.repo import MemberRows, Repository, Rows

log = logging.getLogger(__name__)

DAY_MS = 86_400_000

# A ballot with more rows than this is counted off the event loop (`asyncio.to_thread`): at
# 10,000 members the rule takes tens of milliseconds, during which nothing would be read
# from or sent to the homeserver (bench/stalls.py). Smaller ones cost less than the hand-off.
OFF_LOOP_ROWS = 2_000
_P = ParamSpec("_P")
_T = TypeVar("_T")

# A request takes inputs once its ballot is open; inputs to a closed or decided ballot are
# stored (the rule shows them as late) and count again only after a reopen.
TAKES_INPUTS = (RequestState.OPEN, RequestState.DRAFTED, RequestState.DECIDED)


class Ballots:
    """The ballot use cases. Construction does no I/O."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # --- counting ---------------------------------------------------------------------

    def window(self, req: Request) -> Ballot:
        """The request's room and window, as the counting rule sees them."""
        s = self.settings
        return Ballot(req.room_id, req.closed_at, s.clock_skew_ms, s.bot_user_id)

    def tally(self, req: Request, rows: Rows) -> Tally:
        """The one counting rule over a request's rows."""
        return count(self.window(req), rows.snapshot, rows.removed, rows.inputs, rows.redactions)

    def accepts(self, req: Request, ts: int, now: int) -> bool:
        """Whether a command sent at `ts` and received `now` can still take a position."""
        if req.state is RequestState.OPEN:
            return True
        return req.state is RequestState.DRAFTED and in_time(ts, now, self.window(req))

    async def is_voter(self, repo: Repository, req: Request, member: str) -> bool:
        """Whether the member counts on this request (the rule's eligibility)."""
        window = self.window(req)
        rows = await repo.member_rows(req.id, member)
        return any(still_eligible(e.removed_at, window) for e in rows.eligible)

    async def count(self, repo: Repository, req: Request) -> Tally:
        """Load a request's rows and count them."""
        rows = await repo.rows(req.id)
        return await _pure(len(rows.eligible) + len(rows.inputs), self.tally, req, rows)

    async def standing(self, repo: Repository, req: Request) -> Standing:
        """Who counts and each member's current position, by the same rule as `count`, for
        readers that need nothing more (no status per input): the draft, the live tally."""
        rows = await repo.plain_rows(req.id)
        args = (self.window(req), rows.snapshot, rows.removed, rows.inputs, rows.redactions)
        return await _pure(len(rows.snapshot) + len(rows.inputs), standing, *args)

    async def sense(self, repo: Repository, req: Request) -> Sense:
        """The draft sense of the room from what is stored now."""
        now = await self.standing(repo, req)
        objections = await repo.objections(req.id)
        return await _pure(len(now.voters), now.sense, objections, self.settings.quorum)

    async def hums(self, repo: Repository, req: Request) -> Phrase:
        """What the room hears of the hums: each side's loudness, never names or counts, and
        nothing before the ballot closed."""
        return (await self._hum_report(repo, req)).phrase()

    async def _hum_report(
        self, repo: Repository, req: Request, now: Standing | None = None
    ) -> HumReport:
        """The hums of members who count now (eligible, on the roster, not recused): a removed
        or recused member's hum is dropped. Reported only once closed, from `hum_min` on.
        `now` is the request's standing when the caller has it already."""
        if now is None:
            now = await self.standing(repo, req)
        stored = await repo.hums(req.id)
        recused = {m for m, p in now.positions.items() if p is Position.RECUSE}
        counting = [v.user_id for v in now.voters if v.user_id not in recused] if stored else []
        keys = await _pure(len(counting), self._hummers, req.id, counting)  # one HMAC each
        hums = {
            hummer: Hum(Side(side), Strength(strength))
            for hummer, side, strength in stored
            if hummer in keys
        }
        closed = req.state is not RequestState.OPEN
        # The hums of every report given for this request, so that a later report cannot
        # single out the few hums that changed in between (a removal after a reopen).
        key = f"{HUMS_GIVEN}{req.id}"
        given = _load_given(await repo.get_meta(key))
        report, new = hum_report_given(hums, given, closed=closed, minimum=self.settings.hum_min)
        if new:
            await repo.set_meta(key, _dump_given([*given, hums]))
        return report

    async def hum_aggregate(self, repo: Repository, req: Request) -> HumAggregate | None:
        """The hums as a decision record may carry them (loudness only), if reportable."""
        report = await self._hum_report(repo, req)
        return HumAggregate(report.for_.value, report.against.value) if report.reported else None

    def _hummers(self, request_id: int, members: Iterable[str]) -> set[str]:
        """The hum keys of these members."""
        return {self.hummer(request_id, m) for m in members}

    def hummer(self, request_id: int, member: str) -> str:
        """The anonymous key under which a member's hum is stored."""
        msg = f"{request_id}:{member}".encode()
        return hmac.new(self.settings.hum_key, msg, hashlib.sha256).hexdigest()[:32]

    # --- positions --------------------------------------------------------------------

    async def record_input(
        self,
        repo: Repository,
        out: Outbox,
        req: Request,
        item: PositionInput,
        now: int,
        *,
        ask_reason_in_reply_to: str | None = None,
        received_at: int | None = None,
        quiet: bool = False,
    ) -> bool:
        """Append an input to the ledger and let the member's objection follow their current
        position. False when the author is not eligible (nothing is stored) or the event was
        recorded before.

        `received_at`: when an encrypted input held for its key was received. It is recorded
        under that time only while the ballot is still open when the key arrives (`now`);
        once the ballot has closed, it is recorded at `now`, late: whoever holds a key back
        cannot choose their position after the close. `quiet`: the input counts but is not
        answered (a reaction past its sender's rate limit): no prompt for an objection's
        reason."""
        if received_at is not None and req.closed_at is None:
            now = received_at
        if req.state not in TAKES_INPUTS:
            return False
        rows = await repo.member_rows(req.id, item.member)
        window = self.window(req)
        if not any(still_eligible(e.removed_at, window) for e in rows.eligible):
            log.info("input from %s ignored: not eligible on #%d", item.member, req.id)
            return False
        if not await repo.add_input(req.id, item, now):
            return False
        stored = item.recorded(now)
        rows = MemberRows(
            rows.eligible,
            [*rows.inputs, stored],
            rows.redactions,
            rows.open_objection,
            rows.latest_objection,
        )
        tally = self.tally(req, rows)
        if tally.status.get(item.event_id) is Status.COUNTED:
            out.after.retally.add(req.id)
            if req.state is RequestState.DRAFTED:
                out.after.redraft.add(req.id)  # sent in time, seen after the close
        if item.source is Source.REACTION and tally.current.get(item.member) is stored:
            await self._tidy(repo, out, req, rows, stored)
        await self.follow_objection(
            repo, out, req, item.member, now, ask_reason_in_reply_to, rows, tally, quiet=quiet
        )
        return True

    async def _tidy(
        self, repo: Repository, out: Outbox, req: Request, rows: MemberRows, current: PositionInput
    ) -> None:
        """A member changed position by reaction: remove their superseded position reactions
        from the ballot, so what members see is what counts (the rule never lets a tidied
        reaction count again).

        At most one tidy-up per member and ballot waits in the outbox: it aims at the latest
        superseded reaction, is checked again just before it is sent (`tidy_target`), and
        once sent queues the next one if any remain (`tidied`). So a member who toggles a
        reaction a hundred times costs one pending redaction, not one per earlier reaction,
        and no reaction is ever redacted twice by the bot."""
        target = _superseded(req, rows, current.event_id)  # in memory: most have none
        if target is None:
            return
        purpose = tidy_purpose(current.member)
        if not await repo.pending_purpose(req.id, purpose):
            await out.redact(target, request_id=req.id, reason=TIDY_REASON, purpose=purpose)

    async def tidy_target(
        self, repo: Repository, req: Request, member: str, aimed: str
    ) -> str | None:
        """Just before a tidy-up is sent: the reaction it should remove now. `aimed` while it
        is still superseded and not redacted (by anyone), else the latest one that is, or
        None when nothing is left to tidy."""
        rows = await repo.member_rows(req.id, member)
        current = self.tally(req, rows).current.get(member)
        keep = current.event_id if current is not None else None
        left = _superseded_all(req, rows, keep)
        if aimed in left:
            return aimed
        return left[-1] if left else None

    async def tidied(self, repo: Repository, out: Outbox, req: Request, member: str) -> None:
        """A tidy-up was sent (its redaction stored): queue the next, if any remain."""
        rows = await repo.member_rows(req.id, member)
        current = self.tally(req, rows).current.get(member)
        target = _superseded(req, rows, current.event_id if current is not None else None)
        if target is not None:
            purpose = tidy_purpose(member)
            await out.redact(target, request_id=req.id, reason=TIDY_REASON, purpose=purpose)

    async def follow_objection(
        self,
        repo: Repository,
        out: Outbox,
        req: Request,
        member: str,
        now: int,
        ask_reason_in_reply_to: str | None = None,
        rows: MemberRows | None = None,
        tally: Tally | None = None,
        *,
        quiet: bool = False,
    ) -> PositionInput | None:
        """Open, fill or withdraw the member's objection to match their current position.

        Nothing changes on a decided request: its record is frozen until a reopen. `rows`
        are the member's rows when the caller has them already (and `tally`, their count).
        """
        if req.state is RequestState.DECIDED:
            return None
        if rows is None:
            rows = await repo.member_rows(req.id, member)
            tally = None
        window = self.window(req)
        if not any(still_eligible(e.removed_at, window) for e in rows.eligible):
            # Removed from the roster: their positions stop counting, but an objection they
            # raised stays until a chair disposes of it (`member remove` says so) — a later
            # event must not withdraw it behind the chair's back.
            return None
        if tally is None:
            tally = self.tally(req, rows)
        current = tally.current.get(member)
        objecting = current is not None and current.position is Position.OBJECT
        step = objection_step(
            objecting,
            current.reason if current else None,
            current.recorded_at if current else None,
            rows.open_objection,
            rows.latest_objection,
        )
        if step is ObjectionStep.RAISE:
            assert current is not None
            oid = await repo.add_objection(req.id, member, current.event_id, current.reason, now)
            if not current.reason and not quiet:
                # Every channel asks, once per objection: in reply to a 👎, by direct message
                # for a poll answer (which has nothing to reply to in the room).
                ask = self._ask_reason(req, member, oid, ask_reason_in_reply_to)
                if ask_reason_in_reply_to:
                    await out.message(ask, request_id=req.id)
                else:
                    await out.message(ask, room_id=dm(member), request_id=req.id)
                await repo.mark_reason_asked(oid)
        elif step is ObjectionStep.GIVE_REASON:
            assert current is not None
            assert current.reason
            assert rows.open_objection is not None
            await repo.set_objection_reason(rows.open_objection.id, current.reason, member, now)
        elif step is ObjectionStep.WITHDRAW:
            assert rows.open_objection is not None
            change = current.position.label if current and current.position else "no position"
            await repo.dispose_objection(
                rows.open_objection.id,
                ObjectionState.WITHDRAWN,
                member,
                f"the objector changed their position to {change}",
                now,
            )
        if step is not ObjectionStep.NONE:
            out.after.retally.add(req.id)
            if req.state is RequestState.DRAFTED:
                out.after.redraft.add(req.id)
        return current

    def _ask_reason(
        self, req: Request, member: str, oid: int, reply_to: str | None
    ) -> render.Message:
        prefix = self.settings.prefix
        lang = self.settings.lang
        where = "" if reply_to else f" --request {req.number}"
        asked = N_(
            "%(member)s: your objection to %(title)s is recorded as #%(id)s. An objection "
            "blocks consensus until it is addressed, so please say why: %(command)s"
        )
        command = f"{prefix} object REASON{where}"
        return render.Message(
            "reply",
            req.id,
            lang._(
                asked,
                member=member,
                title=render.inline(render.title(req, lang)),
                id=oid,
                command=command,
            ),
            render.rtl_html(
                lang,
                "<p>"
                + lang.markup(
                    asked,
                    member=render.esc(member),
                    title=render.esc(render.inline(render.title(req, lang))),
                    id=str(oid),
                    command=f"<code>{render.esc(command)}</code>",
                )
                + "</p>",
            ),
            {"objections": [{"id": oid, "member": member, "state": "open"}]},
            (member,),
            reply_to,
        )

    async def follow_all(self, repo: Repository, out: Outbox, req: Request, now: int) -> None:
        """Let every member's objection follow their current position (after a reopen)."""
        for member in sorted({i.member for i in await repo.inputs(req.id)}):
            await self.follow_objection(repo, out, req, member, now)

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
        """File a request. A member's or chair's request opens its room at once; an
        application by direct message waits for a chair's triage, so nothing reaches the
        members on an outsider's say-so. Raises Refusal with a user message."""
        existing = await repo.request_by_filing(filed_event_id)
        if existing is not None:
            return existing
        s = self.settings
        open_one = await repo.request_for(s.group_id, applicant.applicant, IN_PROGRESS)
        if open_one is not None:
            raise Refusal(
                N_("request #%(id)s for %(applicant)s is still open"),
                id=open_one.number,
                applicant=applicant.applicant,
            )
        user_id = applicant.user_id
        if user_id is not None:
            member = await repo.member(s.group_id, user_id)
            if member is not None and member.active:
                raise Refusal(N_("%(user)s is already a member of the group"), user=user_id)
        if self_applied:
            today = await repo.filed_by(s.group_id, filed_by, since=now - DAY_MS, self_applied=True)
            if len(today) >= s.applications_per_day:
                raise Refusal(
                    N_(
                        "you already applied today; a chair will look at your application "
                        "(#%(id)s) before anything else happens"
                    ),
                    id=today[-1].number,
                )
        elif filed_by not in s.chairs:
            mine = [r for r in await repo.filed_by(s.group_id, filed_by) if r.state in UNDECIDED]
            if len(mine) >= s.max_open_requests:
                numbers = ", ".join(f"#{r.number}" for r in mine)
                raise Refusal(
                    N_(
                        "you have %(count)s requests still undecided (%(numbers)s); wait for "
                        "one of them, or ask a chair to file this one"
                    ),
                    count=len(mine),
                    numbers=numbers,
                )
        due = deadline_at if deadline_at is not None else now + s.deadline_ms
        if due - now < s.min_deadline_ms:
            raise Refusal(
                N_("the deadline must be at least %(span)s away, so every region can take part"),
                span=Span(s.min_deadline_ms),
            )
        # An application by direct message, or a member's request that lacks what the
        # members need to judge it, waits for a chair; a chair's request is triaged by filing.
        lacking = incomplete(applicant) if filed_by not in s.chairs else []
        state = RequestState.TRIAGE if self_applied or lacking else RequestState.PENDING
        request_id = await repo.create_request(
            s.group_id,
            applicant,
            statement,
            filed_by,
            filed_event_id,
            self_applied,
            due,
            now,
            state,
        )
        req = await repo.request(request_id)
        assert req is not None
        if state is RequestState.TRIAGE:
            await self._announce_triage(out, req)
            return req
        await queue_room(repo, out, self.settings, req)
        return req

    async def _announce_triage(self, out: Outbox, req: Request) -> None:
        chairs = sorted(self.settings.chairs)
        p = self.settings.prefix
        lacking = incomplete(req.applicant)
        lang = self.settings.lang
        what = (
            lang._("an application by direct message")
            if req.self_applied
            else lang._(
                "filed by %(who)s without %(fields)s", who=req.filed_by, fields=", ".join(lacking)
            )
        )
        text = lang._(
            "📥 %(title)s is %(what)s and waits for a chair: %(edit)s completes it, %(accept)s "
            "opens its ballot, %(reject)s answers the applicant. Nothing has been sent to the "
            "members.",
            title=render.inline(render.triage_title(req, lang)),
            what=what,
            edit=f"{p} edit {req.number}",
            accept=f"{p} accept {req.number}",
            reject=f"{p} reject {req.number} REASON",
        )
        await out.message(
            render.notice("reply", req.id, text, chairs, lang, event="triage"),
            room_id=self.settings.main_room_id,
            request_id=req.id,
        )

    async def accept(self, repo: Repository, out: Outbox, req: Request, now: int) -> Request:
        """A chair accepts an application from triage: its room and ballot open now, with
        the default deadline from now."""
        state = transition(req.state, Action.ACCEPT)
        await repo.update_request(req.id, state=state, deadline_at=now + self.settings.deadline_ms)
        accepted = await repo.request(req.id)
        assert accepted is not None
        await queue_room(repo, out, self.settings, accepted)
        return accepted

    async def cancel(
        self, repo: Repository, out: Outbox, req: Request, by: str, reason: str, now: int
    ) -> Request:
        """Cancel a request before its decision (a rejection at triage is one): the room is
        told, timers stop, the record keeps it."""
        state = transition(req.state, Action.CANCEL)
        await repo.update_request(
            req.id, state=state, decided_by=by, rationale=reason, decided_at=now
        )
        cancelled = await repo.request(req.id)
        assert cancelled is not None
        await self._freeze(repo, cancelled, now)
        # Before a chair accepted it, nothing the applicant chose reaches the main room.
        title = (
            render.triage_title(req, self.settings.lang)
            if req.state is RequestState.TRIAGE
            else render.title(req, self.settings.lang)
        )
        text = self.settings.lang._(
            "✖ %(title)s was cancelled by %(chair)s: %(reason)s",
            title=render.inline(title),
            chair=by,
            reason=render.inline(reason),
        )
        if req.room_id:
            await out.message(
                render.notice("outcome", req.id, text, (), self.settings.lang, event="cancelled"),
                request_id=req.id,
            )
        await out.message(
            render.notice("reply", req.id, text, (), self.settings.lang, event="cancelled"),
            room_id=self.settings.main_room_id,
            request_id=req.id,
        )
        if req.applicant.user_id:
            applicant = self.settings.language(await repo.language(req.applicant.user_id))
            await tell_applicant(
                out,
                req,
                applicant._(
                    "Your request (#%(id)s) was not taken further: %(reason)s",
                    id=req.number,
                    reason=render.inline(reason),
                ),
                "cancelled",
                applicant,
            )
        out.after.schedule_changed(req.id)
        return cancelled

    async def edit(
        self,
        repo: Repository,
        out: Outbox,
        req: Request,
        by: str,
        changes: dict[str, str],
        now: int,
    ) -> Request:
        """Edit a request before its decision (RFC 7282's "accommodated" often means this):
        the card is edited in place, the change is announced in the request room and kept
        in the record, and members whose position predates it are told they may revise."""
        await repo.update_request(req.id, **changes)
        await repo.add_edit(req.id, by, changes, now)
        edited = await repo.request(req.id)
        assert edited is not None
        tz = self.settings.group_tz
        lang = self.settings.lang
        if req.card_event_id or await repo.pending_purpose(req.id, CARD):
            await out.edit(render.request_card(edited, now, tz, lang), CARD, request_id=req.id)
        if req.state in (RequestState.OPEN, RequestState.DRAFTED):
            listed = "; ".join(f"{k}: {render.inline(v, 200)}" for k, v in changes.items())

            def notice(speak: Language) -> str:
                return speak._(
                    "✏ %(title)s was edited by %(chair)s — %(changes)s. If your position "
                    "predates this change, you may revise it.",
                    title=render.inline(render.title(edited, speak)),
                    chair=by,
                    changes=listed,
                )

            text = notice(lang)
            positioned = sorted((await self.count(repo, edited)).current)
            await out.message(
                render.notice("reply", req.id, text, tuple(positioned), lang, event="edited"),
                request_id=req.id,
            )
            if self.settings.allow_room and positioned:
                # Not personal: one message where all members are (bot/services/reach.py),
                # in the rooms' language.
                await out.message(
                    render.notice("reply", req.id, text, tuple(positioned), lang, event="edited"),
                    room_id=self.settings.main_room_id,
                    request_id=req.id,
                )
                positioned = []
            chosen = await repo.languages_of(positioned)
            for member in positioned:
                own = self.settings.language(chosen.get(member))  # a DM: their language
                await out.message(
                    render.notice("reply", req.id, notice(own), (member,), own, event="edited"),
                    room_id=dm(member),
                    request_id=req.id,
                )
        return edited

    async def close_ballot(self, repo: Repository, out: Outbox, req: Request, now: int) -> Sense:
        """Close the ballot and post the draft sense of the room for the chair."""
        state = transition(req.state, Action.CLOSE)
        await repo.update_request(req.id, state=state, closed_at=now)
        closed = await repo.request(req.id)
        assert closed is not None
        sense = await self.post_draft(repo, out, closed)
        if req.poll_event_id:
            await out.event(
                POLL_END, render.poll_end(req, self.settings.lang), request_id=req.id, target=POLL
            )
        out.after.schedule_changed(req.id)
        return sense

    async def post_draft(
        self, repo: Repository, out: Outbox, req: Request, updated: str | None = None
    ) -> Sense:
        """Post the draft sense of the room for the chairs at the close; after a change in
        the same round, edit that draft in place (one draft per round, always current)."""
        now = await self.standing(repo, req)  # counted once, for the draft and the hums
        objections = await repo.objections(req.id)
        sense, shape = await _pure(len(now.voters), _drafted, now, objections, self.settings.quorum)
        first = req.proposal is None  # no draft yet in this round (a reopen clears it)
        await repo.update_request(req.id, proposal=sense.proposal)
        message = render.summary(
            req,
            sense,
            final=True,
            mentions=sorted(self.settings.chairs),
            hums=(await self._hum_report(repo, req, now)).phrase(),
            shape=shape,
            prefix=self.settings.prefix,
            updated=None if first else (updated or N_("the draft changed")),
            lang=self.settings.lang,
        )
        if first:
            await out.message(message, request_id=req.id, purpose=DRAFT)
        else:
            await out.edit(message, DRAFT, request_id=req.id)
        return sense

    async def live_tally(self, repo: Repository, req: Request, now: int) -> render.Message:
        """The ballot's live tally as it stands (posted when the room opens, then edited)."""
        sense = await self.sense(repo, req)
        lang = self.settings.lang
        closes = lang.when(req.deadline_at, self.settings.group_tz, now_ms=now)
        return render.tally(req, sense, closes, self.settings.prefix, lang)

    async def retally(
        self, repo: Repository, out: Outbox, now: int, request_ids: Iterable[int]
    ) -> None:
        """Edit the live tally of these ballots (whose positions or objections changed)."""
        for request_id in sorted(set(request_ids)):
            req = await repo.request(request_id)
            if req is None or req.state not in (RequestState.OPEN, RequestState.DRAFTED):
                continue
            if req.tally_event_id is None and not await repo.pending_purpose(req.id, TALLY):
                continue  # opened before live tallies existed
            await out.edit(await self.live_tally(repo, req, now), TALLY, request_id=req.id)

    async def redraft(self, repo: Repository, out: Outbox) -> None:
        """Post the draft again for this group's requests whose draft changed in this
        transaction (the others are their groups')."""
        for request_id in sorted(out.after.redraft):
            req = await repo.request(request_id)
            if req is not None and req.group_id != self.settings.group_id:
                continue
            if req is not None and req.state is RequestState.DRAFTED:
                await self.post_draft(repo, out, req)
            out.after.redraft.discard(request_id)

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
        """Record the chair's decision, freeze its record, announce it and admit the applicant.

        The ballot closes at the decision if it was still open, so anything received later
        is late for this decision's record.
        """
        state = transition(req.state, action)
        proposal = (await self.sense(repo, req)).proposal if req.closed_at is None else None
        await repo.update_request(
            req.id,
            state=state,
            outcome=outcome,
            decided_by=chair,
            rationale=rationale,
            decided_at=now,
            closed_at=req.closed_at if req.closed_at is not None else now,
            **({"proposal": proposal} if proposal is not None else {}),
        )
        decided = await repo.request(req.id)
        assert decided is not None
        s = self.settings
        head = await self._freeze(repo, decided, now)
        out.after.republish = True
        message = render.outcome(decided, head, s.prefix, s.appeal_window_ms, s.group_tz, s.lang)
        await out.message(message, request_id=req.id)
        await out.message(message, room_id=s.main_room_id, request_id=req.id)
        if s.publish_room:
            # The public room hears the outcome, its page and the head; nothing else.
            await out.message(
                render.public_outcome(
                    decided, head, s.lang, folder=f"{s.group_id}/" if len(s.groups) > 1 else ""
                ),
                room_id=s.publish_room,
                request_id=req.id,
            )
        if decided.applicant.user_id:
            # The applicant hears the outcome, the chair's rationale and how to appeal; never
            # anyone's position.
            # In the applicant's own language (the rooms hear the group's).
            own = s.language(await repo.language(decided.applicant.user_id))
            told = render.outcome(decided, head, s.prefix, s.appeal_window_ms, s.group_tz, own)
            await out.message(told, room_id=dm(decided.applicant.user_id), request_id=req.id)
        user_id = decided.applicant.user_id
        if outcome is Outcome.ADMIT and user_id:
            await repo.upsert_member(
                req.group_id,
                user_id,
                decided.applicant.stakeholder or "",
                decided.applicant.region or "",
                now,
                f"admission:#{req.number}",
                decided.applicant.country,
            )
            await out.invite(user_id, room_id=s.main_room_id, request_id=req.id)
        out.after.schedule_changed(req.id)
        return decided

    async def reopen(
        self, repo: Repository, out: Outbox, req: Request, due: int, now: int
    ) -> tuple[Request, Phrase | None]:
        """Open a closed or decided ballot again until `due`: a new round with a new draft;
        positions so far stay, and a decided admission is withdrawn until decided again.
        Returns the request and a note for the chair (said in the reader's language)."""
        await repo.update_request(
            req.id,
            state=transition(req.state, Action.REOPEN),
            deadline_at=due,
            closed_at=None,
            proposal=None,
            outcome=None,
            decided_by=None,
            rationale=None,
            decided_at=None,
            draft_event_id=None,
            early_rationale=None,
        )
        reopened = await repo.request(req.id)
        assert reopened is not None
        note = None
        applicant = req.applicant.user_id
        admitted = applicant is not None and req.outcome is Outcome.ADMIT
        if (
            admitted
            and applicant
            and await repo.withdraw_admission(req.group_id, applicant, req.id)
        ):
            note = phrase(
                N_("%(applicant)s is off the roster again until it is decided."),
                applicant=applicant,
            )
        # Reactions and retractions that came in while it was closed count now.
        await self.follow_all(repo, out, reopened, now)
        out.after.schedule_changed(req.id)
        out.after.republish = True  # the decision is withdrawn from the public site
        return reopened, note

    async def refreeze(self, repo: Repository, out: Outbox, req: Request, now: int) -> str:
        """A decided request's record gains what came after the decision (an appeal and its
        answer) as a new segment chained to the last; earlier segments never change."""
        out.after.republish = True
        return await self._freeze(repo, req, now)

    async def _freeze(self, repo: Repository, req: Request, now: int) -> str:
        """Build the request's record by the counting rule and store it for good."""
        return await freeze(repo, await self.record(repo, req), now)

    async def record(self, repo: Repository, req: Request) -> Record:
        """The request's record as it stands now, with its hums (what a decision freezes)."""
        s = self.settings
        return await live_record(
            repo,
            req,
            group_name=s.group_name,
            quorum=s.quorum,
            skew_ms=s.clock_skew_ms,
            appeal_window_ms=s.appeal_window_ms,
            hums=await self.hum_aggregate(repo, req),
            tidier=s.bot_user_id,
        )

    async def block(self, repo: Repository, out: Outbox, req: Request, why: str, now: int) -> None:
        """The bot lost control of a request's room: stop counting and tell the chairs."""
        try:
            state = transition(req.state, Action.BLOCK)
        except LifecycleError:
            return
        await repo.update_request(req.id, state=state)
        text = self.settings.lang._(
            "⚠ %(title)s is blocked: %(why)s. Positions are no longer counted there; a chair "
            "should look into it.",
            title=render.inline(render.title(req, self.settings.lang)),
            why=render.inline(why),
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
        out.after.schedule_changed(req.id)


TIDY_REASON = "superseded by a newer position"


async def _pure(size: int, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """`fn(*args, **kwargs)`, a pure function of values nobody else changes, computed off the
    event loop when `size` (the rows or members it goes through) is above OFF_LOOP_ROWS."""
    if size <= OFF_LOOP_ROWS:
        return fn(*args, **kwargs)
    return await asyncio.to_thread(fn, *args, **kwargs)


def _drafted(
    now: Standing, objections: Sequence[Objection], quorum: float
) -> tuple[Sense, RoughShape]:
    """The draft sense and its rough shape (which groups stand where)."""
    sense = now.sense(objections, quorum)
    return sense, rough_shape(sense, now.voters)


def tidy_purpose(member: str) -> str:
    """The outbox `purpose` of a member's tidy-up: one pending per member and request."""
    return TIDY + member


def _superseded_all(req: Request, rows: MemberRows, current: str | None) -> list[str]:
    """The member's position reactions on the ballot other than `current` that nobody has
    redacted yet, oldest first."""
    gone = {r.redacts for r in rows.redactions}
    return [
        old.event_id
        for old in rows.inputs
        if old.source is Source.REACTION
        and old.event_id != current
        and old.event_id not in gone
        and old.room_id == req.room_id
    ]


def _superseded(req: Request, rows: MemberRows, current: str | None) -> str | None:
    """The latest of the member's superseded reactions still showing, if any."""
    left = _superseded_all(req, rows, current)
    return left[-1] if left else None


HUMS_GIVEN = "hums_given:"  # meta key prefix: the hums each given report was made from


def _load_given(raw: str | None) -> list[dict[str, Hum]]:
    """The hums of the reports given so far (stored as JSON under anonymous keys)."""
    if not raw:
        return []
    return [
        {k: Hum(Side(side), Strength(strength)) for k, (side, strength) in report.items()}
        for report in json.loads(raw)
    ]


def _dump_given(given: list[dict[str, Hum]]) -> str:
    return json.dumps([{k: [h.side.value, h.strength.value] for k, h in r.items()} for r in given])
