"""The renderings of a decision record: the JSON file, a CSV of positions, Markdown minutes.

Every function takes a record as built by `bot.domain.record.build_record` (or parsed from
an exported JSON file) and returns text. The JSON rendering is the authoritative export;
the CSV and Markdown renderings are for people, and every piece of user text in them is
made inert (no spreadsheet formulas, no Markdown links, HTML, headings or lists). Pure:
standard library and `bot.domain` only.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from bot.domain.durations import MIN_TS, clamp_ts, format_utc
from bot.domain.lifecycle import Outcome
from bot.domain.objections import ObjectionState
from bot.domain.positions import POSITION_ORDER, Position
from bot.domain.sense import MIN_GROUP_FOR_POSITIONS, Proposal
from bot.domain.text import N_, SOURCE, Speaker, sanitize

# --------------------------------------------------------------------------- JSON and CSV


def render_json(record: Mapping[str, Any]) -> str:
    """The record as an indented UTF-8 JSON document (fields in their documented order)."""
    return json.dumps(record, indent=2, ensure_ascii=False) + "\n"


CSV_COLUMNS: tuple[str, ...] = (
    "seq",
    "at",
    "member",
    "stakeholder",
    "region",
    "position",
    "reason",
    "source",
    "event_id",
    "retracted",
    "retracted_at",
    "counted",
    "status",
)
_MXID = re.compile(r"@[a-z0-9._=/+-]+:[A-Za-z0-9.-]+(:[0-9]{1,5})?")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object, *, identifier: bool = False) -> str:
    """A CSV cell that a spreadsheet will not run as a formula nor show disguised.

    Sanitised first, so an invisible character cannot hide a leading `=` from the check.
    """
    text = sanitize(None if value is None else str(value))
    if identifier and _MXID.fullmatch(text):
        return text
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def render_csv(record: Mapping[str, Any]) -> str:
    """One row per position input (every change, withdrawals and retracted ones included).

    `position` is `withdrawn` for a withdrawal; `retracted` is `yes` when the input was
    later removed by a redaction (`retracted_at` says when); `counted` and `status` say whether
    the counting rule counted it (`late`: received after the close). Text cells lose bidi, invisible
    and control characters; cells that a spreadsheet would read as a formula get a leading
    apostrophe.
    """
    groups = {e["user_id"]: e for e in record.get("eligible", [])}
    retracted = {
        e["event_id"]: e["at"] for e in record.get("entries", []) if e.get("type") == "retracted"
    }
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for e in record.get("entries", []):
        if e.get("type") != "position":
            continue
        member = e["member"]
        who = groups.get(member, {})
        writer.writerow(
            [
                e["seq"],
                e["at"],
                _cell(member, identifier=True),
                _cell(who.get("stakeholder")),
                _cell(who.get("region")),
                "withdrawn" if e["position"] is None else e["position"],
                _cell(e.get("reason")),
                e["source"],
                _cell(e["event_id"], identifier=True),
                "yes" if e["event_id"] in retracted else "no",
                retracted.get(e["event_id"], ""),
                "yes" if e.get("counted", True) else "no",
                _cell(e.get("status", "counted")),
            ]
        )
    return buffer.getvalue()


# --------------------------------------------------------------------------- Markdown

# Everything CommonMark/GFM could read as markup inside a line (links, images, HTML,
# emphasis, code, tables, strikethrough, entities, headings, mentions, math).
_MD_INLINE = re.compile(r"([\\`*_{}\[\]()<>#|~&!@$])")
# Bare URLs. GFM and its kin (cmark-gfm on GitHub, comrak, goldmark, markdig,
# markdown-it's linkify) make links of `https://host/…`, `www.host…`, `mailto:…` and, in
# markdown-it, of `//host` and a bare `host.com/…`, without any markup. In a word holding
# any of these (or anything like a host name), `:`, `/` and `.` get a backslash too.
# Why escape rather than wrap the URL in a code span: a code span's content cannot be
# escaped, so a backtick in the URL would close it early and a `|` would still split a
# table cell; every other piece of user text here is escaped the same way. Why it works:
# the parsers recognise these links at an unescaped `:` followed by `//` (or at `www.`,
# `mailto:`), and an escaped character is consumed as a literal before they look; the
# escaped dots and slashes split what linkifiers that scan text runs would read as a
# host. The reader still sees the URL exactly as typed, as text. Beyond the reach of
# escaping: renderers that linkify the text after rendering it, and GFM's mailto links
# for a bare `name@host.tld` (cmark-gfm finds those after escapes are resolved).
_BARE_LINK = re.compile(
    r"(?i)//|www\.|\b(?:mailto|tel|xmpp):"
    # a host name where a linkifier starts one (not after `:`, as in @bob:example.org)
    r"|(?:^[-+=]?|[^\w.:/-]|_)[^\W_][\w-]*\.[^\W\d_]{2}"
)
_MD_INLINE_LINK = re.compile(r"([\\`*_{}\[\]()<>#|~&!@$:/.])")
_WORD = re.compile(r"\S+")
_MD_LINE_START = re.compile(r"^([-+=]|\d+(?=[.)]))")
_SCHEME = re.compile(r"(?i)\b(javascript|vbscript|data|file)(\s*):")


def md_escape(text: str | None) -> str:
    """User text made inert in Markdown: one line, every markup character escaped.

    Links, images, raw HTML, headings, lists and code cannot form, bare URLs are not
    turned into links, and `javascript:` (and `vbscript:`, `data:`, `file:`) lose their
    meaning as URL schemes.
    """
    return " ".join(_md_lines(text)).strip()


def _md_lines(text: str | None) -> list[str]:
    if not text:
        return []
    # The one sanitiser (bidi, invisible and control characters, lone surrogates), no cap:
    # the minutes hold the whole text.
    text = sanitize(text.replace("\r\n", "\n").replace("\r", "\n"))
    out = []
    for raw in text.split("\n"):
        line = _WORD.sub(_md_word, raw.strip())
        line = _MD_LINE_START.sub(
            lambda m: m.group(1) + "\\" if m.group(1)[0].isdigit() else "\\" + m.group(1), line
        )
        out.append(_SCHEME.sub(r"\1\2\\:", line))
    return out


def _md_word(match: re.Match[str]) -> str:
    """One whitespace-free run of user text, escaped (more thoroughly when it holds a URL)."""
    word = match.group(0)
    markup = _MD_INLINE_LINK if _BARE_LINK.search(word) else _MD_INLINE
    return markup.sub(r"\\\1", word)


def md_quote(text: str | None, lang: Speaker | None = None) -> str:
    """User text as a Markdown block quote, line breaks kept, every line escaped."""
    lines = _md_lines(text)
    if not any(lines):
        return "> *" + (lang or SOURCE)._("(empty)") + "*"
    return "\n".join(f"> {line}".rstrip() + ("  " if line else "") for line in lines).rstrip()


_STAKEHOLDER_LABELS = {
    "government": N_("Government"),
    "private-sector": N_("Private sector"),
    "civil-society": N_("Civil society"),
    "technical-community": N_("Technical community"),
    "academia": N_("Academia"),
    "intergovernmental": N_("Intergovernmental organisations"),
    "international-organization": N_("International organisations"),
}
_REGION_LABELS = {
    "africa": N_("Africa"),
    "americas": N_("Americas"),
    "arab-states": N_("Arab States"),
    "asia-pacific": N_("Asia-Pacific"),
    "europe": N_("Europe"),
    "cis": N_("CIS"),
}
_OUTCOME_LABELS = {
    Outcome.ADMIT.value: N_("admit"),
    Outcome.DECLINE.value: N_("decline"),
    Outcome.NO_CONSENSUS.value: N_("no consensus (the applicant is not admitted)"),
}
_DISPOSITION_NOTES = {
    ObjectionState.ACCOMMODATED.value: N_("accommodated: the issue was resolved"),
    ObjectionState.ADDRESSED.value: N_(
        "addressed: considered and answered but not accepted; the objector is in the rough"
    ),
    ObjectionState.DUPLICATE.value: N_("duplicate of another objection"),
    ObjectionState.WITHDRAWN.value: N_("withdrawn"),
    ObjectionState.OPEN.value: N_("open: not yet disposed of"),
}


def _label(t: Speaker, value: str | None, labels: Mapping[str, str]) -> str:
    if not value:
        return t._("not given")
    return t._(labels[value]) if value in labels else md_escape(value)


def _position_label(t: Speaker, value: str | None) -> str:
    if value is None:
        return t._("withdrawn")
    try:
        return t._(Position(value).label)
    except ValueError:
        return md_escape(value)


def _proposal_label(t: Speaker, value: str | None) -> str:
    if value is None:
        return t._("none")
    try:
        return t._(Proposal(value).label)
    except ValueError:
        return md_escape(value)


def _when(t: Speaker, ms: int | None) -> str:
    """A moment in UTC, written the same in every language (`2026-11-23 15:44 UTC`)."""
    if ms is None:
        return "—"
    moment, clamped = clamp_ts(ms)
    if clamped:  # a corrupt or forged time: say so rather than crash or invent a date
        if moment == MIN_TS:
            return t._("before %(when)s", when=format_utc(moment))
        return t._("after %(when)s", when=format_utc(moment))
    return format_utc(moment)


def _quoted(text: str | None) -> str:
    return f"“{md_escape(text)}”" if text and text.strip() else ""


# Why an input did not count, as the minutes say it (counted and retracted ones say nothing:
# a retraction has its own line).
_NOT_COUNTED = {
    "late": N_(", late: received after the ballot closed, not counted"),
    "not-eligible": N_(", not counted: not eligible"),
    "wrong-room": N_(", not counted: outside the request's room"),
}
# How an input reached the bot (the record's `source`), as the minutes say it.
_SOURCES = {
    "reaction": N_("reaction"),
    "command": N_("command"),
    "poll": N_("poll"),
    "input": N_("input"),
}


def _source(t: Speaker, value: object) -> str:
    text = str(value)
    return t._(_SOURCES[text]) if text in _SOURCES else md_escape(text)


def _entry_line(t: Speaker, e: Mapping[str, Any], sources: Mapping[str, str]) -> str | None:
    kind = e.get("type")
    who = md_escape(e.get("member"))
    if kind == "filed":
        by = md_escape(e.get("by"))
        if e.get("self_applied"):
            return t._("Request filed by the applicant, %(by)s, by direct message.", by=by)
        return t._("Request filed by %(by)s.", by=by)
    if kind == "opened":
        n = int(e.get("eligible") or 0)
        return t.ngettext(
            "Ballot opened; %(n)s member eligible.", "Ballot opened; %(n)s members eligible.", n
        )
    if kind == "position":
        via = t._("by %(source)s", source=_source(t, e.get("source")))
        status = str(e.get("status"))
        note = t._(_NOT_COUNTED[status]) if status in _NOT_COUNTED else ""
        if e.get("position") is None:
            return t._(
                "%(who)s withdrew their position (%(via)s)%(note)s.", who=who, via=via, note=note
            )
        reason = _quoted(e.get("reason"))
        position = _position_label(t, e.get("position"))
        line = f"{who}: **{position}** ({via}){note}"
        return f"{line} — {reason}" if reason else f"{line}."
    if kind == "retracted":
        remover = e.get("by")
        source = _source(t, sources.get(str(e.get("event_id")), "input"))
        if remover == e.get("member"):
            return t._(
                "%(who)s's %(source)s was removed: that position is retracted.",
                who=who,
                source=source,
            )
        return t._(
            "%(who)s's %(source)s was removed by %(by)s: that position is retracted.",
            who=who,
            source=source,
            by=md_escape(remover),
        )
    if kind == "objection_raised":
        reason = _quoted(e.get("reason")) or t._("(no reason given yet)")
        return t._(
            "Objection #%(id)s raised by %(who)s: %(reason)s",
            id=e.get("id"),
            who=who,
            reason=reason,
        )
    if kind == "objection_disposed":
        state = str(e.get("state"))
        rationale = _quoted(e.get("rationale"))
        line = t._(
            "Objection #%(id)s %(state)s by %(by)s",
            id=e.get("id"),
            state=md_escape(state),
            by=md_escape(e.get("by")),
        )
        return f"{line}: {rationale}" if rationale else f"{line}."
    if kind == "closed":
        return t._(
            "Ballot closed. Draft sense of the room: %(proposal)s.",
            proposal=_proposal_label(t, e.get("proposal")),
        )
    if kind == "edited":
        changes = e.get("changes") or {}
        listed = "; ".join(f"{md_escape(k)}: {md_escape(str(v))}" for k, v in changes.items())
        return t._("Edited by %(by)s: %(changes)s.", by=md_escape(e.get("by")), changes=listed)
    if kind == "cancelled":
        return t._(
            "Cancelled by %(by)s: %(reason)s",
            by=md_escape(e.get("by")),
            reason=_quoted(e.get("reason")),
        )
    if kind == "decided":
        outcome = str(e.get("outcome"))
        label = t._(_OUTCOME_LABELS[outcome]) if outcome in _OUTCOME_LABELS else md_escape(outcome)
        return t._("%(by)s decided: **%(outcome)s**.", by=md_escape(e.get("by")), outcome=label)
    return None


def _group_table(
    t: Speaker, rows: Sequence[Mapping[str, Any]], heading: str, labels: Mapping[str, str]
) -> list[str]:
    """A Markdown table of participation (and positions, for groups large enough)."""
    shown = [r for r in rows if r.get("members")]
    if not shown:
        return [t._("No eligible members.")]
    columns = [p for p in POSITION_ORDER if p is not Position.RECUSE]
    detailed = any(r.get("counts") is not None for r in shown)
    eligible, took_part = t._("Eligible"), t._("Took a position")
    head = f"| {heading} | {eligible} | {took_part} |"
    rule = "|---|---:|---:|"
    if detailed:
        head += " " + " | ".join(t._(p.label).capitalize() for p in columns) + " |"
        rule += "---:|" * len(columns)
    lines = [head, rule]
    for row in shown:
        line = (
            f"| {_label(t, row.get('name'), labels)} | {row.get('members')} | "
            f"{row.get('participated')} |"
        )
        if detailed:
            counts = row.get("counts")
            cells = (
                ["—"] * len(columns)
                if counts is None
                else [str(counts.get(p.value, 0)) for p in columns]
            )
            line += " " + " | ".join(cells) + " |"
        lines.append(line)
    if any(r.get("counts") is None for r in shown):
        lines += [
            "",
            t._(
                "Groups with fewer than %(n)s eligible members show participation only, so "
                "nobody's position is singled out.",
                n=MIN_GROUP_FOR_POSITIONS,
            ),
        ]
    return lines


def _absences(
    t: Speaker, rows: Sequence[Mapping[str, Any]], labels: Mapping[str, str]
) -> list[str]:
    """Which groups had eligible members who all stayed silent, and which had none."""
    silent = [
        _label(t, r.get("name"), labels)
        for r in rows
        if r.get("members") and not r.get("participated")
    ]
    empty = [_label(t, r.get("name"), labels) for r in rows if not r.get("members")]
    lines = []
    if silent:
        groups = ", ".join(silent)
        lines += ["", t._("Eligible members but no participation: %(groups)s.", groups=groups)]
    if empty:
        lines += ["", t._("No eligible members: %(groups)s.", groups=", ".join(empty))]
    return lines


def _days(t: Speaker, ms: int) -> str:
    """A window as minutes read it: `14 days`, `36 hours`."""
    day, hour = 86_400_000, 3_600_000
    if ms % day == 0:
        return t.ngettext("%(n)s day", "%(n)s days", ms // day)
    if ms % hour == 0:
        return t.ngettext("%(n)s hour", "%(n)s hours", ms // hour)
    return t.duration(ms)


def render_markdown(record: Mapping[str, Any], lang: Speaker | None = None) -> str:
    """Minutes a secretary could publish, rendered from the record, in `lang` (the group's
    language; English when None). Only the rendering is translated: the record, its data
    and its head are the same in every language.

    All user text is escaped so it cannot inject links, HTML, headings or lists. The
    minutes end with the record's head hash, to check against the JSON export.
    """
    t = lang or SOURCE
    req = record["request"]
    sense = record["sense"]
    outcome = record["outcome"]
    entries = record.get("entries", [])
    eligible = {e["user_id"]: e for e in record.get("eligible", [])}
    applicant = md_escape(req.get("applicant"))
    name = req.get("name")
    who = f"{md_escape(name)} ({applicant})" if name and name != req.get("applicant") else applicant

    def row(label: str, value: str) -> str:
        return f"| {t._(label)} | {value} |"

    filed_by = (
        t._("the applicant (self-application)")
        if req.get("self_applied")
        else md_escape(req.get("filed_by"))
    )
    state = str(req.get("state"))
    out: list[str] = [
        "# " + t._("Minutes: participation request #%(id)s — %(who)s", id=req["id"], who=who),
        "",
        t._(
            "**%(group)s** · decision record `%(schema)s`",
            group=md_escape(record.get("group")),
            schema=record.get("schema"),
        ),
        "",
        "## " + t._("The request"),
        "",
        "| | |",
        "|---|---|",
        row(N_("Applicant"), who),
        row(N_("Organisation"), md_escape(req.get("org")) or t._("not given")),
        row(N_("Stakeholder group"), _label(t, req.get("stakeholder"), _STAKEHOLDER_LABELS)),
        row(N_("Region"), _label(t, req.get("region"), _REGION_LABELS)),
        row(N_("Filed by"), filed_by),
        row(N_("Filed"), _when(t, req.get("created_at"))),
        row(N_("Ballot opened"), _when(t, req.get("opened_at"))),
        row(N_("Deadline"), _when(t, req.get("deadline_at"))),
        row(N_("Ballot closed"), _when(t, req.get("closed_at"))),
        row(N_("Status"), t._(_STATES[state]) if state in _STATES else md_escape(state)),
        "",
        "### " + t._("Statement"),
        "",
        md_quote(req.get("statement"), t),
        "",
        t._(
            "The applicant affirms the group's participation principles: independence, "
            "community, transparency, participation, technical relevance and excellence, and "
            "collaboration."
        ),
        "",
        "## " + t._("Timeline"),
        "",
    ]
    sources = {
        str(e.get("event_id")): f"{e.get('source')}" for e in entries if e.get("type") == "position"
    }
    for e in entries:
        line = _entry_line(t, e, sources)
        if line is not None:
            out.append(f"- {_when(t, e.get('ts'))} — {line}")

    counts = sense.get("counts", {})
    quorum = float(sense.get("quorum", 0))
    out += [
        "",
        "## " + t._("Positions"),
        "",
        t._(
            "%(participated)s of %(eligible)s eligible members took a position (the quorum is "
            "%(quorum)s %% of them). This is not a vote count: the chair judges whether every "
            "objection was addressed.",
            participated=sense.get("participated"),
            eligible=sense.get("eligible"),
            quorum=f"{quorum * 100:g}",
        ),
        "",
        "| " + t._("Position") + " | " + t._("Members") + " |",
        "|---|---:|",
    ]
    out += [f"| {t._(p.label).capitalize()} | {counts.get(p.value, 0)} |" for p in POSITION_ORDER]
    recused = sense.get("recused") or []
    if recused:
        out += [
            "",
            t._(
                "Recused (not counted as eligible): %(members)s.",
                members=", ".join(md_escape(m) for m in recused),
            ),
        ]
    out += ["", "### " + t._("By stakeholder group"), ""]
    by_stakeholder = sense.get("by_stakeholder", [])
    out += _group_table(t, by_stakeholder, t._("Stakeholder group"), _STAKEHOLDER_LABELS)
    out += _absences(t, by_stakeholder, _STAKEHOLDER_LABELS)
    out += ["", "### " + t._("By region"), ""]
    by_region = sense.get("by_region", [])
    out += _group_table(t, by_region, t._("Region"), _REGION_LABELS)
    out += _absences(t, by_region, _REGION_LABELS)

    out += ["", "### " + t._("Did not take part"), ""]
    absent = sense.get("did_not_take_part") or []
    if absent:
        out.append(
            t._(
                "These eligible members took no position. Not taking part is not the same as "
                "“no objection”, which is a position."
            )
        )
        out.append("")
        for member in absent:
            info = eligible.get(member, {})
            detail = ", ".join(
                x
                for x in (
                    _label(t, info.get("stakeholder"), _STAKEHOLDER_LABELS) if info else "",
                    _label(t, info.get("region"), _REGION_LABELS) if info else "",
                )
                if x
            )
            out.append(f"- {md_escape(member)}" + (f" ({detail})" if detail else ""))
    else:
        out.append(t._("Every eligible member took a position."))

    out += ["", "## " + t._("Objections"), ""]
    raised = [e for e in entries if e.get("type") == "objection_raised"]
    disposed = {e.get("id"): e for e in entries if e.get("type") == "objection_disposed"}
    if not raised:
        out.append(t._("No objections were raised."))
    for e in raised:
        d = disposed.get(e.get("id"))
        out.append(
            t._(
                "**Objection #%(id)s** by %(member)s, raised %(when)s:",
                id=e.get("id"),
                member=md_escape(e.get("member")),
                when=_when(t, e.get("ts")),
            )
        )
        no_reason = "> *" + t._("(no reason given)") + "*"
        out += ["", md_quote(e.get("reason"), t) if e.get("reason") else no_reason, ""]
        if d is None:
            note = t._(_DISPOSITION_NOTES[ObjectionState.OPEN.value])
            out.append(t._("Disposition: %(note)s.", note=note))
        else:
            state = str(d.get("state"))
            note = (
                t._(_DISPOSITION_NOTES[state])
                if state in _DISPOSITION_NOTES
                else md_escape(d.get("state"))
            )
            line = t._(
                "Disposition: **%(note)s** — by %(by)s, %(when)s",
                note=note,
                by=md_escape(d.get("by")),
                when=_when(t, d.get("ts")),
            )
            rationale = _quoted(d.get("rationale"))
            out.append(f"{line}: {rationale}" if rationale else f"{line}.")
        out.append("")
    rough = sense.get("in_the_rough") or []
    if rough:
        out.append(
            t._(
                "In the rough (objection addressed, not accommodated): %(members)s.",
                members=", ".join(md_escape(m) for m in rough),
            )
        )
        out.append("")
    if out[-1] != "":
        out.append("")

    out += ["## " + t._("Sense of the room"), ""]
    if outcome.get("proposal"):
        out.append(
            t._(
                "Draft at the close of the ballot: **%(proposal)s**.",
                proposal=_proposal_label(t, outcome["proposal"]),
            )
        )
    current = _proposal_label(t, sense.get("proposal"))
    if sense.get("open_objections"):
        out.append(
            t._(
                "From the record as it stands: **%(proposal)s** (open objections: %(ids)s).",
                proposal=current,
                ids=", ".join("#" + str(i) for i in sense["open_objections"]),
            )
        )
    else:
        out.append(t._("From the record as it stands: **%(proposal)s**.", proposal=current))

    out += ["", "## " + t._("Decision"), ""]
    decision = outcome.get("decision")
    if decision is None:
        out.append(t._("The chair has not decided yet."))
    else:
        label = (
            t._(_OUTCOME_LABELS[str(decision)])
            if str(decision) in _OUTCOME_LABELS
            else md_escape(decision)
        )
        out += [
            t._(
                "The chair, %(chair)s, decided on %(when)s: **%(outcome)s**.",
                chair=md_escape(outcome.get("decided_by")),
                when=_when(t, outcome.get("decided_at")),
                outcome=label,
            ),
            "",
            t._("Rationale:"),
            "",
            md_quote(outcome.get("rationale"), t),
        ]
    out += ["", "### " + t._("Appeal"), ""]
    window = outcome.get("appeal_window_ms")
    if decision is None:
        out.append(
            t._("Once decided, the decision can be appealed within the group's appeal window.")
        )
    elif outcome.get("appeal_until") is not None and window is not None:
        out.append(
            t._(
                "This decision can be appealed until %(when)s (%(window)s after the decision).",
                when=_when(t, outcome["appeal_until"]),
                window=_days(t, int(window)),
            )
        )
    else:
        out.append(t._("This decision can be appealed within the group's appeal window."))

    out += ["", "## " + t._("Hums"), ""]
    hums = record.get("hums")
    if hums:
        out.append(
            t._(
                "For: %(for_side)s; against: %(against_side)s. Hums are anonymous: only how loud "
                "each side was is recorded.",
                for_side=_loudness(t, hums.get("for")),
                against_side=_loudness(t, hums.get("against")),
            )
        )
    else:
        out.append(
            t._("No hum is part of this record. Hums are anonymous and never listed by name.")
        )

    head = record.get("head")
    out += [
        "",
        "## " + t._("Verification"),
        "",
        t._("Record head (SHA-256): %(head)s", head=f"`{head}`"),
        "",
        t.ngettext(
            "These minutes were rendered from a decision record of %(n)s entry. Check the JSON "
            "export against them with %(command)s: it succeeds only if the file is intact and "
            "its head is the one above.",
            "These minutes were rendered from a decision record of %(n)s entries. Check the "
            "JSON export against them with %(command)s: it succeeds only if the file is intact "
            "and its head is the one above.",
            len(entries),
            command=f"`consensus-bot export --verify FILE --head {head}`",
        ),
        "",
    ]
    return "\n".join(out)


# The request's state in the minutes' table (the words of `list` and `status`).
_STATES = {
    "triage": N_("triage"),
    "pending": N_("pending"),
    "open": N_("open"),
    "drafted": N_("drafted"),
    "decided": N_("decided"),
    "blocked": N_("blocked"),
    "cancelled": N_("cancelled"),
}
_LOUDNESS = {"none": N_("none"), "soft": N_("soft"), "loud": N_("loud")}


def _loudness(t: Speaker, value: object) -> str:
    text = str(value)
    return t._(_LOUDNESS[text]) if text in _LOUDNESS else md_escape(text)
