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

from bot.domain.clock_rules import format_when
from bot.domain.countries import lookup
from bot.domain.durations import format_duration
from bot.domain.objections import Objection
from bot.domain.positions import LEGEND, POSITION_ORDER, Position
from bot.domain.principles import PRINCIPLES
from bot.domain.process import RoughShape
from bot.domain.request import Request
from bot.domain.sense import GroupBreakdown, Proposal, Sense
from bot.domain.text import sanitize

MAX_FIELD_CHARS = 2_000
# Homeservers refuse events over 64 KiB: a summary names at most this many people per list;
# the full lists are in the exported record.
MAX_LISTED = 50


def _export_hint(prefix: str) -> str:
    return f"the full list is in the record: {prefix} export"


_NOT_A_VOTE = (
    "Take your position on the ballot below. This is not a vote: say whether you can live "
    "with it, and why not if you cannot."
)


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


def request_card(req: Request, now: int, tz: str = "UTC") -> Message:
    """The request card: who asks, their statement and the participation principles."""
    a = req.applicant
    rows = [
        ("Applicant", a.display),
        ("Applying as", a.kind),
        ("Organisation", a.org),
        ("Represented by", a.representative),
        ("Country", country_line(a.country)),
        ("Stakeholder group", a.stakeholder),
        ("Region", a.region),
        ("Background", a.background),
        ("Filed by", "the applicant" if req.self_applied else req.filed_by),
        (
            "Deadline",
            f"{format_when(req.deadline_at, tz, now_ms=now)} "
            f"(in {format_duration(req.deadline_at - now)})",
        ),
    ]
    shown = [(k, v) for k, v in rows if v]
    body = [f"📋 {inline(req.title)}", ""]
    body += [f"{k}: {clean(v)}" for k, v in shown]
    affirmed = (
        "affirmed by the applicant"
        if req.affirmed_at is not None
        else "not yet affirmed by the applicant"
    )
    body += ["", "Statement:", clean(req.statement), "", f"Participation principles ({affirmed}):"]
    body += [f"• {name} — {text}" for name, text in PRINCIPLES]
    body += ["", _NOT_A_VOTE]
    parts = [f"<h3>📋 {esc(req.title)}</h3><ul>"]
    parts += [f"<li><b>{k}:</b> {esc(v)}</li>" for k, v in shown]
    parts.append(f"</ul><p><b>Statement:</b></p><blockquote>{esc(req.statement)}</blockquote>")
    parts.append(f"<p><b>Participation principles</b> ({affirmed}):</p><ul>")
    parts += [f"<li><b>{name}</b> — {text}</li>" for name, text in PRINCIPLES]
    parts.append(f"</ul><p>{_NOT_A_VOTE}</p>")
    return Message("request_card", req.id, "\n".join(body), "".join(parts))


def country_line(alpha2: str | None) -> str | None:
    """`Nepal (NP) — asia-pacific (ITU), Southern Asia (UN M49); least developed, landlocked
    developing` for a card or a minute."""
    country = lookup(alpha2) if alpha2 else None
    if country is None:
        return alpha2
    flags = [
        label
        for label, on in (
            ("least developed", country.ldc),
            ("landlocked developing", country.lldc),
            ("small island developing", country.sids),
            (
                "developing",
                country.developing and not (country.ldc or country.lldc or country.sids),
            ),
        )
        if on
    ]
    where = f"{country.itu_region} (ITU), {country.m49_subregion or country.m49_region} (UN M49)"
    return f"{country.name} ({country.alpha2}) — {where}" + (
        f"; {', '.join(flags)}" if flags else ""
    )


def ballot(req: Request, prefix: str, tz: str = "UTC", now: int | None = None) -> Message:
    """The ballot: react to take a position, or use a command with a reason."""
    legend = [f"{emoji} {position.label}" for emoji, position in LEGEND]
    body = (
        f"🗳 Ballot for {inline(req.title)}\n"
        f"React to this message: {' · '.join(legend)} (the live tally is pinned)\n"
        f"Or with a reason: {prefix} support|no-objection|concern|abstain [REASON] · "
        f"{prefix} object REASON · {prefix} recuse · {prefix} withdraw\n"
        f"An objection blocks consensus until the chair disposes of it, so please say why.\n"
        f"Closes {format_when(req.deadline_at, tz, now_ms=now)}."
    )
    html_ = (
        f"<p>🗳 <b>Ballot for {esc(req.title)}</b></p>"
        f"<p>React to this message: {' · '.join(esc(x) for x in legend)}</p>"
        f"<p>Or with a reason: <code>{esc(prefix)} support|no-objection|concern|abstain "
        f"[REASON]</code> · <code>{esc(prefix)} object REASON</code> · "
        f"<code>{esc(prefix)} recuse</code> · <code>{esc(prefix)} withdraw</code></p>"
        f"<p>An objection blocks consensus until the chair disposes of it, so please say why."
        f"</p><p>Closes {esc(format_when(req.deadline_at, tz, now_ms=now))}.</p>"
    )
    return Message("ballot", req.id, body, html_)


