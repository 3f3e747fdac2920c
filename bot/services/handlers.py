"""Command handlers: one method per command of `commands.table`, each returning a Reply.

Handlers never send anything themselves: the dispatcher turns the Reply into a ✅/❌
acknowledgement and a reply message in the outbox, in the same transaction as the command's
effects. Authorisation is by Matrix user ID against the roster and the configured chairs.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bot.domain.appeals import appeal_problem
from bot.domain.countries import lookup as lookup_country
from bot.domain.countries import suggest as suggest_country
from bot.domain.errors import Refusal
from bot.domain.intake import incomplete, missing_fields
from bot.domain.ledger import PositionInput, Source
from bot.domain.lifecycle import (
    DISCUSSED,
    FINAL,
    IN_PROGRESS,
    UNDECIDED,
    Action,
    LifecycleError,
    Outcome,
    RequestState,
    outcome_for,
)
from bot.domain.objections import Objection, ObjectionState
from bot.domain.positions import Position
from bot.domain.process import (
    APPEAL_ANSWER,
    DECISION,
    EARLY,
    confirm_problem,
    contest_problem,
    disposition_problem,
    duplicate_target,
    early_refusal,
    rationale_problem,
    rough_shape,
    too_early,
)
from bot.domain.ratelimit import (
    APPLICANT_TIER,
    MEMBER_TIER,
    OUTSIDER_TIER,
    RateLimiter,
    Verdict,
)
from bot.domain.request import Applicant, Request
from bot.domain.sense import Proposal
from bot.domain.text import N_
from bot.i18n.catalog import LANGUAGES, NATIVE_NAMES, Language, Phrase, normalize_code
from bot.matrix import render
from bot.matrix.events import CommandText
from bot.services.ballots import Ballots
from bot.services.calendar import Calendar
from bot.services.context import Act, Ctx, Where, details_room
from bot.services.export import MEDIA_TYPES, Format, export_record, render_file
from bot.services.export import filename as export_filename
from bot.services.outbox import PRIVATE, Outbox, dm
from bot.services.settings import Settings
from commands.converters import MAX_AHEAD_DAYS, MAX_AHEAD_MS
from commands.help import render_help, render_topic_help, usage
from commands.parser import ParsedCommand, ParseFailure, parse
from commands.spec import ANYWHERE, CommandSpec, Executor, Place, Role
from commands.table import COMMANDS
from storage.repo import Repository


@dataclass(frozen=True, slots=True)
class Reply:
    """A handler's answer: success or failure, and what to say (nothing: just ✅)."""

    ok: bool
    text: str = ""
    request: int | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    html: str | None = None
    message: render.Message | None = None  # a fully rendered message instead of `text`
    private: bool = False  # nothing of it stays in the outbox once sent (hums)


def fail(text: str, request: int | None = None) -> Reply:
    """A refusal with its reason."""
    return Reply(False, text, request)


Handler = Callable[[Ctx, Mapping[str, Any]], Awaitable[Reply]]

# What runs whatever group a direct chat is about.
GROUPLESS = frozenset({Executor.HELP, Executor.GROUP, Executor.LANGUAGE})

_NOT_OPEN = N_("the ballot of request #%(id)s is not open.")

MAX_REPLY_BYTES = 32 * 1024  # longer answers go as a file (events are capped at 64 KiB)

_ROLE_REFUSAL = {
    Role.CHAIR: N_("only a chair can %(what)s"),
    Role.MEMBER: N_("only members of the group can %(what)s"),
    Role.MEMBER_OR_CHAIR: N_("only members and chairs can %(what)s"),
}
_PLACE_NAMES = {
    Place.MAIN: N_("the main room"),
    Place.REQUEST: N_("a request's room"),
    Place.DM: N_("a direct message"),
}


def _objections_data(objections: list[Objection]) -> dict[str, Any]:
    return {
        "objections": [{"id": o.id, "member": o.member, "state": o.state.value} for o in objections]
    }


async def acknowledge(
    out: Outbox,
    event: CommandText,
    *,
    ok: bool,
    message: render.Message | None,
    private: bool = False,
    room: str | None = None,
) -> None:
    """React ✅/❌ to a command and send its reply, if any, to `room` (by default the room
    it was typed in; the reaction, which says nothing but done or refused, stays beside the
    command).

    A private acknowledgement (a hum's) leaves no trace in the outbox once sent.
    """
    purpose = PRIVATE if private else None
    room = room or event.room_id
    await out.react("✅" if ok else "❌", event.event_id, room_id=event.room_id, purpose=purpose)
    if message is not None:
        request = None if private else message.request
        await out.message(message, room_id=room, request_id=request, purpose=purpose)


