"""The public site of a group's decisions: pure rendering from frozen decision records.

`build_site` turns the decided requests (each with its frozen record segments, exactly as
`consensus-bot export` writes them) into the files of a static site: an index (newest first,
with plain pages per outcome and per year), one page per decision, the record files beside
it, `index.json`, an Atom feed and inline SVG charts. Writing the files is the edge's job
(`bot.services.publish`).

What a page shows comes only from the frozen record, so nothing of an undecided request can
appear, and participation by group is the record's `sense`, suppressed by the draft's own
rule (`bot.domain.sense.MIN_GROUP_FOR_POSITIONS`). Hums appear as loudness only; member names
appear beside objections only when the group chose so; the applicant is named only with
their consent. Every text is escaped; pages carry a strict Content-Security-Policy (no
scripts, the one stylesheet pinned by its hash) and link relatively.
The pages and the feed are said in the group's language (`lang`, a `Speaker`; English when
None), `<html lang dir>` set from it; the records, their heads and `index.json` are the same
in every language.
Pure: standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree as ET

from bot.domain.text import N_, SOURCE, Speaker

ATOM_NS = "http://www.w3.org/2005/Atom"
OUTCOME_LABELS: dict[str, str] = {
    "admit": N_("Admitted"),
    "decline": N_("Declined"),
    "no-consensus": N_("No consensus"),
}
POSITION_LABELS: dict[str, str] = {
    "support": N_("support"),
    "no-objection": N_("no objection"),
    "concern": N_("concern"),
    "object": N_("object"),
    "abstain": N_("abstain"),
    "recuse": N_("recuse"),
}


# The words a record stores for an objection's or an appeal's state, and a side's loudness.
_STATES: dict[str, str] = {
    "open": N_("open"),
    "accommodated": N_("accommodated"),
    "addressed": N_("addressed"),
    "duplicate": N_("duplicate"),
    "withdrawn": N_("withdrawn"),
    "upheld": N_("upheld"),
    "denied": N_("denied"),
}
_LOUDNESS: dict[str, str] = {"none": N_("none"), "soft": N_("soft"), "loud": N_("loud")}


def _said(t: Speaker, labels: Mapping[str, str], value: str) -> str:
    """A stored word in the reader's language, or the word itself when it has no label."""
    return t._(labels[value]) if value in labels else value


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;
color:#1b1b1b;line-height:1.5}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ccc;padding:.2rem .5rem;
text-align:start}.outcome{font-size:1.3rem;font-weight:bold}.admit{color:#1a6b2a}
.decline{color:#9b1c1c}.no-consensus{color:#6b4e00}code{word-break:break-all;
background:#f4f4f4;padding:0 .2rem}nav a{margin-inline-end:.7rem}figure{margin:1rem 0}
.muted{color:#555}
""".strip()


@dataclass(frozen=True, slots=True)
class PublishOptions:
    """What the group chose to publish (`[publish]` in the config)."""

    names_beside_objections: bool = False
    # The frozen record files name every member with their position and reasons: they are
    # published beside the page (so anyone can verify them) only when the group chooses.
    record_files: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """One decided request as it goes on the site.

    `segments` are the request's frozen record texts (JSON, as exported), oldest first; the
    last one is the decision shown. `consent` is the applicant's answer at intake to whether
    their name and organisation may be published."""

    segments: Sequence[str]
    kind: str | None = None  # "individual" | "organisation"
    country: str | None = None  # a display name or ISO code
    consent: bool = False
    markdown: Sequence[str] = field(default_factory=tuple)  # the segments' Markdown minutes

    @property
    def record(self) -> Mapping[str, Any]:
        """The last frozen record: the decision as it stands."""
        value: Mapping[str, Any] = json.loads(self.segments[-1])
        return value

    @property
    def number(self) -> int:
        """The request's number in its group (`#N`; records frozen before several groups
        have only the `id`, which was that number)."""
        request = self.record["request"]
        return int(request.get("number", request["id"]))

    @property
    def decided_at(self) -> int:
        """When the chair decided (ms since the epoch)."""
        return int(self.record["outcome"].get("decided_at") or 0)

    @property
    def outcome(self) -> str:
        """The decision: admit, decline or no-consensus."""
        return str(self.record["outcome"]["decision"])

    @property
    def year(self) -> str:
        """The year of the decision, from its ISO date."""
        return str(self.record["outcome"].get("decided_at_iso") or "0000")[:4]


def e(value: object) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return escape("" if value is None else str(value), quote=True)


def style_hash() -> str:
    """The CSP source that allows exactly the one inline stylesheet."""
    digest = hashlib.sha256(_STYLE.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def csp() -> str:
    """The page's Content-Security-Policy: nothing runs, nothing is fetched but local images."""
    return (
        "default-src 'none'; "
        f"style-src {style_hash()}; img-src 'self'; "
        "base-uri 'none'; form-action 'none'"
    )


def applicant_label(d: Decision, t: Speaker = SOURCE) -> str:
    """Who asked, as the public may read it: named only with consent."""
    a = d.record["request"]
    if d.consent:
        name = a.get("name") or a.get("applicant")
        org = a.get("org")
        return f"{name} ({org})" if org else str(name)
    if d.kind == "organisation":
        if d.country:
            return t._("an organisation from %(country)s", country=d.country)
        return t._("an organisation")
    if d.country:
        return t._("an individual from %(country)s", country=d.country)
    return t._("an individual")


def _page(title: str, body: str, root: str, group: str, t: Speaker = SOURCE) -> str:
    """A whole HTML5 page; `root` is the relative path back to the site's top."""
    code = t.code.replace("_", "-")  # a BCP 47 tag: zh_Hans is zh-Hans
    feed_title, everything, atom = t._("Decisions"), t._("All decisions"), t._("Atom feed")
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{e(code)}" dir="{e(t.direction)}">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{e(csp())}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(title)} — {e(group)}</title>\n"
        f'<link rel="alternate" type="application/atom+xml" title="{e(feed_title)}" '
        f'href="{root}feed.atom">\n'
        f"<style>{_STYLE}</style>\n</head>\n<body>\n"
        f'<nav><a href="{root}index.html">{e(everything)}</a>'
        f'<a href="{root}feed.atom">{e(atom)}</a>'
        f'<a href="{root}index.json">index.json</a></nav>\n'
        f"<main>\n{body}</main>\n</body>\n</html>\n"
    )


# --------------------------------------------------------------------------- charts


def bar_chart(
    chart_id: str,
    title: str,
    desc: str,
    rows: Sequence[tuple[str, int, int]],
    t: Speaker = SOURCE,
) -> str:
    """An accessible horizontal bar chart (inline SVG) of (label, part, whole) rows, with the
    same numbers in a table beside it."""
    if not rows:
        return "<p>" + e(t._("%(title)s: nothing to show yet.", title=title)) + "</p>\n"
    width, bar_h, label_w = 480, 22, 170
    height = max(1, len(rows)) * (bar_h + 6) + 10
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d">',
        f'<title id="{chart_id}-t">{e(title)}</title>',
        f'<desc id="{chart_id}-d">{e(desc)}</desc>',
    ]
    span = width - label_w - 60
    for i, (label, part, whole) in enumerate(rows):
        y = 5 + i * (bar_h + 6)
        share = part / whole if whole else 0.0
        svg.append(
            f'<text x="0" y="{y + 15}" font-size="13" fill="#1b1b1b">{e(label[:24])}</text>'
            f'<rect x="{label_w}" y="{y}" width="{span}" height="{bar_h}" fill="#e6e6e6"/>'
            f'<rect x="{label_w}" y="{y}" width="{round(span * share)}" height="{bar_h}" '
            f'fill="#2b5d9b"/>'
            f'<text x="{label_w + span + 6}" y="{y + 15}" font-size="13" fill="#1b1b1b">'
            f"{round(share * 100)}%</text>"
        )
    svg.append("</svg>")
    group, took_part, eligible = t._("Group"), t._("Took part"), t._("Eligible")
    table = [
        f'<table aria-describedby="{chart_id}-t"><thead><tr><th scope="col">{e(group)}</th>'
        f'<th scope="col">{e(took_part)}</th><th scope="col">{e(eligible)}</th>'
        "</tr></thead><tbody>"
    ]
    for label, part, whole in rows:
        table.append(f"<tr><td>{e(label)}</td><td>{part}</td><td>{whole}</td></tr>")
    table.append("</tbody></table>")
    caption = f"<figcaption>{e(title)}</figcaption>"
    return f"<figure>\n{''.join(svg)}\n{caption}\n{''.join(table)}\n</figure>\n"


