"""What the bot says: every message rendered once as plain text and as escaped HTML.

All user-supplied text passes through `esc` (HTML-escaped, bidi and zero-width controls
removed, capped) before it enters `formatted_body`. Every message is an `m.notice` with
explicit `m.mentions` and a machine-readable `consensus_bot` block.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.domain.countries import lookup
from bot.domain.lifecycle import RequestState
from bot.domain.objections import Objection, ObjectionState
from bot.domain.positions import LEGEND, POSITION_ORDER, Position
from bot.domain.principles import PRINCIPLES
from bot.domain.process import RoughShape
from bot.domain.request import Request
from bot.domain.sense import GroupBreakdown, Proposal, Sense
from bot.domain.text import N_, Phrase, sanitize
from bot.i18n.catalog import Language, english

MAX_FIELD_CHARS = 2_000
# Homeservers refuse events over 64 KiB: a summary names at most this many people per list;
# the full lists are in the exported record.
MAX_LISTED = 50


def _export_hint(lang: Language, prefix: str) -> str:
    return lang._("the full list is in the record: %(command)s", command=f"{prefix} export")


_NOT_A_VOTE = N_(
    "Take your position on the ballot below. This is not a vote: say whether you can live "
    "with it, and why not if you cannot."
)
# Every position and proposal as the reader's language says it (the stored values stay the
# English words of the domain: only their display is translated).
POSITION_LABELS: dict[Position, str] = {
    Position.SUPPORT: N_("support"),
    Position.NO_OBJECTION: N_("no objection"),
    Position.CONCERN: N_("concern"),
    Position.OBJECT: N_("object"),
    Position.ABSTAIN: N_("abstain"),
    Position.RECUSE: N_("recuse"),
}
PROPOSAL_LABELS: dict[Proposal, str] = {
    Proposal.NO_CONSENSUS_YET: N_("no consensus yet: objections are still open"),
    Proposal.INSUFFICIENT_PARTICIPATION: N_("insufficient participation"),
    Proposal.ROUGH_CONSENSUS_ADMIT: N_("rough consensus to admit"),
    Proposal.NO_CONSENSUS: N_("no consensus"),
}


def title(req: Request, lang: Language | None = None) -> str:
    """`Request #3: Jane Doe (@jane:example.org)` in the reader's language (the domain's
    `Request.title`, said through the catalog)."""
    return _lang(lang)._("Request #%(id)s: %(name)s", id=req.number, name=req.applicant.display)


def triage_title(req: Request, lang: Language | None = None) -> str:
    """`Request #3 from @jane:example.org` (the domain's `Request.triage_title`) in the
    reader's language: no text the applicant chose."""
    lang = _lang(lang)
    who = req.applicant.user_id
    if who:
        return lang._("Request #%(id)s from %(user)s", id=req.number, user=who)
    return lang._("Request #%(id)s filed by %(user)s", id=req.number, user=req.filed_by)


def position_label(lang: Language, position: Position) -> str:
    """A position in the reader's language (`no objection`, `pas d'objection`)."""
    return lang._(POSITION_LABELS[position])


def _lang(lang: Language | None) -> Language:
    return english() if lang is None else lang


def rtl_html(lang: Language, html_: str) -> str:
    """A formatted body in a right-to-left language carries its direction, so Element lays
    it out right to left (the plain body's isolates keep IDs and numbers whole)."""
    return f'<div dir="rtl">{html_}</div>' if lang.rtl else html_


@dataclass(frozen=True, slots=True)
class Message:
    """A rendered bot message."""

    kind: str
    request: int | None
    body: str
    html: str
    data: Mapping[str, Any] = field(default_factory=dict)
    mentions: tuple[str, ...] = ()
    reply_to: str | None = None

    def content(self) -> dict[str, Any]:
        """The `m.room.message` content to send."""
        content: dict[str, Any] = {
            "msgtype": "m.notice",
            "body": self.body,
            "format": "org.matrix.custom.html",
            "formatted_body": self.html,
            "m.mentions": {"user_ids": list(self.mentions)} if self.mentions else {},
            "consensus_bot": {"kind": self.kind, "request": self.request, **self.data},
        }
        if self.reply_to:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": self.reply_to}}
        return content

    def edit_content(self) -> dict[str, Any]:
        """The content of an edit (`m.replace`) that makes an earlier message this one; the
        event it replaces is filled in when sent. The `consensus_bot` block of the edit is
        the current one, for tools that read edits."""
        new = self.content()
        new.pop("m.relates_to", None)
        return {
            **new,
            "body": "* " + self.body,
            "formatted_body": "* " + self.html,
            "m.new_content": new,
        }


def clean(text: str | None, limit: int = MAX_FIELD_CHARS) -> str:
    """User text made safe to show: controls and invisible characters removed, capped.

    `bot.domain.text.sanitize` with the default cap of a message field.
    """
    return sanitize(text, limit)


def inline(text: str | None, limit: int = MAX_FIELD_CHARS) -> str:
    """User text for a single line: cleaned, every line break and run of spaces made one
    space, so it cannot forge lines of its own (a fake "Proposed: …") in a plain-text body."""
    return " ".join(clean(text, limit).split())


def esc(text: str | None, limit: int = MAX_FIELD_CHARS) -> str:
    """User text made safe for `formatted_body`."""
    return html.escape(clean(text, limit), quote=True)


def _permalink(room_id: str, via: str | None = None) -> str:
    # `via`: a server in the room, which a member's own server asks to join through (a room
    # ID of version 12 names no server).
    return f"https://matrix.to/#/{room_id}" + (f"?via={via}" if via else "")


def request_card(req: Request, now: int, tz: str = "UTC", lang: Language | None = None) -> Message:
    """The request card: who asks, their statement and the participation principles."""
    lang = _lang(lang)
    a = req.applicant
    deadline = lang._(
        "%(when)s (in %(left)s)",
        when=lang.when(req.deadline_at, tz, now_ms=now),
        left=lang.duration(req.deadline_at - now),
    )
    rows = [
        (lang._("Applicant"), a.display),
        (lang._("Applying as"), a.kind),
        (lang._("Organisation"), a.org),
        (lang._("Represented by"), a.representative),
        (lang._("Country"), country_line(a.country, lang)),
        (lang._("Stakeholder group"), a.stakeholder),
        (lang._("Region"), a.region),
        (lang._("Background"), a.background),
        (lang._("Filed by"), lang._("the applicant") if req.self_applied else req.filed_by),
        (lang._("Deadline"), deadline),
    ]
    shown = [(k, v) for k, v in rows if v]
    affirmed = (
        lang._("affirmed by the applicant")
        if req.affirmed_at is not None
        else lang._("not yet affirmed by the applicant")
    )
    statement = lang._("Statement:")
    principles = lang._("Participation principles (%(affirmed)s):", affirmed=affirmed)
    body = [f"📋 {inline(title(req, lang))}", ""]
    body += [lang._("%(field)s: %(value)s", field=k, value=clean(v)) for k, v in shown]
    body += ["", statement, clean(req.statement), "", principles]
    body += [f"• {lang._(name)} — {lang._(text)}" for name, text in PRINCIPLES]
    body += ["", lang._(_NOT_A_VOTE)]
    parts = [f"<h3>📋 {esc(title(req, lang))}</h3><ul>"]
    parts += [f"<li><b>{esc(k)}:</b> {esc(v)}</li>" for k, v in shown]
    parts.append(
        f"</ul><p><b>{esc(statement)}</b></p><blockquote>{esc(req.statement)}</blockquote>"
    )
    parts.append(f"<p>{esc(principles)}</p><ul>")
    parts += [
        f"<li><b>{esc(lang._(name))}</b> — {esc(lang._(text))}</li>" for name, text in PRINCIPLES
    ]
    parts.append(f"</ul><p>{esc(lang._(_NOT_A_VOTE))}</p>")
    return Message("request_card", req.id, "\n".join(body), rtl_html(lang, "".join(parts)))


def country_line(alpha2: str | None, lang: Language | None = None) -> str | None:
    """`Nepal (NP) — asia-pacific (ITU), Southern Asia (UN M49); least developed, landlocked
    developing` for a card or a minute. The name is CLDR's in the reader's language (through
    Babel); the ISO code is data and stays as it is."""
    lang = _lang(lang)
    country = lookup(alpha2) if alpha2 else None
    if country is None:
        return alpha2
    flags = [
        lang._(label)
        for label, on in (
            (N_("least developed"), country.ldc),
            (N_("landlocked developing"), country.lldc),
            (N_("small island developing"), country.sids),
            (
                N_("developing"),
                country.developing and not (country.ldc or country.lldc or country.sids),
            ),
        )
        if on
    ]
    name = country.name if lang.code == "en" else lang.territory(country.alpha2)
    where = lang._(
        "%(itu)s (ITU), %(m49)s (UN M49)",
        itu=country.itu_region,
        m49=country.m49_subregion or country.m49_region,
    )
    line = f"{name} ({country.alpha2}) — {where}"
    return line + (f"; {', '.join(flags)}" if flags else "")


def ballot(
    req: Request,
    prefix: str,
    tz: str = "UTC",
    now: int | None = None,
    lang: Language | None = None,
) -> Message:
    """The ballot: react to take a position, or use a command with a reason. The commands
    keep their English words in every language (the parser accepts them everywhere)."""
    lang = _lang(lang)
    legend = [f"{emoji} {position_label(lang, position)}" for emoji, position in LEGEND]
    closes = lang.when(req.deadline_at, tz, now_ms=now)
    commands = (
        f"{prefix} support|no-objection|concern|abstain [REASON] · "
        f"{prefix} object REASON · {prefix} recuse · {prefix} withdraw"
    )
    lines = [
        lang._("🗳 Ballot for %(title)s", title=inline(title(req, lang))),
        lang._(
            "React to this message: %(legend)s (the live tally is pinned)",
            legend=" · ".join(legend),
        ),
        lang._("Or with a reason: %(commands)s", commands=commands),
        lang._("An objection blocks consensus until the chair disposes of it, so please say why."),
        lang._("Closes %(when)s.", when=closes),
    ]
    code = (
        f"<code>{esc(prefix)} support|no-objection|concern|abstain [REASON]</code> · "
        f"<code>{esc(prefix)} object REASON</code> · "
        f"<code>{esc(prefix)} recuse</code> · <code>{esc(prefix)} withdraw</code>"
    )
    heading = lang.markup("🗳 Ballot for %(title)s", title=f"<b>{esc(title(req, lang))}</b>")
    react = lang.markup(
        "React to this message: %(legend)s (the live tally is pinned)",
        legend=" · ".join(esc(x) for x in legend),
    )
    reason = lang.markup("Or with a reason: %(commands)s", commands=code)
    html_ = (
        f"<p>{heading}</p><p>{react}</p><p>{reason}</p><p>{esc(lines[3])}</p><p>{esc(lines[4])}</p>"
    )
    return Message("ballot", req.id, "\n".join(lines), rtl_html(lang, html_))


def announcement(
    req: Request,
    tz: str = "UTC",
    now: int | None = None,
    via: str | None = None,
    lang: Language | None = None,
) -> Message:
    """Main-room note that a request was filed and its room opened."""
    lang = _lang(lang)
    link = _permalink(req.room_id, via) if req.room_id else ""
    until = lang.when(req.deadline_at, tz, now_ms=now)
    opened = N_("📋 %(title)s is open until %(when)s.")
    body = f"{lang._(opened, title=inline(title(req, lang)), when=until)} {link}".strip()
    html_ = (
        f"<p>{lang.markup(opened, title=f'<b>{esc(title(req, lang))}</b>', when=esc(until))}"
        + (f' <a href="{esc(link)}">{esc(lang._("Go to its room"))}</a>' if link else "")
        + "</p>"
    )
    return Message("reply", req.id, body, rtl_html(lang, html_), {"event": "opened"})


def _names(names: Sequence[str], prefix: str, lang: Language | None = None) -> str:
    """Up to MAX_LISTED names, then how many more (events over ~64 KB are refused)."""
    lang = _lang(lang)
    shown = ", ".join(lang.isolate(n) for n in names[:MAX_LISTED])
    if len(names) > MAX_LISTED:
        more = len(names) - MAX_LISTED
        shown += " " + lang.ngettext(
            "… and %(n)s more (%(hint)s)",
            "… and %(n)s more (%(hint)s)",
            more,
            hint=_export_hint(lang, prefix),
        )
    return shown


def _counts_line(counts: Mapping[Position, int], lang: Language | None = None) -> str:
    lang = _lang(lang)
    return ", ".join(
        f"{position_label(lang, p)} {lang.isolate(lang.number(counts.get(p, 0)))}"
        for p in POSITION_ORDER
    )


def _breakdown_lines(rows: Sequence[GroupBreakdown], lang: Language | None = None) -> list[str]:
    lang = _lang(lang)
    lines = []
    for row in rows:
        if row.members == 0:
            continue
        detail = lang._(
            "%(participated)s/%(members)s took part",
            participated=lang.number(row.participated),
            members=lang.number(row.members),
        )
        if row.counts is not None:
            shown = [
                f"{position_label(lang, p)} {lang.isolate(lang.number(n))}"
                for p, n in row.counts.items()
                if n
            ]
            if shown:
                detail += f" ({', '.join(shown)})"
        else:
            detail += " *"
        lines.append(f"{row.name}: {detail}")
    return lines


def _objection_line(o: Objection, lang: Language | None = None) -> str:
    lang = _lang(lang)
    reason = inline(o.reason, 300) if o.reason else lang._("(no reason given yet)")
    return lang._("#%(id)s by %(member)s: %(reason)s", id=o.id, member=o.member, reason=reason)


def summary(
    req: Request,
    sense: Sense,
    *,
    final: bool,
    mentions: Iterable[str] = (),
    hums: Phrase | None = None,
    shape: RoughShape | None = None,
    prefix: str = "!cb",
    updated: str | None = None,
    lang: Language | None = None,
) -> Message:
    """The draft sense of the room (or the current status when not `final`).

    `shape` says how rough a rough consensus is; `updated` says what changed when the draft
    is an edit of an earlier one.
    """
    lang = _lang(lang)
    proposal = lang._(PROPOSAL_LABELS[sense.proposal])
    named = inline(title(req, lang))
    lines = [
        lang._("🧭 Draft sense of the room for %(title)s", title=named)
        if final
        else lang._("🧭 Status for %(title)s", title=named),
        lang._("Proposed: %(proposal)s", proposal=proposal)
        if final
        else lang._("If it closed now: %(proposal)s", proposal=proposal),
    ]
    participation = lang.ngettext(
        "%(participated)s of %(n)s eligible member took a position",
        "%(participated)s of %(n)s eligible members took a position",
        sense.eligible,
        participated=lang.number(sense.participated),
    )
    if sense.recused:
        participation += lang.ngettext("; %(n)s recused", "; %(n)s recused", len(sense.recused))
    lines.append(participation)
    lines.append(lang._("Positions: %(counts)s", counts=_counts_line(sense.counts, lang)))
    if sense.open_objections:
        lines.append(lang._("Objections to address:"))
        lines += [f"  {_objection_line(o, lang)}" for o in sense.open_objections[:MAX_LISTED]]
        if len(sense.open_objections) > MAX_LISTED:
            more = len(sense.open_objections) - MAX_LISTED
            lines.append(
                "  "
                + lang.ngettext(
                    "… and %(n)s more (%(hint)s)",
                    "… and %(n)s more (%(hint)s)",
                    more,
                    hint=_export_hint(lang, prefix),
                )
            )
    unexplained = [o for o in sense.open_objections if o.needs_reason]
    if unexplained:
        lines.append(
            lang._(
                "Still without a reason: %(ids)s",
                ids=", ".join(f"#{o.id}" for o in unexplained[:MAX_LISTED]),
            )
        )
    if sense.in_the_rough:
        lines.append(
            lang._(
                "In the rough (objection addressed, not accommodated): %(names)s",
                names=_names(sense.in_the_rough, prefix, lang),
            )
        )
    if shape is not None and shape.in_the_rough:
        lines.append(
            lang._(
                "How rough: %(rough)s in the rough, %(support)s in support; by stakeholder "
                "group: %(groups)s; by region: %(regions)s",
                rough=lang.number(shape.in_the_rough),
                support=lang.number(shape.support),
                groups=_rough_groups(shape.by_stakeholder, lang),
                regions=_rough_groups(shape.by_region, lang),
            )
        )
    if shape is not None and shape.warning:
        lines.append(f"⚠ {lang._(shape.warning)}.")
    if sense.proposal is Proposal.INSUFFICIENT_PARTICIPATION and final:
        lines.append(
            lang._(
                "Too few took part to judge consensus. Extend it: %(command)s reopens the "
                "ballot and reminds those who have not taken part (or decide with a rationale).",
                command=f"{prefix} extend 3d",
            )
        )
    if sense.did_not_take_part:
        lines.append(
            lang._(
                "Did not take part: %(names)s", names=_names(sense.did_not_take_part, prefix, lang)
            )
        )
    lines.append(lang._("By stakeholder group:"))
    lines += [f"  {x}" for x in _breakdown_lines(sense.by_stakeholder, lang)]
    lines.append(lang._("By region:"))
    lines += [f"  {x}" for x in _breakdown_lines(sense.by_region, lang)]
    if sense.by_development:
        lines.append(lang._("By development status (UN M49):"))
        lines += [f"  {x}" for x in _breakdown_lines(sense.by_development, lang)]
    if any(line.endswith(" *") for line in lines):
        lines.append(
            "  " + lang._("* positions not shown for groups under 3, so nobody is singled out")
        )
    if sense.silent_stakeholder_groups:
        lines.append(
            lang._(
                "No participation from: %(groups)s",
                groups=", ".join(sense.silent_stakeholder_groups),
            )
        )
    if sense.unrepresented_stakeholder_groups:
        lines.append(
            lang._(
                "No eligible members from: %(groups)s",
                groups=", ".join(sense.unrepresented_stakeholder_groups),
            )
        )
    if hums is not None:
        lines.append(lang._("Hums: %(hums)s", hums=hums.say(lang)))
    if final:
        lines.append(
            lang._(
                "The chair judges consensus: confirm this draft, or decide otherwise with a "
                "rationale."
            )
        )
    if updated:
        lines.insert(1, lang._("Updated: %(what)s", what=lang._(updated)))
    body = "\n".join(lines)
    html_ = "<p>" + "<br>".join(esc(x, 10_000) for x in lines) + "</p>"
    data: dict[str, Any] = {
        **_count_block(sense),
        "proposed_outcome": sense.proposal.value,
        "in_the_rough": list(sense.in_the_rough[:MAX_LISTED]),
        "did_not_take_part": list(sense.did_not_take_part[:MAX_LISTED]),
        "did_not_take_part_count": len(sense.did_not_take_part),
        "final": final,
        "in_the_rough_count": len(sense.in_the_rough),
        "rough_warning": None if shape is None else shape.warning,
    }
    if hums is not None:
        data["hums"] = hums.say()  # the machine-readable block stays English
    return Message("summary", req.id, body, rtl_html(lang, html_), data, tuple(mentions))


def _count_block(sense: Sense) -> dict[str, Any]:
    """The counts every reader's data block carries (summary, live tally), one way."""
    return {
        "counts": {p.value: sense.counts.get(p, 0) for p in POSITION_ORDER},
        "eligible": sense.eligible,
        "participated": sense.participated,
        "open_objections": len(sense.open_objections),
    }


def tally(
    req: Request, sense: Sense, closes: str, prefix: str = "!cb", lang: Language | None = None
) -> Message:
    """The live tally of a ballot: pinned in the request room and edited as positions
    change, so there is one count to read (never who hummed)."""
    lang = _lang(lang)
    participation = lang.ngettext(
        "%(participated)s of %(n)s eligible member took a position",
        "%(participated)s of %(n)s eligible members took a position",
        sense.eligible,
        participated=lang.number(sense.participated),
    )
    if sense.recused:
        participation += lang.ngettext("; %(n)s recused", "; %(n)s recused", len(sense.recused))
    lines = [
        lang._("📊 Live tally for %(title)s", title=inline(title(req, lang))),
        lang._("Positions: %(counts)s", counts=_counts_line(sense.counts, lang)),
        participation,
    ]
    if sense.did_not_take_part:
        lines.append(
            lang._("Not yet: %(names)s", names=_names(sense.did_not_take_part, prefix, lang))
        )
    if sense.open_objections:
        lines.append(lang._("Open objections:"))
        lines += [f"  {_objection_line(o, lang)}" for o in sense.open_objections[:MAX_LISTED]]
    lines.append(lang._("Closes %(when)s. Only each member's latest position counts.", when=closes))
    body = "\n".join(lines)
    html_ = "<p>" + "<br>".join(esc(x, 10_000) for x in lines) + "</p>"
    data: dict[str, Any] = {
        **_count_block(sense),
        "did_not_take_part_count": len(sense.did_not_take_part),
    }
    return Message("tally", req.id, body, rtl_html(lang, html_), data)


def _rough_groups(rows: Sequence[tuple[str, int | None]], lang: Language | None = None) -> str:
    """`academia 2, europe *` (a group too small to show gets a star, as in the breakdown)."""
    lang = _lang(lang)
    shown = ", ".join(
        f"{name} {'*' if n is None else lang.isolate(lang.number(n))}" for name, n in rows
    )
    return shown or lang._("none")


_OUTCOME_SENTENCES = {
    "admit": N_("🏁 %(title)s: the applicant is admitted. Decided by %(chair)s."),
    "decline": N_("🏁 %(title)s: the applicant is declined. Decided by %(chair)s."),
    "no-consensus": N_(
        "🏁 %(title)s: the applicant was not admitted: no consensus. Decided by %(chair)s."
    ),
}
OUTCOME_LABELS = {
    "admit": N_("admit"),
    "decline": N_("decline"),
    "no-consensus": N_("no consensus"),
}
# The state words of `list`, `status` and `objections`: English as stored, translated when
# shown. "open" is one word for both (a request's ballot, an objection not disposed of).
STATE_LABELS: Mapping[str, str] = {
    RequestState.TRIAGE: N_("triage"),
    RequestState.PENDING: N_("pending"),
    RequestState.OPEN: N_("open"),
    RequestState.DRAFTED: N_("drafted"),
    RequestState.DECIDED: N_("decided"),
    RequestState.BLOCKED: N_("blocked"),
    RequestState.CANCELLED: N_("cancelled"),
    ObjectionState.ACCOMMODATED: N_("accommodated"),
    ObjectionState.ADDRESSED: N_("addressed"),
    ObjectionState.DUPLICATE: N_("duplicate"),
    ObjectionState.WITHDRAWN: N_("withdrawn"),
}


def state_label(lang: Language, state: RequestState | ObjectionState) -> str:
    """A request's or an objection's state in the reader's language."""
    return lang._(STATE_LABELS.get(state, state.value))


_PUBLIC_OUTCOMES = {
    "admit": N_("admitted"),
    "decline": N_("declined"),
    "no-consensus": N_("no consensus"),
}


def outcome(
    req: Request,
    record_head: str,
    prefix: str = "!cb",
    appeal_window_ms: int | None = None,
    tz: str = "UTC",
    lang: Language | None = None,
) -> Message:
    """The chair's decision, announced in the request room and the main room, with the head
    of the frozen decision record so anyone can check an export against it."""
    assert req.outcome is not None
    lang = _lang(lang)
    sentence = _OUTCOME_SENTENCES[req.outcome.value]
    rationale = inline(req.rationale, 1_000) if req.rationale else ""
    chair = req.decided_by or ""
    body = lang._(sentence, title=inline(title(req, lang)), chair=chair)
    if rationale:
        body += "\n" + lang._("Rationale: %(rationale)s", rationale=rationale)
    html_ = (
        f"<p>{lang.markup(sentence, title=f'<b>{esc(title(req, lang))}</b>', chair=esc(chair))}</p>"
    )
    if rationale:
        html_ += f"<p>{lang.markup('Rationale: %(rationale)s', rationale=esc(rationale))}</p>"
    if appeal_window_ms is not None and req.decided_at is not None:
        until = lang.when(req.decided_at + appeal_window_ms, tz, now_ms=req.decided_at)
        appeal = lang._(
            "Members and the applicant may appeal until %(when)s: %(command)s",
            when=until,
            command=f"{prefix} appeal {req.number} REASON",
        )
        body += f"\n{appeal}"
        html_ += f"<p>{esc(appeal)}</p>"
    check = f"consensus-bot export --verify FILE --head {record_head}"
    record = N_("Record: %(head)s — members get it with %(export)s; check a copy with: %(check)s")
    body += "\n" + lang._(
        record, head=f"{record_head[:16]}…", export=f"{prefix} export {req.number}", check=check
    )
    html_ += (
        "<p>"
        + lang.markup(
            record,
            head=f"<code>{esc(record_head[:16])}…</code>",
            export=f"<code>{esc(prefix)} export {req.number}</code>",
            check=f"<code>{esc(check)}</code>",
        )
        + "</p>"
    )
    data = {
        "outcome": req.outcome.value,
        "decided_by": req.decided_by,
        "rationale": req.rationale or "",
        "record_head": record_head,
    }
    return Message("outcome", req.id, body, rtl_html(lang, html_), data)


def public_outcome(
    req: Request, record_head: str, lang: Language | None = None, *, folder: str = ""
) -> Message:
    """The outcome as the public room (`publish.room`) hears it: the decision, the chair's
    rationale, the relative link of its page on the published site (under `folder`: its
    group's, in a bot of several) and the record head; no member's name, and the
    applicant's only with their consent."""
    assert req.outcome is not None
    lang = _lang(lang)
    verb = lang._(_PUBLIC_OUTCOMES[req.outcome.value])
    page = f"{folder}decisions/{req.number}/index.html"
    who = (
        f": {inline(req.applicant.name or req.applicant.applicant)}" if req.publish_consent else ""
    )
    rationale = inline(req.rationale, 1_000) if req.rationale else ""
    line = N_("🏁 Request #%(id)s%(who)s — %(outcome)s.")
    body = lang._(line, id=req.number, who=who, outcome=verb)
    marked = lang.markup(line, id=str(req.number), who=esc(who), outcome=f"<b>{esc(verb)}</b>")
    html_ = f"<p>{marked}</p>"
    if rationale:
        body += "\n" + lang._("Rationale: %(rationale)s", rationale=rationale)
        html_ += f"<p>{lang.markup('Rationale: %(rationale)s', rationale=esc(rationale))}</p>"
    page_line = lang._("Page: %(page)s", page=page)
    head_line = lang._("Record head: %(head)s", head=record_head)
    body += f"\n{page_line}\n{head_line}"
    html_ += (
        f"<p>{lang.markup('Page: %(page)s', page=f'<code>{esc(page)}</code>')}<br>"
        f"{lang.markup('Record head: %(head)s', head=f'<code>{esc(record_head)}</code>')}</p>"
    )
    data = {"outcome": req.outcome.value, "page": page, "record_head": record_head}
    return Message("public_outcome", req.id, body, rtl_html(lang, html_), data)


def reply(
    text: str,
    *,
    request: int | None = None,
    reply_to: str | None = None,
    data: Mapping[str, Any] | None = None,
    html_text: str | None = None,
    mentions: Iterable[str] = (),
    lang: Language | None = None,
) -> Message:
    """A short answer to a command. `text` is bot-authored; user parts must be cleaned by caller."""
    return Message(
        "reply",
        request,
        text,
        rtl_html(
            _lang(lang),
            html_text
            if html_text is not None
            else "<p>" + esc(text, 20_000).replace("\n", "<br>") + "</p>",
        ),
        dict(data or {}),
        tuple(mentions),
        reply_to,
    )


POLL_QUESTION = N_("Your position on %(title)s")


def poll_start(req: Request, lang: Language | None = None) -> dict[str, Any]:
    """The ballot offered as a native poll (MSC3381): one answer per position."""
    lang = _lang(lang)
    answers = [
        {
            "id": position.value,
            "org.matrix.msc1767.text": f"{emoji} {position_label(lang, position)}",
        }
        for emoji, position in LEGEND
    ]
    question = lang._(POLL_QUESTION, title=inline(title(req, lang), 200))
    fallback = (
        question
        + "\n"
        + "\n".join(f"{i + 1}. {a['org.matrix.msc1767.text']}" for i, a in enumerate(answers))
    )
    return {
        "org.matrix.msc3381.poll.start": {
            "kind": "org.matrix.msc3381.poll.undisclosed",
            "max_selections": 1,
            "question": {"org.matrix.msc1767.text": question},
            "answers": answers,
        },
        "org.matrix.msc1767.text": fallback,
        "body": fallback,
        "m.mentions": {},
        "consensus_bot": {"kind": "ballot", "request": req.id, "format": "poll"},
    }


def poll_end(req: Request, lang: Language | None = None) -> dict[str, Any]:
    """Close the native poll when the ballot closes."""
    lang = _lang(lang)
    text = lang._("The ballot of %(title)s is closed.", title=inline(title(req, lang), 200))
    return {
        "org.matrix.msc3381.poll.end": {},
        "org.matrix.msc1767.text": text,
        "body": text,
        "m.mentions": {},
        "consensus_bot": {"kind": "ballot", "request": req.id, "format": "poll-end"},
    }


def reminder(
    req: Request,
    member: str,
    when_local: str,
    left: str,
    prefix: str,
    lang: Language | None = None,
) -> Message:
    """A direct message to a member who has not taken a position yet, in their language
    (`when_local` and `left` already said in it)."""
    lang = _lang(lang)
    link = _permalink(req.room_id) if req.room_id else ""
    command = f"{prefix} support --request {req.number}"
    sentence = N_(
        "⏰ %(member)s: the ballot of %(title)s closes %(when)s (in %(left)s) and you have "
        "not taken a position yet. React to the ballot in %(room)s, or answer here with "
        "%(command)s (or no-objection, concern, object REASON, abstain, recuse)."
    )
    body = lang._(
        sentence,
        member=member,
        title=inline(title(req, lang)),
        when=when_local,
        left=left,
        room=lang._("its room"),
        command=command,
    )
    body = f"{body} {link}".strip()
    room = esc(lang._("its room"))
    html_ = (
        "<p>"
        + lang.markup(
            sentence,
            member=esc(member),
            title=f"<b>{esc(title(req, lang))}</b>",
            when=esc(when_local),
            left=esc(left),
            room=f'<a href="{esc(link)}">{room}</a>' if link else room,
            command=f"<code>{esc(command)}</code>",
        )
        + "</p>"
    )
    return Message("reminder", req.id, body, rtl_html(lang, html_), {"member": member}, (member,))


def notice(
    kind: str,
    request: int | None,
    text: str,
    mentions: Iterable[str] = (),
    lang: Language | None = None,
    **data: Any,
) -> Message:
    """A bot-authored notice (text already cleaned of user input where it contains any)."""
    html_ = "<p>" + esc(text, 20_000).replace("\n", "<br>") + "</p>"
    return Message(kind, request, text, rtl_html(_lang(lang), html_), data, tuple(mentions))


def proposal_label(value: str | None, lang: Language | None = None) -> str:
    """Human label for a stored proposal value, in the reader's language."""
    return _lang(lang)._(PROPOSAL_LABELS[Proposal(value)]) if value else "—"