def announcement(
    req: Request, tz: str = "UTC", now: int | None = None, via: str | None = None
) -> Message:
    """Main-room note that a request was filed and its room opened."""
    link = _permalink(req.room_id, via) if req.room_id else ""
    until = format_when(req.deadline_at, tz, now_ms=now)
    body = f"📋 {inline(req.title)} is open until {until}. {link}".strip()
    html_ = (
        f"<p>📋 <b>{esc(req.title)}</b> is open until {esc(until)}."
        + (f' <a href="{esc(link)}">Go to its room</a>' if link else "")
        + "</p>"
    )
    return Message("reply", req.id, body, html_, {"event": "opened"})


def _names(names: Sequence[str], prefix: str) -> str:
    """Up to MAX_LISTED names, then how many more (events over ~64 KB are refused)."""
    shown = ", ".join(names[:MAX_LISTED])
    if len(names) > MAX_LISTED:
        shown += f" … and {len(names) - MAX_LISTED} more ({_export_hint(prefix)})"
    return shown


def _counts_line(counts: Mapping[Position, int]) -> str:
    return ", ".join(f"{p.label} {counts.get(p, 0)}" for p in POSITION_ORDER)


def _breakdown_lines(rows: Sequence[GroupBreakdown]) -> list[str]:
    lines = []
    for row in rows:
        if row.members == 0:
            continue
        detail = f"{row.participated}/{row.members} took part"
        if row.counts is not None:
            shown = [f"{p.label} {n}" for p, n in row.counts.items() if n]
            if shown:
                detail += f" ({', '.join(shown)})"
        else:
            detail += " *"
        lines.append(f"{row.name}: {detail}")
    return lines


def _objection_line(o: Objection) -> str:
    reason = inline(o.reason, 300) if o.reason else "(no reason given yet)"
    return f"#{o.id} by {o.member}: {reason}"


def summary(
    req: Request,
    sense: Sense,
    *,
    final: bool,
    mentions: Iterable[str] = (),
    hums: str | None = None,
    shape: RoughShape | None = None,
    prefix: str = "!cb",
    updated: str | None = None,
) -> Message:
    """The draft sense of the room (or the current status when not `final`).

    `shape` says how rough a rough consensus is; `updated` says what changed when the draft
    is an edit of an earlier one.
    """
    title = "Draft sense of the room" if final else "Status"
    participation = f"{sense.participated} of {sense.eligible} eligible members took a position"
    lines = [f"🧭 {title} for {inline(req.title)}", f"Proposed: {sense.proposal.label}"]
    if not final:
        lines[1] = f"If it closed now: {sense.proposal.label}"
    lines.append(participation + (f"; {len(sense.recused)} recused" if sense.recused else ""))
    lines.append("Positions: " + _counts_line(sense.counts))
    if sense.open_objections:
        lines.append("Objections to address:")
        lines += [f"  {_objection_line(o)}" for o in sense.open_objections[:MAX_LISTED]]
        if len(sense.open_objections) > MAX_LISTED:
            more = len(sense.open_objections) - MAX_LISTED
            lines.append(f"  … and {more} more ({_export_hint(prefix)})")
    unexplained = [o for o in sense.open_objections if o.needs_reason]
    if unexplained:
        lines.append(
            "Still without a reason: " + ", ".join(f"#{o.id}" for o in unexplained[:MAX_LISTED])
        )
    if sense.in_the_rough:
        lines.append(
            "In the rough (objection addressed, not accommodated): "
            + _names(sense.in_the_rough, prefix)
        )
    if shape is not None and shape.in_the_rough:
        lines.append(
            f"How rough: {shape.in_the_rough} in the rough, {shape.support} in support; "
            "by stakeholder group: "
            + _rough_groups(shape.by_stakeholder)
            + "; by region: "
            + _rough_groups(shape.by_region)
        )
    if shape is not None and shape.warning:
        lines.append(f"⚠ {shape.warning}.")
    if sense.proposal is Proposal.INSUFFICIENT_PARTICIPATION and final:
        lines.append(
            f"Too few took part to judge consensus. Extend it: {prefix} extend 3d reopens the "
            "ballot and reminds those who have not taken part (or decide with a rationale)."
        )
    if sense.did_not_take_part:
        lines.append("Did not take part: " + _names(sense.did_not_take_part, prefix))
    lines.append("By stakeholder group:")
    lines += [f"  {x}" for x in _breakdown_lines(sense.by_stakeholder)]
    lines.append("By region:")
    lines += [f"  {x}" for x in _breakdown_lines(sense.by_region)]
    if sense.by_development:
        lines.append("By development status (UN M49):")
        lines += [f"  {x}" for x in _breakdown_lines(sense.by_development)]
    if any(line.endswith(" *") for line in lines):
        lines.append("  * positions not shown for groups under 3, so nobody is singled out")
    if sense.silent_stakeholder_groups:
        lines.append("No participation from: " + ", ".join(sense.silent_stakeholder_groups))
    if sense.unrepresented_stakeholder_groups:
        lines.append(
            "No eligible members from: " + ", ".join(sense.unrepresented_stakeholder_groups)
        )
    if hums is not None:
        lines.append(f"Hums: {hums}")
    if final:
        lines.append(
            "The chair judges consensus: confirm this draft, or decide otherwise with a rationale."
        )
    if updated:
        lines.insert(1, f"Updated: {updated}")
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
        data["hums"] = hums
    return Message("summary", req.id, body, html_, data, tuple(mentions))