def _sum_groups(decisions: Sequence[Decision], key: str) -> list[tuple[str, int, int]]:
    """(group, took part, eligible) summed over the decisions' records."""
    totals: dict[str, list[int]] = {}
    for d in decisions:
        for row in d.record["sense"].get(key) or []:
            t = totals.setdefault(str(row["name"]), [0, 0])
            t[0] += int(row["participated"])
            t[1] += int(row["members"])
    return [(name, p, m) for name, (p, m) in sorted(totals.items())]


def charts(decisions: Sequence[Decision], t: Speaker = SOURCE) -> str:
    """The charts across all decisions: by region, by stakeholder group, by development."""
    if not decisions:
        return ""
    return (
        "<h2>"
        + e(t._("Participation across decisions"))
        + "</h2>\n"
        + bar_chart(
            "by-region",
            t._("Participation by region"),
            t._(
                "Share of eligible members of each region who took a position, over all decisions."
            ),
            _sum_groups(decisions, "by_region"),
            t,
        )
        + bar_chart(
            "by-stakeholder",
            t._("Participation by stakeholder group"),
            t._(
                "Share of eligible members of each stakeholder group who took a position, "
                "over all decisions."
            ),
            _sum_groups(decisions, "by_stakeholder"),
            t,
        )
        + bar_chart(
            "by-development",
            t._("Participation by development status"),
            t._(
                "Share of eligible members from developed, developing and least-developed "
                "countries who took a position, over all decisions."
            ),
            _sum_groups(decisions, "by_development"),
            t,
        )
    )