class Handlers:
    """The handler of every declared command, and the dispatcher that checks who and where."""

    def __init__(
        self, settings: Settings, ballots: Ballots, calendar: Calendar, limiter: RateLimiter
    ) -> None:
        self.settings = settings
        self.ballots = ballots
        self.calendar = calendar
        self.limiter = limiter  # per sender: members generous, outsiders strict
        # The one binding of executors (declared per command in `commands.table`) to code:
        # total, checked here, so a command can never reach a missing handler.
        executors: dict[Executor, Handler] = {
            Executor.HELP: self.help,
            Executor.REQUEST: self.request,
            Executor.APPLY: self.apply,
            Executor.POSITION: self.position,
            Executor.WITHDRAW: self.withdraw,
            Executor.HUM: self.hum,
            Executor.STATUS: self.status,
            Executor.LIST: self.list,
            Executor.MEMBERS: self.members,
            Executor.OBJECTIONS: self.objections,
            Executor.DISPOSE: self.dispose,
            Executor.DEADLINE: self.deadline,
            Executor.EXTEND: self.extend,
            Executor.CLOSE: self.close,
            Executor.CONFIRM: self.confirm,
            Executor.DECIDE: self.decide,
            Executor.REOPEN: self.reopen,
            Executor.REMIND: self.remind,
            Executor.DIGEST: self.digest,
            Executor.TRIAGE: self.triage,
            Executor.AFFIRM: self.affirm,
            Executor.EDIT: self.edit,
            Executor.ASK: self.ask,
            Executor.ANSWER: self.answer,
            Executor.MINE: self.mine,
            Executor.LANGUAGE: self.language,
            Executor.GROUP: self.group,
            Executor.CONTEST: self.contest,
            Executor.APPEAL: self.appeal,
            Executor.APPEAL_ANSWER: self.appeal_answer,
            Executor.ACCEPT: self.accept,
            Executor.REJECT: self.reject,
            Executor.CANCEL: self.cancel,
            Executor.MEMBER_ADD: self.member_add,
            Executor.MEMBER_REMOVE: self.member_remove,
            Executor.EXPORT: self.export,
        }
        unbound = set(Executor) - set(executors)
        if unbound:
            raise RuntimeError(f"executors without a handler: {sorted(e.name for e in unbound)}")
        # By command name, for the dispatcher (and for tests that stand a handler in).
        self.table: dict[str, Handler] = {
            c.name: executors[c.executor] for c in COMMANDS if c.executor is not None
        }

    def when(self, ctx: Ctx, ms: int) -> str:
        """A moment as the reader reads it: in a direct message in the member's own zone,
        elsewhere in the group's, with UTC beside."""
        own = ctx.member.tz if ctx.place is Place.DM and ctx.member is not None else None
        return ctx.lang.when(ms, own or self.settings.group_tz, now_ms=ctx.now)

    @property
    def prefix(self) -> str:
        """The command prefix."""
        return self.settings.prefix

    # --- dispatch ---------------------------------------------------------------------

    async def handle(
        self,
        repo: Repository,
        out: Outbox,
        event: CommandText,
        now: int,
        *,
        received_at: int | None = None,
        unsure: bool = False,
    ) -> None:
        """Parse, authorise, run and acknowledge one command, judged at `now` (every window:
        a held encrypted command is judged when its key arrived). `received_at`: when a
        released held command was received (a position on a still open ballot keeps it).
        `unsure`: a direct chat whose group is not known (a bot of several groups): only
        the commands of no group run; the others are answered with the question."""
        parsed = parse(event.body, self.prefix, now)
        if parsed is None:
            return
        where = await self._where(repo, event)
        lang = await self._language(repo, event, where)
        group = self.settings.group_id
        member = await repo.member(group, event.sender)
        if event.sender in self.settings.chairs or (member is not None and member.active):
            tier = MEMBER_TIER
        elif await repo.request_for(group, event.sender, IN_PROGRESS) is not None:
            tier = APPLICANT_TIER  # in the middle of their application: a few steps
        else:
            tier = OUTSIDER_TIER
        # One bucket per sender and tier: an outsider who becomes an applicant starts their
        # short conversation afresh, and nothing carries over between allowances.
        decision = self.limiter.check(f"{tier.burst}/{tier.refill_ms}:{event.sender}", tier, now)
        if decision.verdict is Verdict.REFUSE_SILENTLY:
            return  # a flood is not answered: answering it would be the flood
        if decision.verdict is Verdict.REFUSE:
            wait = lang.duration(max(1_000, decision.retry_after_ms))
            reply = fail(lang._("Too many commands: try again in %(wait)s.", wait=wait))
            await self._answer(out, event, reply, where, False, lang)
            return
        if isinstance(parsed, ParseFailure):
            reply = fail(parsed.render(lang))  # the usage's words stay as typed
            await self._answer(out, event, reply, where, False, lang)
            return
        if unsure and parsed.spec.executor not in GROUPLESS:
            reply = self._which_group(lang)
        else:
            reply = await self._run(repo, out, event, parsed, now, where, received_at, lang)
        if parsed.spec.executor in (Executor.LANGUAGE, Executor.APPLY):
            lang = await self._language(repo, event, where)  # the sender may have chosen now
        if parsed.note is not None and reply.ok and reply.message is None:
            # `vote X` worked as position X: say so (the note says it was recorded).
            text = f"{reply.text}\n{parsed.note.say(lang)}".strip()
            reply = Reply(True, text, reply.request, reply.data, None, None, reply.private)
        await self._answer(out, event, reply, where, parsed.spec.private_answer, lang)

    async def _language(self, repo: Repository, event: CommandText, where: Where) -> Language:
        """What an answer is said in: in the sender's direct chat (or by direct message from
        a foreign room) their own language, else the group's."""
        if where.place is Place.DM or where.place is None:
            return self.settings.language(await repo.language(event.sender))
        return self.settings.lang

    async def _where(self, repo: Repository, event: CommandText) -> Where:
        """Which kind of room a command was typed in (see `Where`)."""
        room_request = await repo.request_by_room(event.room_id)
        if event.room_id == self.settings.main_room_id:
            return Where(Place.MAIN, room_request)
        if room_request is not None:
            return Where(Place.REQUEST, room_request)
        if await repo.is_dm_room(event.room_id, event.sender):
            return Where(Place.DM, None)
        return Where(None, None)

    @staticmethod
    def _room_for(event: CommandText, where: Where, reply: Reply, private: bool) -> str:
        """The room an answer goes to: where it was asked, except that nothing is said in a
        foreign room and a request's details only in its own room or the sender's DM."""
        if where.place is None:
            return dm(event.sender)
        if not private:
            return event.room_id
        about = reply.message.request if reply.message is not None else reply.request
        return details_room(event, where, about)

    async def went_wrong(self, repo: Repository, out: Outbox, event: CommandText, ref: str) -> None:
        """Answer a command whose handling failed unexpectedly, with the log's reference."""
        where = await self._where(repo, event)
        lang = await self._language(repo, event, where)
        reply = fail(
            lang._(
                "Something went wrong (ref %(ref)s); the operators can find it in the log.",
                ref=ref,
            )
        )
        await self._answer(out, event, reply, where, False, lang)

    async def _run(
        self,
        repo: Repository,
        out: Outbox,
        event: CommandText,
        parsed: ParsedCommand,
        now: int,
        where: Where,
        received_at: int | None = None,
        lang: Language | None = None,
    ) -> Reply:
        lang = lang or self.settings.lang
        spec = parsed.spec
        s = self.settings
        room_request = where.room_request
        place = where.place  # None: a foreign room, where only commands that work anywhere
        member = await repo.member(s.group_id, event.sender)
        if member is not None and not member.active:
            member = None
        is_chair = event.sender in s.chairs
        allowed = {
            Role.ANYONE: True,
            Role.CHAIR: is_chair,
            Role.MEMBER: member is not None,
            Role.MEMBER_OR_CHAIR: is_chair or member is not None,
        }[spec.role]
        if not allowed:
            refusal = lang._(_ROLE_REFUSAL[spec.role], what=self._what(spec, lang))
            if spec.role is Role.CHAIR:
                refusal += " " + lang._(
                    "(the chairs: %(chairs)s)", chairs=", ".join(sorted(s.chairs))
                )
            return fail(refusal + ".")
        if place is None and spec.places == ANYWHERE:
            # e.g. help or status in a room the bot was invited to: answered as in the
            # sender's direct chat, and sent there (see `_room_for`).
            place = Place.DM
        if spec.name == "hum" and place is not Place.DM:
            # A hum said in a room would not be secret: point to the private chat, opened.
            number = parsed.args.get("request") or (room_request.number if room_request else "N")
            side = parsed.args.get("side", "for")
            command = f"{self.prefix} hum {side} --request {number}"
            text = lang._(
                "Hums are private: send me %(command)s in a direct message (I have written to "
                "you in ours).",
                command=command,
            )
            own = self.settings.language(await repo.language(event.sender))
            await out.message(
                render.notice(
                    "reply",
                    None,
                    own._("Hum here, privately: %(command)s", command=command),
                    (event.sender,),
                    own,
                    event="hum-here",
                ),
                room_id=dm(event.sender),
            )
            if len(s.groups) > 1:
                # The direct chat the hum is to be sent in is about this group from now on,
                # so the command it suggests works there as it is.
                chat = await repo.dm_room(event.sender)
                if chat is not None:
                    await repo.set_dm_group(chat, s.group_id)
            return fail(text)
        if place is None or place not in spec.places:
            places = lang._(" or ").join(lang._(_PLACE_NAMES[p]) for p in Place if p in spec.places)
            return fail(
                lang._(
                    "%(command)s works in %(places)s.\nUsage: %(usage)s",
                    command=f"{self.prefix} {spec.name}",
                    places=places,
                    usage=usage(spec, self.prefix),
                )
            )
        ctx = Ctx(
            repo,
            out,
            Act(repo, out),
            now,
            event,
            place,
            room_request,
            is_chair,
            member,
            where,
            received_at,
            lang,
        )
        try:
            return await self.table[spec.name](ctx, parsed.args)
        except LifecycleError as exc:
            why = Phrase(exc.message, exc.params).say(lang)
            return fail(lang._("Not now: %(why)s.", why=why))
        except Refusal as exc:  # only a refusal's text reaches the user: a bug's goes to the log
            return fail(Phrase(exc.message, exc.params).say(lang))

    @staticmethod
    def _what(spec: CommandSpec, lang: Language) -> str:
        verbs = {
            "close": N_("close a ballot"),
            "confirm": N_("confirm the sense of the room"),
            "decide": N_("decide a request"),
            "dispose": N_("dispose of an objection"),
            "reopen": N_("reopen a ballot"),
            "deadline": N_("set a deadline"),
            "extend": N_("extend a deadline"),
            "remind": N_("send reminders"),
            "digest": N_("post the digest"),
            "triage": N_("see the applications waiting for triage"),
            "accept": N_("accept an application"),
            "reject": N_("reject an application"),
            "member add": N_("add members"),
            "member remove": N_("remove members"),
        }
        if spec.name in verbs:
            return lang._(verbs[spec.name])
        return lang._("use %(command)s", command=spec.name)

    async def _answer(
        self,
        out: Outbox,
        event: CommandText,
        reply: Reply,
        where: Where,
        private: bool,
        lang: Language | None = None,
    ) -> None:
        """Acknowledge a command and send its answer where it may be read (`_room_for`)."""
        lang = lang or self.settings.lang
        room = self._room_for(event, where, reply, private)
        message = reply.message
        if message is None and reply.text:
            message = render.reply(
                ("" if reply.ok else "❌ ") + reply.text,
                request=reply.request,
                reply_to=event.event_id,
                data=reply.data,
                html_text=reply.html,
                lang=lang,
            )
        if message is not None and len(message.body.encode()) > MAX_REPLY_BYTES:
            # Too long for one event (the homeserver refuses 64 KiB): the whole answer goes
            # as a text file, with a short note; never silently lost.
            await out.file(
                message.body,
                "answer.txt",
                "text/plain",
                {"m.mentions": {}, "consensus_bot": {"kind": "reply", "request": reply.request}},
                room_id=room,
                request_id=reply.request,
            )
            message = render.reply(
                lang._("The answer is long, so it is attached as a file (answer.txt)."),
                request=reply.request,
                reply_to=event.event_id,
                data=reply.data,
                lang=lang,
            )
        await acknowledge(
            out,
            event,
            ok=reply.ok,
            message=message,
            private=reply.private,
            room=room,
        )

    async def _target(self, ctx: Ctx, args: Mapping[str, Any], *, key: str = "request") -> Request:
        """The request a command is about: its number, or the room it is sent in."""
        number = args.get(key)
        if number is None:
            if ctx.room_request is not None:
                return ctx.room_request
            raise Refusal(
                N_("which request? Add --request N (see %(command)s)."),
                command=f"{self.prefix} list",
            )
        req = await ctx.repo.request_numbered(self.settings.group_id, int(number))
        if req is None:
            raise Refusal(N_("there is no request #%(number)s."), number=number)
        return req

    # --- handlers ---------------------------------------------------------------------

    async def help(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`help [COMMAND]`."""
        topic = (args.get("command") or "").strip()
        prefix = self.prefix
        text = (
            render_topic_help(topic, prefix, ctx.lang) if topic else render_help(prefix, ctx.lang)
        )
        body = html.escape(text)
        return Reply(True, text, html=f"<pre>{body}</pre>")

    async def request(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`request APPLICANT [options] STATEMENT…`."""
        applicant = self._applicant(str(args["applicant"]), args)
        return await self._file(ctx, applicant, str(args["statement"]), args.get("deadline"), False)

    async def apply(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`apply [options] STATEMENT…` by direct message; again while it waits for triage,
        it updates the application."""
        if not self.settings.self_apply:
            return fail(
                ctx.lang._(
                    "this group does not take applications by message; ask a member or a chair."
                )
            )
        if args.get("language"):
            # The applicant chooses their language at intake: every later message to them,
            # this answer included, is in it.
            code = normalize_code(str(args["language"]))
            if code is None:
                listed = ", ".join(LANGUAGES)
                return fail(
                    ctx.lang._(
                        "I do not speak %(language)s. Choose one of: %(languages)s.",
                        language=repr(str(args["language"])),
                        languages=listed,
                    )
                )
            await ctx.repo.set_language(ctx.event.sender, code, ctx.now)
            ctx.lang = self.settings.language(code)
        applicant = self._applicant(ctx.event.sender, args)
        group = self.settings.group_id
        waiting = await ctx.repo.request_for(group, ctx.event.sender, [RequestState.TRIAGE])
        if waiting is not None:
            reply = await self._update_application(ctx, waiting.id, applicant, args)
        else:
            reply = await self._file(ctx, applicant, str(args["statement"]), None, True)
        if reply.ok and reply.request is not None and args.get("publish"):
            # The applicant's own answer: only they can let the public site name them.
            await ctx.repo.update_request(reply.request, publish_consent=args["publish"] == "yes")
            req = await ctx.repo.request(reply.request)
            if req is not None and req.state is RequestState.TRIAGE:
                note = self._missing_note(ctx.lang, req, updated=waiting is not None)
                reply = replace(reply, text=note)
        return reply

    def _applicant(self, who: str, args: Mapping[str, Any]) -> Applicant:
        """The applicant as given; a country is checked (with a "did you mean") and gives
        the region when none is given."""
        country = None
        region = args.get("region")
        if args.get("country"):
            found = lookup_country(str(args["country"]))
            if found is None:
                hints = suggest_country(str(args["country"]))
                if hints:
                    raise Refusal(
                        N_("I do not know the country %(country)s. Did you mean %(hints)s?"),
                        country=repr(args["country"]),
                        hints=" / ".join(hints),
                    )
                raise Refusal(
                    N_("I do not know the country %(country)s."), country=repr(args["country"])
                )
            country = found.alpha2
            region = region or found.itu_region
        return Applicant(
            applicant=who,
            name=args.get("name"),
            org=args.get("org"),
            stakeholder=args.get("stakeholder"),
            region=region,
            country=country,
            kind=args.get("as"),
            representative=args.get("representative"),
            background=render.clean(args.get("background"), 4_000) or None,
        )

    async def _update_application(
        self, ctx: Ctx, request_id: int, applicant: Applicant, args: Mapping[str, Any]
    ) -> Reply:
        """The applicant completes or corrects an application still waiting for triage."""
        fields = {
            name: value
            for name, value in (
                ("name", applicant.name),
                ("org", applicant.org),
                ("stakeholder", applicant.stakeholder),
                ("region", applicant.region),
                ("country", applicant.country),
                ("kind", applicant.kind),
                ("representative", applicant.representative),
                ("background", applicant.background),
            )
            if value
        }
        statement = render.clean(str(args["statement"]), 4_000)
        if statement and statement != "-":
            fields["statement"] = statement
        if fields:  # `apply - --publish yes` alone changes nothing here
            await ctx.repo.update_request(request_id, **fields)
        req = await ctx.repo.request(request_id)
        assert req is not None
        return Reply(
            True, self._missing_note(ctx.lang, req, updated=True), req.id, {"filed": req.id}
        )

    def _missing_note(self, lang: Language, req: Request, *, updated: bool = False) -> str:
        """What an application still lacks, and the one next thing to send."""
        p = self.prefix
        first = (
            lang._("Updated your application #%(id)s.", id=req.number)
            if updated
            else lang._("Received: your application is #%(id)s.", id=req.number)
            + " "
            + lang._(
                "I write to you in %(language)s; to choose another: %(command)s (%(languages)s).",
                language=NATIVE_NAMES[lang.code],
                command=f"{p} language CODE",
                languages=", ".join(LANGUAGES),
            )
        )
        missing = missing_fields(req)
        if not missing:
            consent = (
                " "
                + lang._(
                    "May your name and organisation be published with the decision? Answer "
                    "%(command)s (or no; without an answer they are not).",
                    command=f"{p} apply - --publish yes",
                )
                if req.publish_consent is None
                else ""
            )
            complete = lang._(
                "It is complete. A chair looks at it first; the members are asked only once a "
                "chair accepts it, and you will hear from me either way."
            )
            return f"{first} {complete}{consent}"
        field_name, ask = missing[0]
        example = {
            "country": f"{p} apply - --country Kenya",
            "stakeholder": f"{p} apply - --stakeholder technical-community",
            "background": f"{p} apply - --background 'RIPE NCC member since 2015; RFC 9234'",
            "affirmation": f"{p} affirm {req.number}",
        }[field_name]
        rest = (
            " " + lang._("(then: %(fields)s)", fields=", ".join(lang._(n) for n, _ in missing[1:]))
            if missing[1:]
            else ""
        )
        return f"{first} " + lang._(
            "Next, %(ask)s: %(example)s%(rest)s. %(cancel)s withdraws it.",
            ask=lang._(ask),
            example=example,
            rest=rest,
            cancel=f"{p} cancel {req.number} REASON",
        )

    async def _file(
        self, ctx: Ctx, applicant: Applicant, statement: str, deadline: Any, self_applied: bool
    ) -> Reply:
        try:
            req = await ctx.act(
                self.ballots.file_request,
                applicant,
                statement,
                ctx.event.sender,
                ctx.event.event_id,
                int(deadline) if deadline is not None else None,
                ctx.now,
                self_applied=self_applied,
            )
        except LifecycleError:
            raise  # answered "Not now: …" by `_run`, like every refused transition
        except Refusal as exc:
            return fail(
                ctx.lang._("Not filed: %(why)s.", why=Phrase(exc.message, exc.params).say(ctx.lang))
            )
        if req.state is RequestState.TRIAGE and req.self_applied:
            return Reply(
                True,
                self._missing_note(ctx.lang, req),
                req.id,
                {"filed": req.id, "state": req.state.value},
            )
        if req.state is RequestState.TRIAGE:
            lacking = ", ".join(incomplete(req.applicant))
            return Reply(
                True,
                ctx.lang._(
                    "Filed %(title)s; it lacks %(fields)s, so it waits for a chair before the "
                    "members see it. Complete it with %(command)s.",
                    title=render.inline(render.title(req, ctx.lang)),
                    fields=lacking,
                    command=f"{self.prefix} edit {req.number} --country … --stakeholder … "
                    "--background '…'",
                ),
                req.id,
                {"filed": req.id, "state": req.state.value},
            )
        return Reply(
            True,
            ctx.lang._(
                "Filed %(title)s. Its room is being opened; the ballot closes %(when)s.",
                title=render.inline(render.title(req, ctx.lang)),
                when=self.when(ctx, req.deadline_at),
            ),
            req.id,
            {"filed": req.id},
        )

    async def position(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`support|no-objection|concern|object|abstain|recuse [REASON…]`."""
        parsed_name = self._spec_name(ctx)
        position = Position(parsed_name)
        reason = args.get("reason")
        return await self._take(ctx, args, position, reason)

    async def withdraw(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`withdraw`: retract one's position (and with it an open objection)."""
        return await self._take(ctx, args, None, None)

    def _spec_name(self, ctx: Ctx) -> str:
        parsed = parse(ctx.event.body, self.prefix, ctx.now)
        assert isinstance(parsed, ParsedCommand)
        return parsed.spec.name

    async def _take(
        self, ctx: Ctx, args: Mapping[str, Any], position: Position | None, reason: str | None
    ) -> Reply:
        try:
            req = await self._target(ctx, args)
        except Refusal as exc:
            return fail(Phrase(exc.message, exc.params).say(ctx.lang))
        if not self.ballots.accepts(req, ctx.event.ts, ctx.now):
            return fail(ctx.lang._(_NOT_OPEN, id=req.number), req.id)
        item = PositionInput(
            ctx.event.event_id,
            ctx.event.sender,
            position,
            ctx.event.ts,
            Source.COMMAND,
            render.clean(reason, 2_000) or None,
            ctx.event.room_id,
        )
        if not await ctx.act(
            self.ballots.record_input, req, item, ctx.now, received_at=ctx.received_at
        ):
            return fail(
                ctx.lang._(
                    "you are not eligible on request #%(id)s: only members on the roster when "
                    "its ballot opened take positions.",
                    id=req.number,
                ),
                req.id,
            )
        if position is Position.OBJECT:
            objections = await ctx.repo.objections(req.id)
            mine = [o for o in objections if o.member == ctx.event.sender and o.state.is_open]
            number = f"#{mine[-1].id}" if mine else ""
            return Reply(
                True,
                ctx.lang._(
                    "Objection %(number)s recorded on request #%(id)s. The chair will address "
                    "it; it blocks consensus until then.",
                    number=number,
                    id=req.number,
                ),
                req.id,
                _objections_data(objections),
            )
        if position is Position.CONCERN and not reason:
            return Reply(
                True,
                ctx.lang._(
                    "Concern recorded. Would you say what worries you? %(command)s",
                    command=f"{self.prefix} concern REASON",
                ),
                req.id,
            )
        return Reply(True, request=req.id)

    async def status(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`status [N]`: where a request stands (for the applicant: stage and dates only)."""
        if not ctx.is_chair and ctx.member is None:
            return await self._applicant_status(ctx, args)
        if args.get("request") is None and ctx.room_request is None:
            return await self.list(ctx, args)
        try:
            req = await self._target(ctx, args)
        except Refusal as exc:
            return fail(Phrase(exc.message, exc.params).say(ctx.lang))
        sense = await ctx.act.read(self.ballots.sense, req)
        hums = await ctx.act.read(self.ballots.hums, req)
        lang = ctx.lang
        msg = render.summary(req, sense, final=False, hums=hums, prefix=self.prefix, lang=lang)
        head = lang._("State: %(state)s", state=render.state_label(lang, req.state))
        if req.state is RequestState.OPEN:
            left = lang.duration(req.deadline_at - ctx.now)
            head += "; " + lang._(
                "closes %(when)s (in %(left)s)", when=self.when(ctx, req.deadline_at), left=left
            )
        if req.outcome:
            head += "; " + lang._(
                "outcome: %(outcome)s by %(chair)s",
                outcome=lang._(render.OUTCOME_LABELS[req.outcome.value]),
                chair=req.decided_by,
            )
        appeals = await ctx.repo.appeals(req.id, open_only=True)
        if appeals:
            head += "; " + lang._(
                "open appeals: %(appeals)s",
                appeals=", ".join(
                    lang._("#%(id)s by %(member)s", id=a.id, member=a.member) for a in appeals
                ),
            )
        body = msg.body + "\n" + head
        return Reply(
            True,
            message=render.Message(
                "reply",
                req.id,
                body,
                msg.html + f"<p>{render.esc(head)}</p>",
                {**msg.data, "state": req.state.value},
                (),
                ctx.event.event_id,
            ),
        )

    async def list(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`list`: requests not yet decided."""
        group = self.settings.group_id
        active = await ctx.repo.requests(group, list(UNDECIDED))
        appeals = await ctx.repo.appeals(open_only=True, group_id=group)
        appealed = {a.request_id for a in appeals} - {r.id for r in active}
        for request_id in sorted(appealed):
            found = await ctx.repo.request(request_id)
            if found is not None:
                active.append(found)
        if not active:
            return Reply(True, ctx.lang._("No requests are open."))
        lines = []
        for req in sorted(active, key=lambda r: r.id):
            name = render.inline(req.applicant.display, 100)
            if req.state is RequestState.TRIAGE and ctx.place is not Place.DM:
                name = render.inline(
                    render.triage_title(req, ctx.lang)
                )  # nothing unvetted in shared rooms
            line = f"#{req.number} {name} — {render.state_label(ctx.lang, req.state)}"
            if req.state is RequestState.OPEN:
                line += ", " + ctx.lang._("closes %(when)s", when=self.when(ctx, req.deadline_at))
            open_appeals = [a for a in appeals if a.request_id == req.id]
            if open_appeals:
                line += ", " + ctx.lang._(
                    "appealed: %(appeals)s", appeals=", ".join(f"#{a.id}" for a in open_appeals)
                )
            lines.append(line)
        data = {"requests": [r.id for r in active], "appeals": [a.id for a in appeals]}
        return Reply(True, "\n".join(lines), data=data)

    async def members(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`members`: the roster."""
        roster = await ctx.repo.active_members(self.settings.group_id)
        lang = ctx.lang
        unspecified = lang._("unspecified")
        lines = [
            f"{m.user_id} — {m.stakeholder or unspecified}, {m.region or unspecified}"
            for m in roster
        ]
        chairs = ", ".join(sorted(self.settings.chairs))
        head = lang.ngettext("%(n)s member:", "%(n)s members:", len(roster))
        tail = lang._("Chairs: %(chairs)s", chairs=chairs)
        return Reply(True, head + "\n" + "\n".join(lines) + "\n" + tail)

    async def objections(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`objections [N]`."""
        try:
            req = await self._target(ctx, args)
        except Refusal as exc:
            return fail(Phrase(exc.message, exc.params).say(ctx.lang))
        objections = await ctx.repo.objections(req.id)
        if not objections:
            return Reply(
                True,
                ctx.lang._("No objections to request #%(id)s.", id=req.number),
                req.id,
                _objections_data([]),
            )
        lines = []
        for o in objections:
            reason = render.inline(o.reason, 300) or ctx.lang._("(no reason yet)")
            line = f"#{o.id} {o.member} — {render.state_label(ctx.lang, o.state)}: {reason}"
            if o.rationale:
                line += f" | {o.disposed_by}: {render.inline(o.rationale, 300)}"
            lines.append(line)
        return Reply(True, "\n".join(lines), req.id, _objections_data(objections))

    async def dispose(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`dispose OBJECTION accommodated|addressed|duplicate|withdrawn RATIONALE…`."""
        req = ctx.room_request
        assert req is not None
        if req.state is RequestState.DECIDED:
            return fail(
                ctx.lang._(
                    "request #%(id)s is decided and its record is final; reopen it first "
                    "(%(command)s) to dispose of objections again.",
                    id=req.number,
                    command=f"{self.prefix} reopen DURATION",
                ),
                req.id,
            )
        objection = await ctx.repo.objection(int(args["objection"]))
        if objection is None or objection.request_id != req.id:
            return fail(
                ctx.lang._(
                    "request #%(id)s has no objection #%(objection)s (see %(command)s).",
                    id=req.number,
                    objection=args["objection"],
                    command=f"{self.prefix} objections",
                ),
                req.id,
            )
        if not objection.state.is_open:
            return fail(
                ctx.lang._(
                    "objection #%(id)s was already disposed of (%(state)s).",
                    id=objection.id,
                    state=render.state_label(ctx.lang, objection.state),
                ),
                req.id,
            )
        state = ObjectionState(str(args["disposition"]))
        rationale = render.clean(str(args["rationale"]), 2_000)
        duplicate_of: int | None = None
        if state is ObjectionState.DUPLICATE:
            target = duplicate_target(rationale)
            other = None if target is None else await ctx.repo.objection(target[0])
            if other is None or other.request_id != req.id or other.id == objection.id:
                return fail(
                    ctx.lang._(
                        "say which objection it duplicates: %(command)s",
                        command=f"{self.prefix} dispose {objection.id} duplicate #N [RATIONALE]",
                    ),
                    req.id,
                )
            duplicate_of = other.id
        problem = disposition_problem(state, rationale)
        if problem:
            return fail(problem.say(ctx.lang) + ".", req.id)
        await ctx.repo.dispose_objection(
            objection.id, state, ctx.event.sender, rationale, ctx.now, duplicate_of
        )
        objections = await ctx.repo.objections(req.id)
        still_open = sum(1 for o in objections if o.state.is_open)
        if req.state is RequestState.DRAFTED:
            # The chair should confirm what the draft says now, not what it said at close.
            ctx.out.after.redraft.add(req.id)
        await self._tell_objector(ctx, req, objection, state, rationale)
        text = ctx.lang._(
            "Objection #%(id)s by %(member)s: %(state)s.",
            id=objection.id,
            member=objection.member,
            state=render.state_label(ctx.lang, state),
        )
        text += " " + ctx.lang.ngettext(
            "%(n)s objection still open on request #%(id)s.",
            "%(n)s objections still open on request #%(id)s.",
            still_open,
            id=req.number,
        )
        message = render.reply(
            text,
            request=req.id,
            reply_to=ctx.event.event_id,
            data=_objections_data(objections),
            mentions=(objection.member,),
            lang=ctx.lang,
        )
        return Reply(True, message=message)

    async def _tell_objector(
        self, ctx: Ctx, req: Request, objection: Objection, state: ObjectionState, why: str
    ) -> None:
        """The objector hears of the disposition, with the rationale and how to contest."""
        lang = self.settings.language(await ctx.repo.language(objection.member))
        window = lang.duration(self.settings.contest_window_ms)
        text = lang._(
            "Your objection #%(id)s to %(title)s was disposed of as %(state)s by %(chair)s: "
            "%(rationale)s\nIf that does not answer it, you may contest it within %(window)s, "
            "before the decision: %(command)s",
            id=objection.id,
            title=render.inline(render.title(req, lang)),
            state=render.state_label(lang, state),
            chair=ctx.event.sender,
            rationale=render.inline(why, 1_000),
            window=window,
            command=f"{self.prefix} contest {objection.id} REASON",
        )
        await ctx.out.message(
            render.notice("reply", req.id, text, (objection.member,), lang, event="disposed"),
            room_id=dm(objection.member),
            request_id=req.id,
        )

    async def contest(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`contest OBJECTION REASON…`: the objector reopens a disposed objection."""
        objection = await ctx.repo.objection(int(args["objection"]))
        if objection is None or objection.member != ctx.event.sender:
            return fail(
                ctx.lang._(
                    "you have no objection #%(objection)s (see %(command)s).",
                    objection=args["objection"],
                    command=f"{self.prefix} objections",
                )
            )
        req = await ctx.repo.request(objection.request_id)
        assert req is not None
        problem = contest_problem(objection, req.state, ctx.now, self.settings.contest_window_ms)
        if problem:
            return fail(problem.say(ctx.lang) + ".", req.id)
        reason = render.clean(str(args["reason"]), 2_000)
        await ctx.repo.contest_objection(objection.id, ctx.event.sender, reason, ctx.now)
        if req.state is RequestState.DRAFTED:
            ctx.out.after.redraft.add(req.id)
        chairs = sorted(self.settings.chairs)
        contested = N_("Objection #%(id)s by %(member)s is contested and open again: %(reason)s")
        values = {"id": objection.id, "member": objection.member}
        text = ctx.lang._(contested, reason=render.inline(reason, 1_000), **values)
        if ctx.place is not Place.REQUEST:
            room = self.settings.lang  # the request's room hears it in the group's language
            said = room._(contested, reason=render.inline(reason, 1_000), **values)
            await ctx.out.message(
                render.notice("reply", req.id, said, chairs, room, event="contested"),
                request_id=req.id,
            )
        objections = await ctx.repo.objections(req.id)
        message = render.reply(
            text,
            request=req.id,
            reply_to=ctx.event.event_id,
            data=_objections_data(objections),
            mentions=tuple(chairs),
            lang=ctx.lang,
        )
        return Reply(True, message=message)

    def _early(
        self,
        ctx: Ctx,
        req: Request,
        args: Mapping[str, Any],
        command: str,
        at: int | None = None,
    ) -> str | None:
        """Refuse closing the ballot (now, or `at` for a new deadline) before it was open for
        the minimum time, unless the chair says why with `--early RATIONALE` (of substance);
        returns that rationale."""
        wait = too_early(
            ctx.now if at is None else at, req.opened_at, self.settings.min_deadline_ms
        )
        early = args.get("early")
        if not wait:
            return None
        if early is None:
            raise Refusal(N_("%(why)s."), why=early_refusal(wait, command, self.prefix))
        problem = rationale_problem(str(early), EARLY)
        if problem:
            raise Refusal(N_("%(why)s."), why=problem)
        return render.clean(str(early), 2_000)

    async def _note_early(self, ctx: Ctx, req: Request, early: str | None) -> None:
        if early is not None:
            await ctx.repo.update_request(req.id, early_rationale=early)

    async def close(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`close [--early RATIONALE]`: close the ballot now and post the draft."""
        req = ctx.room_request
        assert req is not None
        early = self._early(ctx, req, args, "close")
        await self._note_early(ctx, req, early)
        await ctx.act(self.ballots.close_ballot, req, ctx.now)
        return Reply(True, request=req.id)

    async def confirm(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`confirm [RATIONALE…]`: adopt the draft sense of the room as the decision."""
        req = ctx.room_request
        assert req is not None
        if req.state is not RequestState.DRAFTED:
            return fail(
                ctx.lang._(
                    "there is no draft to confirm: the ballot must be closed first "
                    "(%(command)s), or decide with a rationale.",
                    command=f"{self.prefix} close",
                ),
                req.id,
            )
        tally = await ctx.act.read(self.ballots.count, req)
        sense = tally.sense(await ctx.repo.objections(req.id), self.settings.quorum)
        rationale = args.get("rationale")
        problem = confirm_problem(sense, rough_shape(sense, tally.voters), rationale)
        if problem:
            return fail(ctx.lang._("Not confirmed: %(why)s.", why=problem.say(ctx.lang)), req.id)
        outcome = outcome_for(sense.proposal)
        words = render.clean(str(rationale), 2_000) if rationale else None
        await ctx.act(
            self.ballots.decide,
            req,
            outcome,
            ctx.event.sender,
            words or f"confirmed the draft sense of the room: {sense.proposal.label}",
            ctx.now,
            action=Action.CONFIRM,
        )
        return Reply(True, request=req.id)

    async def decide(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`decide admit|decline|no-consensus [--early RATIONALE] RATIONALE…`."""
        req = ctx.room_request
        assert req is not None
        early = self._early(ctx, req, args, "decide OUTCOME") if req.closed_at is None else None
        rationale = render.clean(str(args["rationale"]), 2_000)
        problem = rationale_problem(rationale, DECISION)
        if problem:
            return fail(problem.say(ctx.lang) + ".", req.id)
        await self._note_early(ctx, req, early)
        await ctx.act(
            self.ballots.decide,
            req,
            Outcome(str(args["outcome"])),
            ctx.event.sender,
            rationale,
            ctx.now,
            action=Action.DECIDE,
        )
        return Reply(True, request=req.id)

    async def reopen(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`reopen DURATION`: open the ballot again; positions so far stay."""
        req = ctx.room_request
        assert req is not None
        reopened, note = await ctx.act(
            self.ballots.reopen, req, ctx.now + int(args["duration"]), ctx.now
        )
        return Reply(
            True,
            ctx.lang._(
                "Request #%(id)s is open again until %(when)s.",
                id=req.number,
                when=self.when(ctx, reopened.deadline_at),
            )
            + (" " + note.say(ctx.lang) if note else ""),
            req.id,
        )

    async def deadline(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`deadline WHEN [--early RATIONALE]`."""
        req = ctx.room_request
        assert req is not None
        due = int(args["when"])
        # A deadline before the minimum time is closing early, in advance.
        early = self._early(ctx, req, args, "deadline WHEN", at=due)
        await self._note_early(ctx, req, early)
        return await self._set_deadline(ctx, due)

    async def extend(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`extend DURATION`: move the deadline later; after a draft of insufficient
        participation, open the ballot again for that long and remind at once."""
        req = ctx.room_request
        assert req is not None
        if (
            req.state is RequestState.DRAFTED
            and req.proposal is Proposal.INSUFFICIENT_PARTICIPATION
        ):
            reopened, _ = await ctx.act(
                self.ballots.reopen, req, ctx.now + int(args["duration"]), ctx.now
            )
            sent = await ctx.act(
                self.calendar.remind, reopened, ctx.now, f"extend@{ctx.event.event_id}"
            )
            return Reply(
                True,
                ctx.lang.ngettext(
                    "The ballot of request #%(id)s is open again until %(when)s; %(n)s member "
                    "who has not taken part was reminded.",
                    "The ballot of request #%(id)s is open again until %(when)s; %(n)s members "
                    "who have not taken part were reminded.",
                    sent,
                    id=req.number,
                    when=self.when(ctx, reopened.deadline_at),
                ),
                req.id,
            )
        return await self._set_deadline(ctx, req.deadline_at + int(args["duration"]))

    async def _set_deadline(self, ctx: Ctx, due: int) -> Reply:
        req = ctx.room_request
        assert req is not None
        if req.state is not RequestState.OPEN:
            return fail(
                ctx.lang._(
                    "the ballot of request #%(id)s is not open (reopen it first).", id=req.number
                ),
                req.id,
            )
        if due <= ctx.now:
            return fail(ctx.lang._("the new deadline is in the past."), req.id)
        if due > ctx.now + MAX_AHEAD_MS:
            return fail(
                ctx.lang.ngettext(
                    "a ballot closes at most %(n)s day from now.",
                    "a ballot closes at most %(n)s days from now.",
                    MAX_AHEAD_DAYS,
                ),
                req.id,
            )
        await ctx.repo.update_request(req.id, deadline_at=due)
        ctx.out.after.schedule_changed(req.id)
        return Reply(
            True,
            ctx.lang._(
                "The ballot of request #%(id)s now closes %(when)s.",
                id=req.number,
                when=self.when(ctx, due),
            ),
            req.id,
        )

    async def hum(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`hum for|against [soft|loud] --request N`, by direct message only."""
        try:
            req = await self._target(ctx, args)
        except Refusal as exc:
            return fail(Phrase(exc.message, exc.params).say(ctx.lang))
        if req.state is not RequestState.OPEN:
            return fail(ctx.lang._(_NOT_OPEN, id=req.number))
        if not await ctx.act.read(self.ballots.is_voter, req, ctx.event.sender):
            return fail(ctx.lang._("you are not eligible on request #%(id)s.", id=req.number))
        strength = str(args.get("strength") or "soft")
        hummer = self.ballots.hummer(req.id, ctx.event.sender)
        await ctx.repo.set_hum(req.id, hummer, str(args["side"]), strength)
        # The answer goes to this direct chat only and names no side: nothing to overhear;
        # once sent, the outbox forgets it.
        return Reply(
            True,
            ctx.lang._(
                "Your hum on request #%(id)s is recorded. Nobody sees who hummed what; when the "
                "ballot closes the room hears only how loud each side is, once enough members "
                "hummed. Hum again to change it while the ballot is open.",
                id=req.number,
            ),
            private=True,
        )

    async def remind(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`remind`: nudge the members without a position now, by direct message."""
        req = ctx.room_request
        assert req is not None
        if req.state is not RequestState.OPEN:
            return fail(ctx.lang._(_NOT_OPEN, id=req.number), req.id)
        sent = await ctx.act(self.calendar.remind, req, ctx.now, f"manual@{ctx.event.event_id}")
        if not sent:
            return Reply(
                True,
                ctx.lang._("Everyone eligible has taken a position: nobody to remind."),
                req.id,
            )
        if self.settings.allow_room:
            said = ctx.lang.ngettext(
                "Reminded %(n)s member in the main room.",
                "Reminded %(n)s members in the main room.",
                sent,
            )
        else:
            said = ctx.lang.ngettext(
                "Reminded %(n)s member by direct message.",
                "Reminded %(n)s members by direct message.",
                sent,
            )
        return Reply(True, said, req.id)

    async def triage(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`triage`: applications waiting for a chair."""
        waiting = sorted(
            await ctx.repo.requests(self.settings.group_id, [RequestState.TRIAGE]),
            key=lambda r: r.id,
        )
        if not waiting:
            return Reply(
                True, ctx.lang._("No applications are waiting for triage."), data={"triage": []}
            )
        if ctx.place is Place.DM:
            lines = [
                f"#{r.number} {render.inline(r.applicant.display, 100)} — "
                f"{render.inline(r.statement, 200)}"
                for r in waiting
            ]
        else:
            # In a shared room, nothing the applicants chose: their names and statements
            # are for a chair's direct chat (or `status N` there).
            lines = [render.inline(render.triage_title(r, ctx.lang)) for r in waiting]
            lines.append(
                ctx.lang._(
                    "Their statements: %(command)s in a direct message to me.",
                    command=f"{self.prefix} triage",
                )
            )
        p = self.prefix
        lines.append(
            ctx.lang._(
                "Accept with %(accept)s, or answer with %(reject)s.",
                accept=f"{p} accept N",
                reject=f"{p} reject N REASON",
            )
        )
        return Reply(True, "\n".join(lines), data={"triage": [r.id for r in waiting]})

    async def accept(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`accept N`: open the ballot of an application from triage."""
        req = await self._request(ctx, args)
        accepted = await ctx.act(self.ballots.accept, req, ctx.now)
        return Reply(
            True,
            ctx.lang._(
                "Accepted %(title)s: its room is being opened; the ballot closes %(when)s.",
                title=render.inline(render.title(accepted, ctx.lang)),
                when=self.when(ctx, accepted.deadline_at),
            ),
            accepted.id,
        )

    async def reject(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`reject N REASON`: turn down an application from triage."""
        req = await self._request(ctx, args)
        if req.state is not RequestState.TRIAGE:
            return fail(
                ctx.lang._(
                    "request #%(id)s is not waiting for triage (%(state)s).",
                    id=req.number,
                    state=render.state_label(ctx.lang, req.state),
                )
            )
        reason = render.clean(str(args["reason"]), 2_000)
        await ctx.act(self.ballots.cancel, req, ctx.event.sender, reason, ctx.now)
        return Reply(
            True,
            ctx.lang._("Application #%(id)s was rejected; the applicant is told.", id=req.number),
            req.id,
        )

    async def cancel(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`cancel N REASON`: by the request's filer or a chair, before the decision."""
        req = await self._request(ctx, args)
        if not ctx.is_chair and ctx.event.sender != req.filed_by:
            return fail(
                ctx.lang._(
                    "only the filer of request #%(id)s or a chair can cancel it.", id=req.number
                )
            )
        reason = render.clean(str(args["reason"]), 2_000)
        await ctx.act(self.ballots.cancel, req, ctx.event.sender, reason, ctx.now)
        return Reply(True, ctx.lang._("Request #%(id)s is cancelled.", id=req.number), req.id)

    async def appeal(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`appeal N REASON…`: a member or the applicant appeals a decision."""
        req = await self._request(ctx, args)
        sender = ctx.event.sender
        entitled = ctx.is_chair or ctx.member is not None or sender == req.applicant.user_id
        decided_at = req.decided_at if req.state is RequestState.DECIDED else None
        segment = len(await ctx.repo.frozen_records(req.id))
        own = [
            a.id
            for a in await ctx.repo.appeals(req.id, open_only=True)
            if a.member == sender and a.segment == segment
        ]
        problem = appeal_problem(
            decided_at,
            self.settings.appeal_window_ms,
            ctx.now,
            entitled=entitled,
            already_open=own[0] if own else None,
        )
        if problem:
            return fail(problem.say(ctx.lang) + ".", req.id)
        reason = render.clean(str(args["reason"]), 2_000)
        aid = await ctx.repo.add_appeal(req.id, segment, sender, reason, ctx.now)
        chairs = sorted(self.settings.chairs)
        languages = await ctx.repo.languages_of(chairs)

        def appeal_text(lang: Language) -> str:
            return lang._(
                "⚖ Appeal #%(id)s of the decision on %(title)s by %(member)s: %(reason)s\nA "
                "chair answers with %(command)s (upheld reopens the ballot).",
                id=aid,
                title=render.inline(render.title(req, lang)),
                member=sender,
                reason=render.inline(reason, 1_000),
                command=f"{self.prefix} appeal-answer {aid} upheld|denied RATIONALE",
            )

        room = self.settings.lang
        await ctx.out.message(
            render.notice(
                "reply", req.id, appeal_text(room), chairs, room, event="appeal", appeal=aid
            ),
            request_id=req.id,
        )
        for chair in chairs:
            theirs = self.settings.language(languages.get(chair))
            await ctx.out.message(
                render.notice(
                    "reply",
                    req.id,
                    appeal_text(theirs),
                    (chair,),
                    theirs,
                    event="appeal",
                    appeal=aid,
                ),
                room_id=dm(chair),
                request_id=req.id,
            )
        return Reply(
            True,
            ctx.lang._(
                "Appeal #%(id)s is recorded; the chairs are told and will answer it.", id=aid
            ),
            req.id,
            {"appeal": aid},
        )

    async def appeal_answer(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`appeal-answer APPEAL upheld|denied RATIONALE…`."""
        appeal = await ctx.repo.appeal(int(args["appeal"]))
        if appeal is None:
            return fail(ctx.lang._("there is no appeal #%(id)s.", id=args["appeal"]))
        if not appeal.is_open:
            return fail(
                ctx.lang._(
                    "appeal #%(id)s was already answered (%(state)s).",
                    id=appeal.id,
                    state=appeal.state,
                )
            )
        rationale = render.clean(str(args["rationale"]), 2_000)
        problem = rationale_problem(rationale, APPEAL_ANSWER)
        if problem:
            return fail(problem.say(ctx.lang) + ".", appeal.request_id)
        req = await ctx.repo.request(appeal.request_id)
        assert req is not None
        answer = str(args["answer"])
        await ctx.repo.answer_appeal(appeal.id, answer, ctx.event.sender, rationale, ctx.now)
        reopened_until: int | None = None
        note: Phrase | None = None
        if answer == "upheld" and req.state is RequestState.DECIDED:
            reopened, note = await ctx.act(
                self.ballots.reopen, req, ctx.now + self.settings.min_deadline_ms, ctx.now
            )
            reopened_until = reopened.deadline_at
        elif req.state is RequestState.DECIDED:
            await ctx.act(self.ballots.refreeze, req, ctx.now)  # the record gains the answer

        def answered(lang: Language) -> str:
            text = lang._(
                "Appeal #%(id)s of the decision on %(title)s is %(answer)s by %(chair)s: "
                "%(rationale)s",
                id=appeal.id,
                title=render.inline(render.title(req, lang)),
                answer=lang._(answer),
                chair=ctx.event.sender,
                rationale=render.inline(rationale, 1_000),
            )
            if reopened_until is not None:
                until = lang.when(reopened_until, self.settings.group_tz, now_ms=ctx.now)
                text += "\n" + lang._("The ballot is open again until %(when)s.", when=until)
                text += " " + note.say(lang) if note else ""
            return text

        room = self.settings.lang
        own = self.settings.language(await ctx.repo.language(appeal.member))
        await ctx.out.message(
            render.notice(
                "reply", req.id, answered(room), (appeal.member,), room, event="appeal-answer"
            ),
            request_id=req.id,
        )
        await ctx.out.message(
            render.notice(
                "reply", req.id, answered(own), (appeal.member,), own, event="appeal-answer"
            ),
            room_id=dm(appeal.member),
            request_id=req.id,
        )
        return Reply(True, request=req.id)

    async def _applicant_status(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """The applicant's view of their own request: its stage and dates, nobody's
        position."""
        number = args.get("request")
        mine = [r for r in await ctx.repo.filed_by_applicant(ctx.event.sender)]
        req = next((r for r in mine if number is None or r.id == int(number)), None)
        if req is None:
            return fail(
                ctx.lang._("only members and chairs can see requests; applicants see their own.")
            )
        lang = ctx.lang
        outcome = lang._(render.OUTCOME_LABELS[req.outcome.value]) if req.outcome else "?"
        stage = {
            RequestState.TRIAGE: lang._("waiting for a chair to accept it"),
            RequestState.PENDING: lang._("accepted; its room is being opened"),
            RequestState.OPEN: lang._("in front of the members"),
            RequestState.DRAFTED: lang._("closed; the chair is judging the sense of the room"),
            RequestState.DECIDED: lang._("decided: %(outcome)s", outcome=outcome),
            RequestState.BLOCKED: lang._("paused; the chairs are looking into it"),
            RequestState.CANCELLED: lang._("cancelled"),
        }[req.state]
        lines = [
            lang._("Request #%(id)s: %(stage)s.", id=req.number, stage=stage),
            lang._("Filed %(when)s.", when=self.when(ctx, req.created_at)),
        ]
        if req.state is RequestState.OPEN:
            lines.append(
                lang._(
                    "The members take positions until %(when)s.",
                    when=self.when(ctx, req.deadline_at),
                )
            )
        if req.decided_at is not None and req.state is RequestState.DECIDED:
            lines.append(
                lang._(
                    "Decided %(when)s: %(rationale)s",
                    when=self.when(ctx, req.decided_at),
                    rationale=render.inline(req.rationale),
                )
            )
        if req.state is RequestState.TRIAGE and missing_fields(req):
            lines.append(self._missing_note(ctx.lang, req))
        data = {"state": req.state.value}
        return Reply(True, "\n".join(lines), req.id, data)

    async def edit(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`edit N [STATEMENT…] [--field VALUE…]`: correct or complete a request."""
        req = await self._request(ctx, args)
        sender = ctx.event.sender
        before_ballot = req.state in (RequestState.TRIAGE, RequestState.PENDING)
        own = sender in (req.filed_by, req.applicant.user_id)
        if not (ctx.is_chair and req.state in UNDECIDED) and not (own and before_ballot):
            return fail(
                ctx.lang._(
                    "only a chair can edit request #%(id)s now (its filer and its applicant "
                    "can until its ballot opens).",
                    id=req.number,
                )
            )
        given = self._applicant(req.applicant.applicant, args)
        changes = {
            name: str(value)
            for name, value in (
                ("name", given.name),
                ("kind", given.kind),
                ("org", given.org),
                ("representative", given.representative),
                ("country", given.country),
                ("stakeholder", given.stakeholder),
                ("region", given.region if args.get("region") or args.get("country") else None),
                ("background", given.background),
                ("statement", render.clean(args.get("statement"), 4_000) or None),
            )
            if value
        }
        if not changes:
            return fail(
                ctx.lang._(
                    "nothing to change. Usage: %(usage)s",
                    usage=f"{self.prefix} edit N --field VALUE …",
                )
            )
        edited = await ctx.act(self.ballots.edit, req, sender, changes, ctx.now)
        note = ""
        if edited.state is RequestState.TRIAGE:
            lacking = incomplete(edited.applicant)
            note = " " + (
                ctx.lang._("It still lacks %(fields)s.", fields=", ".join(lacking))
                if lacking
                else ctx.lang._(
                    "It is complete; a chair may %(command)s.",
                    command=f"{self.prefix} accept {edited.number}",
                )
            )
        updated = ctx.lang._(
            "Request #%(id)s is updated: %(fields)s.", id=req.number, fields=", ".join(changes)
        )
        return Reply(True, updated + note, req.id)

    async def affirm(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`affirm N`: the applicant affirms the six principles."""
        req = await self._request(ctx, args)
        if req.applicant.user_id != ctx.event.sender:
            return fail(
                ctx.lang._(
                    "only the applicant of request #%(id)s can affirm its principles.",
                    id=req.number,
                )
            )
        if req.affirmed_at is None:
            await ctx.repo.update_request(req.id, affirmed_at=ctx.now)
            if req.room_id:
                room = self.settings.lang
                text = room._(
                    "The applicant of %(title)s affirmed the six principles.",
                    title=render.inline(render.title(req, room)),
                )
                await ctx.out.message(
                    render.notice("reply", req.id, text, (), room, event="affirmed"),
                    request_id=req.id,
                )
        done = await ctx.repo.request(req.id)
        assert done is not None
        if done.state is RequestState.TRIAGE:
            return Reply(True, self._missing_note(ctx.lang, done, updated=True), req.id)
        return Reply(
            True,
            ctx.lang._(
                "Thank you: the principles are affirmed for request #%(id)s.", id=req.number
            ),
            req.id,
        )

    async def ask(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`ask QUESTION…`: a member's question, relayed to the applicant by direct message."""
        req = ctx.room_request
        assert req is not None
        applicant = req.applicant.user_id
        if applicant is None:
            return fail(
                ctx.lang._("the applicant has no Matrix account: ask them another way."), req.id
            )
        if req.state not in (RequestState.OPEN, RequestState.DRAFTED):
            return fail(
                ctx.lang._("request #%(id)s is not being considered now.", id=req.number), req.id
            )
        question = render.clean(str(args["question"]), 2_000)
        qid = await ctx.repo.add_question(req.id, ctx.event.sender, question, ctx.now)
        own = self.settings.language(await ctx.repo.language(applicant))
        text = own._(
            "A member asks about your request #%(id)s (question %(question)s): %(text)s\n"
            "Answer with: %(command)s",
            id=req.number,
            question=qid,
            text=render.inline(question, 2_000),
            command=f"{self.prefix} answer {qid} TEXT",
        )
        await ctx.out.message(
            render.notice("reply", req.id, text, (applicant,), own, event="question", question=qid),
            room_id=dm(applicant),
            request_id=req.id,
        )
        return Reply(
            True,
            ctx.lang._("Question %(id)s is relayed to the applicant.", id=qid),
            req.id,
            {"question": qid},
        )

    async def answer(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`answer Q TEXT…`: the applicant's answer, posted in the request room as theirs."""
        found = await ctx.repo.question(int(args["question"]))
        req = None if found is None else await ctx.repo.request(found[0])
        if found is None or req is None or req.applicant.user_id != ctx.event.sender:
            return fail(ctx.lang._("you have no question %(id)s to answer.", id=args["question"]))
        _, question, asked_by = found
        text_ = render.clean(str(args["answer"]), 4_000)
        await ctx.repo.answer_question(int(args["question"]), text_, ctx.now)
        room = self.settings.lang
        body = room._(
            "💬 The applicant (%(applicant)s) answers question %(id)s from %(member)s — "
            "“%(question)s”:\n%(answer)s",
            applicant=ctx.event.sender,
            id=args["question"],
            member=asked_by,
            question=render.inline(question, 300),
            answer=text_,
        )
        await ctx.out.message(
            render.notice("reply", req.id, body, (asked_by,), room, event="answer"),
            request_id=req.id,
        )
        return Reply(True, ctx.lang._("Your answer is posted for the members."), req.id)

    async def mine(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`mine [N]`: the member's own current position and reason, by direct message."""
        req = await self._target(ctx, args)
        tally = await ctx.act.read(self.ballots.count, req)
        current = tally.current.get(ctx.event.sender)
        # Said by direct message: in the member's own language.
        lang = self.settings.language(await ctx.repo.language(ctx.event.sender))
        if current is None or current.position is None:
            text = lang._("You have no position on request #%(id)s.", id=req.number)
        else:
            reason = f" — “{render.inline(current.reason, 500)}”" if current.reason else ""
            text = lang._(
                "Your position on request #%(id)s: %(position)s%(reason)s.",
                id=req.number,
                position=render.position_label(lang, current.position),
                reason=reason,
            )
        if ctx.place is Place.DM:
            return Reply(True, text, req.id)
        await ctx.out.message(
            render.notice("reply", req.id, text, (ctx.event.sender,), lang, event="mine"),
            room_id=dm(ctx.event.sender),
        )
        return Reply(True, request=req.id)

    def _which_group(self, lang: Language) -> Reply:
        """The question a command in a direct chat of unknown group is answered with."""
        listed = "\n".join(
            f"{gid} — {render.inline(name, 100)}" for gid, name in self.settings.groups
        )
        return fail(
            lang._(
                "Which group is this about? Choose with %(command)s, then send it again. The "
                "groups I serve:\n%(groups)s",
                command=f"{self.prefix} group ID",
                groups=listed,
            )
        )

    async def group(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`group [ID]`: show or choose the group this direct chat is about."""
        groups = dict(self.settings.groups)
        listed = "\n".join(f"{gid} — {render.inline(name, 100)}" for gid, name in groups.items())
        chosen = args.get("group")
        if chosen is None:
            current = await ctx.repo.dm_group(ctx.event.room_id)
            text = ctx.lang._("The groups I serve:\n%(groups)s", groups=listed)
            if current in groups:
                text += "\n" + ctx.lang._("This chat is about %(group)s.", group=current)
            return Reply(True, text)
        if chosen not in groups:
            return fail(
                ctx.lang._(
                    "I serve no group %(group)s. The groups I serve:\n%(groups)s",
                    group=repr(str(chosen)),
                    groups=listed,
                )
            )
        await ctx.repo.set_dm_group(ctx.event.room_id, str(chosen))
        return Reply(
            True,
            ctx.lang._(
                "This chat is now about %(name)s (%(group)s): your commands here go to it.",
                name=render.inline(groups[chosen], 100),
                group=chosen,
            ),
        )

    async def language(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`language [CODE]`: show or choose one's own language for direct messages."""
        sender = ctx.event.sender
        listed = ", ".join(f"{code} ({NATIVE_NAMES[code]})" for code in LANGUAGES)
        command = f"{self.prefix} language CODE"
        wanted = args.get("language")
        if wanted is None:
            chosen = await ctx.repo.language(sender)
            lang = self.settings.language(chosen)
            if chosen is None:
                text = lang._(
                    "I write to you in %(language)s, the group's language. Choose another with "
                    "%(command)s: %(languages)s.",
                    language=NATIVE_NAMES[lang.code],
                    command=command,
                    languages=listed,
                )
            else:
                text = lang._(
                    "I write to you in %(language)s. Choose another with %(command)s: "
                    "%(languages)s.",
                    language=NATIVE_NAMES[lang.code],
                    command=command,
                    languages=listed,
                )
            return Reply(True, message=render.reply(text, reply_to=ctx.event.event_id, lang=lang))
        code = normalize_code(str(wanted))
        if code is None:
            return fail(
                ctx.lang._(
                    "I do not speak %(language)s. Choose one of: %(languages)s.",
                    language=repr(str(wanted)),
                    languages=listed,
                )
            )
        await ctx.repo.set_language(sender, code, ctx.now)
        lang = self.settings.language(code)
        text = lang._(
            "From now on I write to you in %(language)s in direct messages. The rooms keep the "
            "group's language.",
            language=NATIVE_NAMES[code],
        )
        return Reply(
            True,
            message=render.reply(
                text, reply_to=ctx.event.event_id, data={"language": code}, lang=lang
            ),
        )

    async def _request(self, ctx: Ctx, args: Mapping[str, Any]) -> Request:
        number = int(args["request"])
        req = await ctx.repo.request_numbered(self.settings.group_id, number)
        if req is None:
            raise Refusal(
                N_("there is no request #%(number)s (see %(command)s)."),
                number=number,
                command=f"{self.prefix} list",
            )
        return req

    async def digest(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`digest`: post the digest in the main room now: once this batch committed, as the
        scheduled digest does, each open ballot counted in its own short transaction (never
        all of them in this batch's, which holds the writer lock)."""
        ctx.out.after.digests.add(self.settings.group_id)
        return Reply(True)

    async def export(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`export [N] [--format json|csv|md]`: upload the decision record as a file."""
        try:
            req = await self._target(ctx, args)
        except Refusal as exc:
            return fail(Phrase(exc.message, exc.params).say(ctx.lang))
        fmt: Format = args.get("format") or "json"
        s = self.settings
        record = await ctx.act.read(
            export_record,
            req.id,
            group_name=s.group_name,
            quorum=s.quorum,
            skew_ms=s.clock_skew_ms,
            appeal_window_ms=s.appeal_window_ms,
            tidier=s.bot_user_id,
        )
        caption = {
            "m.mentions": {},
            "consensus_bot": {
                "kind": "reply",
                "request": req.id,
                "export": fmt,
                "head": record["head"],
            },
        }
        await ctx.out.file(
            await render_file(record, fmt, self.settings.lang),  # minutes: the group's
            export_filename(record, fmt),
            MEDIA_TYPES[fmt],
            caption,
            room_id=ctx.answer_room(req.id),
            request_id=req.id,
            cache_key=f"{record['head']}.{fmt}" if req.state in FINAL else None,
        )
        return Reply(True)

    async def member_add(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`member add USER [--stakeholder S] [--region R]`."""
        user = str(args["user"])
        group = self.settings.group_id
        existing = await ctx.repo.member(group, user)
        given = self._applicant(user, args)
        stakeholder = given.stakeholder or (existing.stakeholder if existing else "")
        region = given.region or (existing.region if existing else "")
        if not stakeholder or not region:
            return fail(
                ctx.lang._(
                    "say %(user)s's stakeholder group and region (or country), so every "
                    "breakdown counts them: %(command)s.",
                    user=user,
                    command=f"{self.prefix} member add {user} --stakeholder GROUP "
                    "--region REGION|--country COUNTRY",
                )
            )
        await ctx.repo.upsert_member(
            group, user, stakeholder, region, ctx.now, ctx.event.sender, given.country
        )
        if existing is None or not existing.active:
            # A new member joins the conversation: the main room and the rooms of ballots
            # under way (where they read and speak, but do not count: see the reply).
            await ctx.out.invite(user, room_id=self.settings.main_room_id)
            for req in await ctx.repo.requests(group, DISCUSSED):
                if req.room_id:
                    await ctx.out.invite(user, room_id=req.room_id, request_id=req.id)
        return Reply(
            True,
            ctx.lang._(
                "%(user)s is a member (%(stakeholder)s, %(region)s). Ballots already open keep "
                "the members they opened with.",
                user=user,
                stakeholder=stakeholder,
                region=region,
            ),
        )

    async def member_remove(self, ctx: Ctx, args: Mapping[str, Any]) -> Reply:
        """`member remove USER`."""
        user = str(args["user"])
        group = self.settings.group_id
        if not await ctx.repo.deactivate_member(group, user, ctx.now):
            return fail(ctx.lang._("%(user)s is not an active member.", user=user))
        if user not in self.settings.chairs:
            # Out of the rooms of undecided requests, so the bot's next messages there are
            # no longer encrypted for them (decided rooms stay as the record's witnesses).
            for req in await ctx.repo.requests(group, DISCUSSED):
                if req.room_id:
                    await ctx.out.remove_from_room(
                        user,
                        room_id=req.room_id,
                        request_id=req.id,
                        reason="removed from the group's roster",
                    )
            # And out of the main room: its members may join request rooms by themselves
            # (restricted rooms), so its membership must be the roster.
            await ctx.out.remove_from_room(
                user, room_id=self.settings.main_room_id, reason="removed from the group's roster"
            )
        return Reply(
            True,
            ctx.lang._(
                "%(user)s is no longer a member. Their positions stop counting on ballots that "
                "are still open (an objection they raised stays until a chair disposes of it); "
                "closed and decided requests keep the count they had.",
                user=user,
            ),
        )