def _count_block(sense: Sense) -> dict[str, Any]:
    """The counts every reader's data block carries (summary, live tally), one way."""
    return {
        "counts": {p.value: sense.counts.get(p, 0) for p in POSITION_ORDER},
        "eligible": sense.eligible,
        "participated": sense.participated,
        "open_objections": len(sense.open_objections),
    }


def tally(req: Request, sense: Sense, closes: str, prefix: str = "!cb") -> Message:
    """The live tally of a ballot: pinned in the request room and edited as positions
    change, so there is one count to read (never who hummed)."""
    lines = [
        f"📊 Live tally for {inline(req.title)}",
        f"Positions: {_counts_line(sense.counts)}",
        f"{sense.participated} of {sense.eligible} eligible members took a position"
        + (f"; {len(sense.recused)} recused" if sense.recused else ""),
    ]
    if sense.did_not_take_part:
        lines.append("Not yet: " + _names(sense.did_not_take_part, prefix))
    if sense.open_objections:
        lines.append("Open objections:")
        lines += [f"  {_objection_line(o)}" for o in sense.open_objections[:MAX_LISTED]]
    lines.append(f"Closes {closes}. Only each member's latest position counts.")
    body = "\n".join(lines)
    html_ = "<p>" + "<br>".join(esc(x, 10_000) for x in lines) + "</p>"
    data: dict[str, Any] = {
        **_count_block(sense),
        "did_not_take_part_count": len(sense.did_not_take_part),
    }
    return Message("tally", req.id, body, html_, data)


def _rough_groups(rows: Sequence[tuple[str, int | None]]) -> str:
    """`academia 2, europe *` (a group too small to show gets a star, as in the breakdown)."""
    return ", ".join(f"{name} {'*' if n is None else n}" for name, n in rows) or "none"


def outcome(
    req: Request,
    record_head: str,
    prefix: str = "!cb",
    appeal_window_ms: int | None = None,
    tz: str = "UTC",
) -> Message:
    """The chair's decision, announced in the request room and the main room, with the head
    of the frozen decision record so anyone can check an export against it."""
    assert req.outcome is not None
    verb = {
        "admit": "is admitted",
        "decline": "is declined",
        "no-consensus": "was not admitted: no consensus",
    }[req.outcome.value]
    rationale = inline(req.rationale, 1_000) if req.rationale else ""
    body = f"🏁 {inline(req.title)}: the applicant {verb}. Decided by {req.decided_by}."
    if rationale:
        body += f"\nRationale: {rationale}"
    html_ = (
        f"<p>🏁 <b>{esc(req.title)}</b>: the applicant {verb}. "
        f"Decided by {esc(req.decided_by)}.</p>"
    )
    if rationale:
        html_ += f"<p><b>Rationale:</b> {esc(rationale)}</p>"
    if appeal_window_ms is not None and req.decided_at is not None:
        until = format_when(req.decided_at + appeal_window_ms, tz, now_ms=req.decided_at)
        appeal = (
            f"Members and the applicant may appeal until {until}: {prefix} appeal {req.id} REASON"
        )
        body += f"\n{appeal}"
        html_ += f"<p>{esc(appeal)}</p>"
    check = f"consensus-bot export --verify FILE --head {record_head}"
    body += (
        f"\nRecord: {record_head[:16]}… — members get it with {prefix} export {req.id}; "
        f"check a copy with: {check}"
    )
    html_ += (
        f"<p>Record: <code>{esc(record_head[:16])}…</code> — members get it with "
        f"<code>{esc(prefix)} export {req.id}</code>; check a copy with "
        f"<code>{esc(check)}</code></p>"
    )
    data = {
        "outcome": req.outcome.value,
        "decided_by": req.decided_by,
        "rationale": req.rationale or "",
        "record_head": record_head,
    }
    return Message("outcome", req.id, body, html_, data)