# --------------------------------------------------------------------------- pages


def record_name(d: Decision, segment: int, ext: str) -> str:
    """The file name of a record segment beside its page."""
    return f"request-{d.number}-record-{segment}.{ext}"


def verify_command(d: Decision, segment: int) -> str:
    """The exact command that checks a record file against its published head."""
    rec = json.loads(d.segments[segment - 1])
    cmd = f"consensus-bot export --verify {record_name(d, segment, 'json')}"
    if segment > 1:
        cmd += f" --previous {record_name(d, segment - 1, 'json')}"
    return f"{cmd} --head {rec['head']}"


def _breakdown_table(caption: str, rows: Sequence[Mapping[str, Any]], t: Speaker) -> str:
    if not rows:  # e.g. no member's country is known: no development status to show
        unknown = t._("%(caption)s: not known for any eligible member.", caption=caption)
        return f"<p>{e(unknown)}</p>\n"
    heads = (t._("Group"), t._("Eligible"), t._("Took part"), t._("Positions"))
    out = [
        f"<table><caption>{e(caption)}</caption><thead><tr>"
        + "".join(f"<th scope='col'>{e(h)}</th>" for h in heads)
        + "</tr></thead><tbody>"
    ]
    for row in rows:
        counts = row.get("counts")
        shown = (
            t._("not shown (fewer than 3 members)")
            if counts is None
            else ", ".join(f"{_said(t, POSITION_LABELS, k)} {v}" for k, v in counts.items() if v)
            or t._("none")
        )
        out.append(
            f"<tr><td>{e(row['name'])}</td><td>{int(row['members'])}</td>"
            f"<td>{int(row['participated'])}</td><td>{e(shown)}</td></tr>"
        )
    out.append("</tbody></table>\n")
    return "".join(out)


def _objections(d: Decision, options: PublishOptions, t: Speaker) -> str:
    """Every objection by number with its last disposition (and its raiser, if chosen)."""
    raised: dict[int, str] = {}
    disposed: dict[int, tuple[str, str]] = {}
    for entry in d.record["entries"]:
        if entry["type"] == "objection_raised":
            raised[int(entry["id"])] = str(entry.get("member") or "")
        elif entry["type"] == "objection_disposed":
            disposed[int(entry["id"])] = (str(entry["state"]), str(entry.get("rationale") or ""))
    if not raised:
        return "<p>" + e(t._("No objections were raised.")) + "</p>\n"
    items = []
    for number in sorted(raised):
        state, text = disposed.get(number, ("open", ""))
        if options.names_beside_objections:
            head = t._("Objection %(id)s raised by %(who)s", id=number, who=raised[number])
        else:
            head = t._("Objection %(id)s", id=number)
        items.append(
            f"<li>{e(head)}: <strong>{e(_said(t, _STATES, state))}</strong>"
            + (f" — {e(text)}" if text else "")
            + "</li>"
        )
    return "<ul>" + "".join(items) + "</ul>\n"


