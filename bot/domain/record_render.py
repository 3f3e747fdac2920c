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

from bot.domain.durations import MIN_TS, clamp_ts, format_duration, format_utc
from bot.domain.lifecycle import Outcome
from bot.domain.objections import ObjectionState
from bot.domain.positions import POSITION_ORDER, Position
from bot.domain.sense import MIN_GROUP_FOR_POSITIONS, Proposal
from bot.domain.text import sanitize

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


def md_quote(text: str | None) -> str:
    """User text as a Markdown block quote, line breaks kept, every line escaped."""
    lines = _md_lines(text)
    if not any(lines):
        return "> *(empty)*"
    return "\n".join(f"> {line}".rstrip() + ("  " if line else "") for line in lines).rstrip()


_STAKEHOLDER_LABELS = {
    "government": "Government",
    "private-sector": "Private sector",
    "civil-society": "Civil society",
    "technical-community": "Technical community",
    "academia": "Academia",
    "intergovernmental": "Intergovernmental organisations",
    "international-organization": "International organisations",
}
_REGION_LABELS = {
    "africa": "Africa",
    "americas": "Americas",
    "arab-states": "Arab States",
    "asia-pacific": "Asia-Pacific",
    "europe": "Europe",
    "cis": "CIS",
}
_OUTCOME_LABELS = {
    Outcome.ADMIT.value: "admit",
    Outcome.DECLINE.value: "decline",
    Outcome.NO_CONSENSUS.value: "no consensus (the applicant is not admitted)",
}
_DISPOSITION_NOTES = {
    ObjectionState.ACCOMMODATED.value: "accommodated: the issue was resolved",
    ObjectionState.ADDRESSED.value: (
        "addressed: considered and answered but not accepted; the objector is in the rough"
    ),
    ObjectionState.DUPLICATE.value: "duplicate of another objection",
    ObjectionState.WITHDRAWN.value: "withdrawn",
    ObjectionState.OPEN.value: "open: not yet disposed of",
}


def _label(value: str | None, labels: Mapping[str, str]) -> str:
    if not value:
        return "not given"
    return labels.get(value) or md_escape(value)


def _position_label(value: str | None) -> str:
    if value is None:
        return "withdrawn"
    try:
        return Position(value).label
    except ValueError:
        return md_escape(value)


def _proposal_label(value: str | None) -> str:
    if value is None:
        return "none"
    try:
        return Proposal(value).label
    except ValueError:
        return md_escape(value)


def _when(ms: int | None) -> str:
    if ms is None:
        return "—"
    moment, clamped = clamp_ts(ms)
    if clamped:  # a corrupt or forged time: say so rather than crash or invent a date
        return ("before " if moment == MIN_TS else "after ") + format_utc(moment)
    return format_utc(moment)


def _quoted(text: str | None) -> str:
    return f"“{md_escape(text)}”" if text and text.strip() else ""


# Why an input did not count, as the minutes say it (counted and retracted ones say nothing:
# a retraction has its own line).
_NOT_COUNTED = {
    "late": ", late: received after the ballot closed, not counted",
    "not-eligible": ", not counted: not eligible",
    "wrong-room": ", not counted: outside the request's room",
}


def _entry_line(e: Mapping[str, Any], sources: Mapping[str, str]) -> str | None:
    kind = e.get("type")
    who = md_escape(e.get("member"))
    if kind == "filed":
        by = md_escape(e.get("by"))
        if e.get("self_applied"):
            return f"Request filed by the applicant, {by}, by direct message."
        return f"Request filed by {by}."
    if kind == "opened":
        return f"Ballot opened; {e.get('eligible')} members eligible."
    if kind == "position":
        via = f"by {e.get('source')}"
        note = _NOT_COUNTED.get(str(e.get("status")), "")
        if e.get("position") is None:
            return f"{who} withdrew their position ({via}){note}."
        reason = _quoted(e.get("reason"))
        line = f"{who}: **{_position_label(e.get('position'))}** ({via}){note}"
        return f"{line} — {reason}" if reason else f"{line}."
    if kind == "retracted":
        remover = e.get("by")
        source = sources.get(str(e.get("event_id")), "input")
        removed = "removed" if remover == e.get("member") else f"removed by {md_escape(remover)}"
        return f"{who}'s {source} was {removed}: that position is retracted."
    if kind == "objection_raised":
        reason = _quoted(e.get("reason")) or "(no reason given yet)"
        return f"Objection #{e.get('id')} raised by {who}: {reason}"
    if kind == "objection_disposed":
        state = str(e.get("state"))
        rationale = _quoted(e.get("rationale"))
        line = f"Objection #{e.get('id')} {md_escape(state)} by {md_escape(e.get('by'))}"
        return f"{line}: {rationale}" if rationale else f"{line}."
    if kind == "closed":
        return f"Ballot closed. Draft sense of the room: {_proposal_label(e.get('proposal'))}."
    if kind == "edited":
        changes = e.get("changes") or {}
        listed = "; ".join(f"{md_escape(k)}: {md_escape(str(v))}" for k, v in changes.items())
        return f"Edited by {md_escape(e.get('by'))}: {listed}."
    if kind == "cancelled":
        return f"Cancelled by {md_escape(e.get('by'))}: {_quoted(e.get('reason'))}"
    if kind == "decided":
        outcome = _OUTCOME_LABELS.get(str(e.get("outcome")), md_escape(e.get("outcome")))
        return f"{md_escape(e.get('by'))} decided: **{outcome}**."
    return None