def public_outcome(req: Request, record_head: str) -> Message:
    """The outcome as the public room (`publish.room`) hears it: the decision, the chair's
    rationale, the relative link of its page on the published site and the record head;
    no member's name, and the applicant's only with their consent."""
    assert req.outcome is not None
    label = {"admit": "admitted", "decline": "declined", "no-consensus": "no consensus"}
    verb = label[req.outcome.value]
    page = f"decisions/{req.id}/index.html"
    who = (
        f": {inline(req.applicant.name or req.applicant.applicant)}" if req.publish_consent else ""
    )
    rationale = inline(req.rationale, 1_000) if req.rationale else ""
    body = f"🏁 Request #{req.id}{who} — {verb}."
    html_ = f"<p>🏁 Request #{req.id}{esc(who)} — <b>{esc(verb)}</b>.</p>"
    if rationale:
        body += f"\nRationale: {rationale}"
        html_ += f"<p><b>Rationale:</b> {esc(rationale)}</p>"
    body += f"\nPage: {page}\nRecord head: {record_head}"
    html_ += (
        f"<p>Page: <code>{esc(page)}</code><br>Record head: <code>{esc(record_head)}</code></p>"
    )
    data = {"outcome": req.outcome.value, "page": page, "record_head": record_head}
    return Message("public_outcome", req.id, body, html_, data)


def reply(
    text: str,
    *,
    request: int | None = None,
    reply_to: str | None = None,
    data: Mapping[str, Any] | None = None,
    html_text: str | None = None,
    mentions: Iterable[str] = (),
) -> Message:
    """A short answer to a command. `text` is bot-authored; user parts must be cleaned by caller."""
    return Message(
        "reply",
        request,
        text,
        html_text
        if html_text is not None
        else "<p>" + esc(text, 20_000).replace("\n", "<br>") + "</p>",
        dict(data or {}),
        tuple(mentions),
        reply_to,
    )


POLL_QUESTION = "Your position on {title}"


def poll_start(req: Request) -> dict[str, Any]:
    """The ballot offered as a native poll (MSC3381): one answer per position."""
    answers = [
        {"id": position.value, "org.matrix.msc1767.text": f"{emoji} {position.label}"}
        for emoji, position in LEGEND
    ]
    question = POLL_QUESTION.format(title=inline(req.title, 200))
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


def poll_end(req: Request) -> dict[str, Any]:
    """Close the native poll when the ballot closes."""
    text = f"The ballot of {inline(req.title, 200)} is closed."
    return {
        "org.matrix.msc3381.poll.end": {},
        "org.matrix.msc1767.text": text,
        "body": text,
        "m.mentions": {},
        "consensus_bot": {"kind": "ballot", "request": req.id, "format": "poll-end"},
    }


def reminder(req: Request, member: str, when_local: str, left: str, prefix: str) -> Message:
    """A direct message to a member who has not taken a position yet."""
    link = _permalink(req.room_id) if req.room_id else ""
    body = (
        f"⏰ {member}: the ballot of {inline(req.title)} closes {when_local} (in {left}) and "
        f"you have not taken a position yet. React to the ballot in its room, or answer here "
        f"with {prefix} support --request {req.id} (or no-objection, concern, object REASON, "
        f"abstain, recuse). {link}"
    ).strip()
    html_ = (
        f"<p>⏰ {esc(member)}: the ballot of <b>{esc(req.title)}</b> closes {esc(when_local)} "
        f"(in {esc(left)}) and you have not taken a position yet. React to the ballot in "
        + (f'<a href="{esc(link)}">its room</a>' if link else "its room")
        + f", or answer here with <code>{esc(prefix)} support --request {req.id}</code> (or "
        f"no-objection, concern, object REASON, abstain, recuse).</p>"
    )
    return Message("reminder", req.id, body, html_, {"member": member}, (member,))


def notice(
    kind: str, request: int | None, text: str, mentions: Iterable[str] = (), **data: Any
) -> Message:
    """A bot-authored notice (text already cleaned of user input where it contains any)."""
    html_ = "<p>" + esc(text, 20_000).replace("\n", "<br>") + "</p>"
    return Message(kind, request, text, html_, data, tuple(mentions))


def proposal_label(value: str | None) -> str:
    """Human label for a stored proposal value."""
    return Proposal(value).label if value else "—"