def _appeals(d: Decision, t: Speaker) -> str:
    appealed: list[int] = []
    answers: dict[int, tuple[str, str]] = {}
    for entry in d.record["entries"]:
        if entry["type"] == "appealed":
            appealed.append(int(entry["id"]))
        elif entry["type"] == "appeal_answered":
            answers[int(entry["id"])] = (str(entry["state"]), str(entry.get("rationale") or ""))
    if not appealed:
        return "<p>" + e(t._("The decision was not appealed.")) + "</p>\n"
    items = []
    for number in appealed:
        if number in answers:
            state, text = answers[number]
            head = t._("Appeal %(id)s: answered", id=number)
            items.append(
                f"<li>{e(head)}, <strong>{e(_said(t, _STATES, state))}</strong> — {e(text)}</li>"
            )
        else:
            items.append("<li>" + e(t._("Appeal %(id)s: not answered yet", id=number)) + "</li>")
    return "<ul>" + "".join(items) + "</ul>\n"


# Where markup goes into a translated sentence: the sentence is escaped, then the slot is
# replaced by the markup (a NUL never comes from a catalog or a record's escaped text).
_SLOT = "\x00"


def _heading(text: str) -> str:
    return f"<h2>{e(text)}</h2>\n"


def decision_page(d: Decision, group: str, options: PublishOptions, t: Speaker = SOURCE) -> str:
    """The page of one decision (it lives in `decisions/<n>/`)."""
    rec = d.record
    out, sense = rec["outcome"], rec["sense"]
    label = _said(t, OUTCOME_LABELS, d.outcome)
    counts = sense.get("counts") or {}
    hums = rec.get("hums")
    rough = len(sense.get("in_the_rough") or [])
    how_rough = t.ngettext(
        "%(participated)s of %(eligible)s eligible members took a position; %(n)s was in the "
        "rough.",
        "%(participated)s of %(eligible)s eligible members took a position; %(n)s were in the "
        "rough.",
        rough,
        participated=int(sense.get("participated") or 0),
        eligible=int(sense.get("eligible") or 0),
    )
    if hums:
        hummed = t._(
            "For: %(for_side)s; against: %(against_side)s (loudness only: who hummed is never "
            "recorded).",
            for_side=_said(t, _LOUDNESS, str(hums.get("for") or "none")),
            against_side=_said(t, _LOUDNESS, str(hums.get("against") or "none")),
        )
    else:
        hummed = t._("Not hummed.")
    day = str(out.get("decided_at_iso") or "")[:10]
    moment = f'<time datetime="{e(out.get("decided_at_iso"))}">{e(day)}</time>'
    decided = e(t._("Decided on %(day)s.", day=_SLOT)).replace(_SLOT, moment)
    heading = t._("Request %(id)s: %(who)s", id=d.number, who=applicant_label(d, t))
    rationale = out.get("rationale") or t._("(none given)")
    body = [
        f"<h1>{e(heading)}</h1>\n",
        f'<p class="outcome {e(d.outcome)}" id="outcome">{e(label)}</p>\n',
        f"<p>{decided}</p>\n",
        _heading(t._("The chair's rationale")),
        f'<blockquote id="rationale"><p>{e(rationale)}</p></blockquote>\n',
        _heading(t._("How rough")),
        f"<p>{e(how_rough)}</p>\n",
        "<table><caption>"
        + e(t._("Positions"))
        + "</caption><tbody>"
        + "".join(
            f"<tr><th scope='row'>{e(_said(t, POSITION_LABELS, k))}</th><td>{int(v)}</td></tr>"
            for k, v in counts.items()
        )
        + "</tbody></table>\n",
        _heading(t._("Hums")),
        f"<p>{e(hummed)}</p>\n",
        _heading(t._("Participation")),
        "<p class='muted'>"
        + e(
            t._(
                "Positions of groups with fewer than 3 members are not shown, so that no "
                "member is singled out."
            )
        )
        + "</p>\n",
        _breakdown_table(t._("By stakeholder group"), sense.get("by_stakeholder") or [], t),
        _breakdown_table(t._("By region"), sense.get("by_region") or [], t),
        _breakdown_table(t._("By development status"), sense.get("by_development") or [], t),
        _heading(t._("Objections")),
        _objections(d, options, t),
        _heading(t._("Appeals")),
        _appeals(d, t),
        _heading(t._("The record")),
        *_record_section(d, options, t),
    ]
    title = t._("Request %(id)s: %(who)s", id=d.number, who=label)
    return _page(title, "".join(body), "../../", group, t)