def _group_table(
    rows: Sequence[Mapping[str, Any]], heading: str, labels: Mapping[str, str]
) -> list[str]:
    """A Markdown table of participation (and positions, for groups large enough)."""
    shown = [r for r in rows if r.get("members")]
    if not shown:
        return ["No eligible members."]
    columns = [p for p in POSITION_ORDER if p is not Position.RECUSE]
    detailed = any(r.get("counts") is not None for r in shown)
    head = f"| {heading} | Eligible | Took a position |"
    rule = "|---|---:|---:|"
    if detailed:
        head += " " + " | ".join(p.label.capitalize() for p in columns) + " |"
        rule += "---:|" * len(columns)
    lines = [head, rule]
    for row in shown:
        line = (
            f"| {_label(row.get('name'), labels)} | {row.get('members')} | "
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
            f"Groups with fewer than {MIN_GROUP_FOR_POSITIONS} eligible members show "
            "participation only, so nobody's position is singled out.",
        ]
    return lines


def _absences(rows: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> list[str]:
    """Which groups had eligible members who all stayed silent, and which had none."""
    silent = [
        _label(r.get("name"), labels)
        for r in rows
        if r.get("members") and not r.get("participated")
    ]
    empty = [_label(r.get("name"), labels) for r in rows if not r.get("members")]
    lines = []
    if silent:
        lines += ["", "Eligible members but no participation: " + ", ".join(silent) + "."]
    if empty:
        lines += ["", "No eligible members: " + ", ".join(empty) + "."]
    return lines


def _days(ms: int) -> str:
    """A window as minutes read it: `14 days`, `36 hours`."""
    day, hour = 86_400_000, 3_600_000
    if ms % day == 0:
        n = ms // day
        return f"{n} day" + ("s" if n != 1 else "")
    if ms % hour == 0:
        n = ms // hour
        return f"{n} hour" + ("s" if n != 1 else "")
    return format_duration(ms)


def render_markdown(record: Mapping[str, Any]) -> str:
    """Minutes a secretary could publish, rendered from the record.

    All user text is escaped so it cannot inject links, HTML, headings or lists. The
    minutes end with the record's head hash, to check against the JSON export.
    """
    req = record["request"]
    sense = record["sense"]
    outcome = record["outcome"]
    entries = record.get("entries", [])
    eligible = {e["user_id"]: e for e in record.get("eligible", [])}
    applicant = md_escape(req.get("applicant"))
    name = req.get("name")
    who = f"{md_escape(name)} ({applicant})" if name and name != req.get("applicant") else applicant

    out: list[str] = [
        f"# Minutes: participation request #{req['id']} — {who}",
        "",
        f"**{md_escape(record.get('group'))}** · decision record `{record.get('schema')}`",
        "",
        "## The request",
        "",
        "| | |",
        "|---|---|",
        f"| Applicant | {who} |",
        f"| Organisation | {md_escape(req.get('org')) or 'not given'} |",
        f"| Stakeholder group | {_label(req.get('stakeholder'), _STAKEHOLDER_LABELS)} |",
        f"| Region | {_label(req.get('region'), _REGION_LABELS)} |",
        "| Filed by | "
        + (
            "the applicant (self-application)"
            if req.get("self_applied")
            else md_escape(req.get("filed_by"))
        )
        + " |",
        f"| Filed | {_when(req.get('created_at'))} |",
        f"| Ballot opened | {_when(req.get('opened_at'))} |",
        f"| Deadline | {_when(req.get('deadline_at'))} |",
        f"| Ballot closed | {_when(req.get('closed_at'))} |",
        f"| Status | {md_escape(req.get('state'))} |",
        "",
        "### Statement",
        "",
        md_quote(req.get("statement")),
        "",
        "The applicant affirms the group's participation principles: independence, community, "
        "transparency, participation, technical relevance and excellence, and collaboration.",
        "",
        "## Timeline",
        "",
    ]
    sources = {
        str(e.get("event_id")): f"{e.get('source')}" for e in entries if e.get("type") == "position"
    }
    for e in entries:
        line = _entry_line(e, sources)
        if line is not None:
            out.append(f"- {_when(e.get('ts'))} — {line}")

    counts = sense.get("counts", {})
    quorum = float(sense.get("quorum", 0))
    out += [
        "",
        "## Positions",
        "",
        f"{sense.get('participated')} of {sense.get('eligible')} eligible members took a "
        f"position (the quorum is {quorum * 100:g} % of them). This is not a vote "
        "count: the chair judges whether every objection was addressed.",
        "",
        "| Position | Members |",
        "|---|---:|",
    ]
    out += [f"| {p.label.capitalize()} | {counts.get(p.value, 0)} |" for p in POSITION_ORDER]
    recused = sense.get("recused") or []
    if recused:
        out += [
            "",
            "Recused (not counted as eligible): " + ", ".join(md_escape(m) for m in recused) + ".",
        ]
    out += ["", "### By stakeholder group", ""]
    by_stakeholder = sense.get("by_stakeholder", [])
    out += _group_table(by_stakeholder, "Stakeholder group", _STAKEHOLDER_LABELS)
    out += _absences(by_stakeholder, _STAKEHOLDER_LABELS)
    out += ["", "### By region", ""]
    by_region = sense.get("by_region", [])
    out += _group_table(by_region, "Region", _REGION_LABELS)
    out += _absences(by_region, _REGION_LABELS)

    out += ["", "### Did not take part", ""]
    absent = sense.get("did_not_take_part") or []
    if absent:
        out.append(
            "These eligible members took no position. Not taking part is not the same as "
            "“no objection”, which is a position."
        )
        out.append("")
        for member in absent:
            info = eligible.get(member, {})
            detail = ", ".join(
                x
                for x in (
                    _label(info.get("stakeholder"), _STAKEHOLDER_LABELS) if info else "",
                    _label(info.get("region"), _REGION_LABELS) if info else "",
                )
                if x
            )
            out.append(f"- {md_escape(member)}" + (f" ({detail})" if detail else ""))
    else:
        out.append("Every eligible member took a position.")

    out += ["", "## Objections", ""]
    raised = [e for e in entries if e.get("type") == "objection_raised"]
    disposed = {e.get("id"): e for e in entries if e.get("type") == "objection_disposed"}
    if not raised:
        out.append("No objections were raised.")
    for e in raised:
        d = disposed.get(e.get("id"))
        out.append(
            f"**Objection #{e.get('id')}** by {md_escape(e.get('member'))}, raised "
            f"{_when(e.get('ts'))}:"
        )
        out += ["", md_quote(e.get("reason")) if e.get("reason") else "> *(no reason given)*", ""]
        if d is None:
            out.append(f"Disposition: {_DISPOSITION_NOTES[ObjectionState.OPEN.value]}.")
        else:
            note = _DISPOSITION_NOTES.get(str(d.get("state")), md_escape(d.get("state")))
            line = f"Disposition: **{note}** — by {md_escape(d.get('by'))}, {_when(d.get('ts'))}"
            rationale = _quoted(d.get("rationale"))
            out.append(f"{line}: {rationale}" if rationale else f"{line}.")
        out.append("")
    rough = sense.get("in_the_rough") or []
    if rough:
        out.append(
            "In the rough (objection addressed, not accommodated): "
            + ", ".join(md_escape(m) for m in rough)
            + "."
        )
        out.append("")
    if out[-1] != "":
        out.append("")

    out += ["## Sense of the room", ""]
    if outcome.get("proposal"):
        out.append(f"Draft at the close of the ballot: **{_proposal_label(outcome['proposal'])}**.")
    out.append(
        f"From the record as it stands: **{_proposal_label(sense.get('proposal'))}**"
        + (
            f" (open objections: {', '.join('#' + str(i) for i in sense['open_objections'])})."
            if sense.get("open_objections")
            else "."
        )
    )

    out += ["", "## Decision", ""]
    decision = outcome.get("decision")
    if decision is None:
        out.append("The chair has not decided yet.")
    else:
        label = _OUTCOME_LABELS.get(str(decision), md_escape(decision))
        out += [
            f"The chair, {md_escape(outcome.get('decided_by'))}, decided on "
            f"{_when(outcome.get('decided_at'))}: **{label}**.",
            "",
            "Rationale:",
            "",
            md_quote(outcome.get("rationale")),
        ]
    out += ["", "### Appeal", ""]
    window = outcome.get("appeal_window_ms")
    if decision is None:
        out.append("Once decided, the decision can be appealed within the group's appeal window.")
    elif outcome.get("appeal_until") is not None and window is not None:
        out.append(
            f"This decision can be appealed until {_when(outcome['appeal_until'])} "
            f"({_days(int(window))} after the decision)."
        )
    else:
        out.append("This decision can be appealed within the group's appeal window.")

    out += ["", "## Hums", ""]
    hums = record.get("hums")
    if hums:
        out.append(
            f"For: {md_escape(hums.get('for'))}; against: {md_escape(hums.get('against'))}. "
            "Hums are anonymous: only how loud each side was is recorded."
        )
    else:
        out.append("No hum is part of this record. Hums are anonymous and never listed by name.")

    out += [
        "",
        "## Verification",
        "",
        f"Record head (SHA-256): `{record.get('head')}`",
        "",
        f"These minutes were rendered from a decision record of {len(entries)} entries. "
        "Check the JSON export against them with "
        f"`consensus-bot export --verify FILE --head {record.get('head')}`: it succeeds only "
        "if the file is intact and its head is the one above.",
        "",
    ]
    return "\n".join(out)