def _record_section(d: Decision, options: PublishOptions, t: Speaker) -> list[str]:
    """The record's heads and verify commands, with links to the files when published."""
    if not options.record_files:
        kept = t._(
            "The frozen decision record, hash-chained, names each member's position, so the "
            "group keeps it among its members; its head is published here. A member checks "
            "their copy (%(command)s) with the command beside it.",
            command=_SLOT,
        )
        intro = e(kept).replace(_SLOT, "<code>consensus-bot export</code>")
        out = [f"<p>{intro}</p>\n<ul>"]
    else:
        intro = t._(
            "The frozen decision record, hash-chained; its head is published here. Check a "
            "downloaded file with the command beside it."
        )
        out = [f"<p>{e(intro)}</p>\n<ul>"]
    for n in range(1, len(d.segments) + 1):
        head = json.loads(d.segments[n - 1])["head"]
        name = record_name(d, n, "json")
        if options.record_files:
            minutes = e(t._("minutes"))
            md = (
                f' (<a href="{record_name(d, n, "md")}">{minutes}</a>)'
                if n <= len(d.markdown)
                else ""
            )
            link = f'<a href="{name}">{name}</a>{md}'
        else:
            link = e(name)
        segment = e(t._("Segment %(n)s: %(link)s", n=n, link=_SLOT)).replace(_SLOT, link)
        head_word = e(t._("head"))
        out.append(
            f"<li>{segment}<br>{head_word} "
            f'<code class="head" id="head-{n}">{e(head)}</code><br>'
            f"<code>{e(verify_command(d, n))}</code></li>"
        )
    out.append("</ul>\n")
    return out


def _index_body(
    title: str,
    decisions: Sequence[Decision],
    all_: Sequence[Decision],
    root: str,
    t: Speaker,
) -> str:
    outcomes = sorted({d.outcome for d in all_})
    years = sorted({d.year for d in all_}, reverse=True)
    nav = (
        "<p>"
        + e(t._("Outcome:"))
        + " "
        + " ".join(
            f'<a href="{root}outcome/{e(o)}.html">{e(_said(t, OUTCOME_LABELS, o))}</a>'
            for o in outcomes
        )
        + " · "
        + e(t._("Year:"))
        + " "
        + " ".join(f'<a href="{root}year/{e(y)}.html">{e(y)}</a>' for y in years)
        + "</p>\n"
    )
    rows = "".join(
        f'<tr><td><a href="{root}decisions/{d.number}/index.html">'
        + e(t._("Request %(id)s", id=d.number))
        + "</a></td>"
        f"<td>{e(str(d.record['outcome'].get('decided_at_iso') or '')[:10])}</td>"
        f'<td class="{e(d.outcome)}">{e(_said(t, OUTCOME_LABELS, d.outcome))}</td></tr>'
        for d in decisions
    )
    heads = (t._("Request"), t._("Decided"), t._("Outcome"))
    table = (
        "<table><thead><tr>"
        + "".join(f"<th scope='col'>{e(h)}</th>" for h in heads)
        + f"</tr></thead><tbody>{rows}</tbody></table>\n"
        if decisions
        else "<p>" + e(t._("No decisions yet.")) + "</p>\n"
    )
    return f"<h1>{e(title)}</h1>\n{nav}{table}"


def feed(decisions: Sequence[Decision], group: str, updated_iso: str, t: Speaker = SOURCE) -> str:
    """An Atom feed of the decisions (links relative to the feed's own address)."""
    ET.register_namespace("", ATOM_NS)
    root = ET.Element(f"{{{ATOM_NS}}}feed")
    ET.SubElement(root, f"{{{ATOM_NS}}}title").text = t._("Decisions of %(group)s", group=group)
    urn = "urn:consensus-bot:" + quote(group, safe="")  # an ID is a URI: no spaces
    ET.SubElement(root, f"{{{ATOM_NS}}}id").text = f"{urn}:decisions"
    ET.SubElement(root, f"{{{ATOM_NS}}}updated").text = updated_iso
    ET.SubElement(root, f"{{{ATOM_NS}}}link", href="index.html")
    author = ET.SubElement(root, f"{{{ATOM_NS}}}author")
    ET.SubElement(author, f"{{{ATOM_NS}}}name").text = group
    for d in decisions:
        entry = ET.SubElement(root, f"{{{ATOM_NS}}}entry")
        label = _said(t, OUTCOME_LABELS, d.outcome)
        title = t._("Request %(id)s: %(who)s", id=d.number, who=label)
        ET.SubElement(entry, f"{{{ATOM_NS}}}title").text = title
        ET.SubElement(
            entry, f"{{{ATOM_NS}}}id"
        ).text = f"{urn}:request:{d.number}:{d.record['head']}"
        ET.SubElement(entry, f"{{{ATOM_NS}}}updated").text = str(
            d.record["outcome"].get("decided_at_iso") or updated_iso
        )
        ET.SubElement(entry, f"{{{ATOM_NS}}}link", href=f"decisions/{d.number}/index.html")
        rationale = d.record["outcome"].get("rationale") or ""
        summary = t._(
            "%(outcome)s: %(rationale)s (record head %(head)s)",
            outcome=label,
            rationale=rationale,
            head=d.record["head"],
        )
        ET.SubElement(entry, f"{{{ATOM_NS}}}summary").text = summary
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def index_json(decisions: Sequence[Decision], options: PublishOptions) -> str:
    """The machine-readable list of decisions."""
    return (
        json.dumps(
            {
                "decisions": [
                    {
                        "request": d.number,
                        "applicant": applicant_label(d),
                        "outcome": d.outcome,
                        "decided_at": d.record["outcome"].get("decided_at_iso"),
                        "rationale": d.record["outcome"].get("rationale"),
                        "head": d.record["head"],
                        "page": f"decisions/{d.number}/index.html",
                        "records": [
                            record_name(d, n, "json") for n in range(1, len(d.segments) + 1)
                        ]
                        if options.record_files
                        else [],
                    }
                    for d in decisions
                ]
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )


def groups_index(groups: Sequence[tuple[str, str]]) -> str:
    """The top page of a bot serving several groups: each group's site is in its folder."""
    items = "".join(
        f'<li><a href="{e(gid)}/index.html">{e(name)}</a></li>\n' for gid, name in groups
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{e(csp())}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Decisions</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<main>\n<h1>Decisions</h1>\n<ul>\n{items}</ul>\n</main>\n</body>\n</html>\n"
    )


def build_site(
    decisions: Sequence[Decision],
    *,
    group: str,
    options: PublishOptions,
    updated_iso: str,
    lang: Speaker | None = None,
) -> dict[str, str]:
    """Every file of the site, by relative path, in `lang` (the group's language; English
    when None). Only decisions (records with an outcome) are published, newest first."""
    t = lang or SOURCE
    shown = sorted(
        (d for d in decisions if d.segments and d.record["outcome"].get("decision")),
        key=lambda d: (d.decided_at, d.number),
        reverse=True,
    )
    everything = t._("Decisions of %(group)s", group=group)
    files: dict[str, str] = {
        "index.html": _page(
            t._("Decisions"),
            _index_body(everything, shown, shown, "", t) + charts(shown, t),
            "",
            group,
            t,
        ),
        "index.json": index_json(shown, options),  # machine-readable: English
        "feed.atom": feed(shown, group, updated_iso, t),
    }
    for outcome in sorted({d.outcome for d in shown}):
        some = [d for d in shown if d.outcome == outcome]
        title = t._(
            "%(outcome)s — decisions of %(group)s",
            outcome=_said(t, OUTCOME_LABELS, outcome),
            group=group,
        )
        files[f"outcome/{outcome}.html"] = _page(
            title, _index_body(title, some, shown, "../", t), "../", group, t
        )
    for year in sorted({d.year for d in shown}):
        some = [d for d in shown if d.year == year]
        title = t._("Decisions of %(group)s in %(year)s", group=group, year=year)
        files[f"year/{year}.html"] = _page(
            title, _index_body(title, some, shown, "../", t), "../", group, t
        )
    for d in shown:
        folder = f"decisions/{d.number}/"
        files[folder + "index.html"] = decision_page(d, group, options, t)
        if not options.record_files:
            continue
        for n, text in enumerate(d.segments, start=1):
            files[folder + record_name(d, n, "json")] = text
        for n, text in enumerate(d.markdown, start=1):
            files[folder + record_name(d, n, "md")] = text
    return files
