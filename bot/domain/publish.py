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

ATOM_NS = "http://www.w3.org/2005/Atom"
OUTCOME_LABELS: dict[str, str] = {
    "admit": "Admitted",
    "decline": "Declined",
    "no-consensus": "No consensus",
}
POSITION_LABELS: dict[str, str] = {
    "support": "support",
    "no-objection": "no objection",
    "concern": "concern",
    "object": "object",
}
_STYLE = """
body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;
color:#1b1b1b;line-height:1.5}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ccc;padding:.2rem .5rem;
text-align:left}.outcome{font-size:1.3rem;font-weight:bold}.admit{color:#1a6b2a}
.decline{color:#9b1c1c}.no-consensus{color:#6b4e00}code{word-break:break-all;
background:#f4f4f4;padding:0 .2rem}nav a{margin-right:.7rem}figure{margin:1rem 0}
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


def applicant_label(d: Decision) -> str:
    """Who asked, as the public may read it: named only with consent."""
    a = d.record["request"]
    if d.consent:
        name = a.get("name") or a.get("applicant")
        org = a.get("org")
        return f"{name} ({org})" if org else str(name)
    kind = "an organisation" if d.kind == "organisation" else "an individual"
    return f"{kind} from {d.country}" if d.country else kind


def _page(title: str, body: str, root: str, group: str) -> str:
    """A whole HTML5 page; `root` is the relative path back to the site's top."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{e(csp())}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(title)} — {e(group)}</title>\n"
        f'<link rel="alternate" type="application/atom+xml" title="Decisions" '
        f'href="{root}feed.atom">\n'
        f"<style>{_STYLE}</style>\n</head>\n<body>\n"
        f'<nav><a href="{root}index.html">All decisions</a>'
        f'<a href="{root}feed.atom">Atom feed</a><a href="{root}index.json">index.json</a></nav>\n'
        f"<main>\n{body}</main>\n</body>\n</html>\n"
    )


# --------------------------------------------------------------------------- charts


def bar_chart(chart_id: str, title: str, desc: str, rows: Sequence[tuple[str, int, int]]) -> str:
    """An accessible horizontal bar chart (inline SVG) of (label, part, whole) rows, with the
    same numbers in a table beside it."""
    if not rows:
        return f"<p>{e(title)}: nothing to show yet.</p>\n"
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
    table = [
        f'<table aria-describedby="{chart_id}-t"><thead><tr><th scope="col">Group</th>'
        '<th scope="col">Took part</th><th scope="col">Eligible</th></tr></thead><tbody>'
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


def charts(decisions: Sequence[Decision]) -> str:
    """The charts across all decisions: by region, by stakeholder group, by development."""
    if not decisions:
        return ""
    return (
        "<h2>Participation across decisions</h2>\n"
        + bar_chart(
            "by-region",
            "Participation by region",
            "Share of eligible members of each region who took a position, over all decisions.",
            _sum_groups(decisions, "by_region"),
        )
        + bar_chart(
            "by-stakeholder",
            "Participation by stakeholder group",
            "Share of eligible members of each stakeholder group who took a position, "
            "over all decisions.",
            _sum_groups(decisions, "by_stakeholder"),
        )
        + bar_chart(
            "by-development",
            "Participation by development status",
            "Share of eligible members from developed, developing and least-developed "
            "countries who took a position, over all decisions.",
            _sum_groups(decisions, "by_development"),
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


def _breakdown_table(caption: str, rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:  # e.g. no member's country is known: no development status to show
        return f"<p>{e(caption)}: not known for any eligible member.</p>\n"
    out = [
        f"<table><caption>{e(caption)}</caption><thead><tr><th scope='col'>Group</th>"
        "<th scope='col'>Eligible</th><th scope='col'>Took part</th>"
        "<th scope='col'>Positions</th></tr></thead><tbody>"
    ]
    for row in rows:
        counts = row.get("counts")
        shown = (
            "not shown (fewer than 3 members)"
            if counts is None
            else ", ".join(f"{POSITION_LABELS.get(k, k)} {v}" for k, v in counts.items() if v)
            or "none"
        )
        out.append(
            f"<tr><td>{e(row['name'])}</td><td>{int(row['members'])}</td>"
            f"<td>{int(row['participated'])}</td><td>{e(shown)}</td></tr>"
        )
    out.append("</tbody></table>\n")
    return "".join(out)


def _objections(d: Decision, options: PublishOptions) -> str:
    """Every objection by number with its last disposition (and its raiser, if chosen)."""
    raised: dict[int, str] = {}
    disposed: dict[int, tuple[str, str]] = {}
    for entry in d.record["entries"]:
        if entry["type"] == "objection_raised":
            raised[int(entry["id"])] = str(entry.get("member") or "")
        elif entry["type"] == "objection_disposed":
            disposed[int(entry["id"])] = (str(entry["state"]), str(entry.get("rationale") or ""))
    if not raised:
        return "<p>No objections were raised.</p>\n"
    items = []
    for number in sorted(raised):
        state, text = disposed.get(number, ("open", ""))
        who = f" raised by {e(raised[number])}" if options.names_beside_objections else ""
        items.append(
            f"<li>Objection {number}{who}: <strong>{e(state)}</strong>"
            + (f" — {e(text)}" if text else "")
            + "</li>"
        )
    return "<ul>" + "".join(items) + "</ul>\n"


def _appeals(d: Decision) -> str:
    appealed: list[int] = []
    answers: dict[int, tuple[str, str]] = {}
    for entry in d.record["entries"]:
        if entry["type"] == "appealed":
            appealed.append(int(entry["id"]))
        elif entry["type"] == "appeal_answered":
            answers[int(entry["id"])] = (str(entry["state"]), str(entry.get("rationale") or ""))
    if not appealed:
        return "<p>The decision was not appealed.</p>\n"
    items = []
    for number in appealed:
        if number in answers:
            state, text = answers[number]
            items.append(
                f"<li>Appeal {number}: answered, <strong>{e(state)}</strong> — {e(text)}</li>"
            )
        else:
            items.append(f"<li>Appeal {number}: not answered yet</li>")
    return "<ul>" + "".join(items) + "</ul>\n"


def decision_page(d: Decision, group: str, options: PublishOptions) -> str:
    """The page of one decision (it lives in `decisions/<n>/`)."""
    rec = d.record
    out, sense = rec["outcome"], rec["sense"]
    label = OUTCOME_LABELS.get(d.outcome, d.outcome)
    counts = sense.get("counts") or {}
    hums = rec.get("hums")
    body = [
        f"<h1>Request {d.number}: {e(applicant_label(d))}</h1>\n",
        f'<p class="outcome {e(d.outcome)}" id="outcome">{e(label)}</p>\n',
        f'<p>Decided on <time datetime="{e(out.get("decided_at_iso"))}">'
        f"{e(str(out.get('decided_at_iso') or '')[:10])}</time>.</p>\n",
        "<h2>The chair's rationale</h2>\n",
        '<blockquote id="rationale"><p>'
        f"{e(out.get('rationale') or '(none given)')}</p></blockquote>\n",
        "<h2>How rough</h2>\n",
        f"<p>{int(sense.get('participated') or 0)} of {int(sense.get('eligible') or 0)} eligible "
        f"members took a position; {len(sense.get('in_the_rough') or [])} "
        f"{'was' if len(sense.get('in_the_rough') or []) == 1 else 'were'} in the rough.</p>\n",
        "<table><caption>Positions</caption><tbody>"
        + "".join(
            f"<tr><th scope='row'>{e(POSITION_LABELS.get(k, k))}</th><td>{int(v)}</td></tr>"
            for k, v in counts.items()
        )
        + "</tbody></table>\n",
        "<h2>Hums</h2>\n",
        "<p>Not hummed.</p>\n"
        if not hums
        else f"<p>For: {e(hums.get('for') or 'none')}; against: "
        f"{e(hums.get('against') or 'none')} (loudness only: who hummed is never recorded).</p>\n",
        "<h2>Participation</h2>\n",
        "<p class='muted'>Positions of groups with fewer than 3 members are not shown, so "
        "that no member is singled out.</p>\n",
        _breakdown_table("By stakeholder group", sense.get("by_stakeholder") or []),
        _breakdown_table("By region", sense.get("by_region") or []),
        _breakdown_table("By development status", sense.get("by_development") or []),
        "<h2>Objections</h2>\n",
        _objections(d, options),
        "<h2>Appeals</h2>\n",
        _appeals(d),
        "<h2>The record</h2>\n",
        *_record_section(d, options),
    ]
    return _page(f"Request {d.number}: {label}", "".join(body), "../../", group)


def _record_section(d: Decision, options: PublishOptions) -> list[str]:
    """The record's heads and verify commands, with links to the files when published."""
    if not options.record_files:
        out = [
            "<p>The frozen decision record, hash-chained, names each member's position, so the "
            "group keeps it among its members; its head is published here. A member checks "
            "their copy (<code>consensus-bot export</code>) with the command beside it.</p>\n"
            "<ul>"
        ]
    else:
        out = [
            "<p>The frozen decision record, hash-chained; its head is published here. Check a "
            "downloaded file with the command beside it.</p>\n<ul>"
        ]
    for n in range(1, len(d.segments) + 1):
        head = json.loads(d.segments[n - 1])["head"]
        name = record_name(d, n, "json")
        if options.record_files:
            md = (
                f' (<a href="{record_name(d, n, "md")}">minutes</a>)'
                if n <= len(d.markdown)
                else ""
            )
            link = f'<a href="{name}">{name}</a>{md}'
        else:
            link = e(name)
        out.append(
            f"<li>Segment {n}: {link}<br>head "
            f'<code class="head" id="head-{n}">{e(head)}</code><br>'
            f"<code>{e(verify_command(d, n))}</code></li>"
        )
    out.append("</ul>\n")
    return out


def _index_body(
    title: str, decisions: Sequence[Decision], all_: Sequence[Decision], root: str
) -> str:
    outcomes = sorted({d.outcome for d in all_})
    years = sorted({d.year for d in all_}, reverse=True)
    nav = (
        "<p>Outcome: "
        + " ".join(
            f'<a href="{root}outcome/{e(o)}.html">{e(OUTCOME_LABELS.get(o, o))}</a>'
            for o in outcomes
        )
        + " · Year: "
        + " ".join(f'<a href="{root}year/{e(y)}.html">{e(y)}</a>' for y in years)
        + "</p>\n"
    )
    rows = "".join(
        f'<tr><td><a href="{root}decisions/{d.number}/index.html">Request {d.number}</a></td>'
        f"<td>{e(str(d.record['outcome'].get('decided_at_iso') or '')[:10])}</td>"
        f'<td class="{e(d.outcome)}">{e(OUTCOME_LABELS.get(d.outcome, d.outcome))}</td></tr>'
        for d in decisions
    )
    table = (
        "<table><thead><tr><th scope='col'>Request</th><th scope='col'>Decided</th>"
        f"<th scope='col'>Outcome</th></tr></thead><tbody>{rows}</tbody></table>\n"
        if decisions
        else "<p>No decisions yet.</p>\n"
    )
    return f"<h1>{e(title)}</h1>\n{nav}{table}"


def feed(decisions: Sequence[Decision], group: str, updated_iso: str) -> str:
    """An Atom feed of the decisions (links relative to the feed's own address)."""
    ET.register_namespace("", ATOM_NS)
    root = ET.Element(f"{{{ATOM_NS}}}feed")
    ET.SubElement(root, f"{{{ATOM_NS}}}title").text = f"Decisions of {group}"
    urn = "urn:consensus-bot:" + quote(group, safe="")  # an ID is a URI: no spaces
    ET.SubElement(root, f"{{{ATOM_NS}}}id").text = f"{urn}:decisions"
    ET.SubElement(root, f"{{{ATOM_NS}}}updated").text = updated_iso
    ET.SubElement(root, f"{{{ATOM_NS}}}link", href="index.html")
    author = ET.SubElement(root, f"{{{ATOM_NS}}}author")
    ET.SubElement(author, f"{{{ATOM_NS}}}name").text = group
    for d in decisions:
        entry = ET.SubElement(root, f"{{{ATOM_NS}}}entry")
        label = OUTCOME_LABELS.get(d.outcome, d.outcome)
        ET.SubElement(entry, f"{{{ATOM_NS}}}title").text = f"Request {d.number}: {label}"
        ET.SubElement(
            entry, f"{{{ATOM_NS}}}id"
        ).text = f"{urn}:request:{d.number}:{d.record['head']}"
        ET.SubElement(entry, f"{{{ATOM_NS}}}updated").text = str(
            d.record["outcome"].get("decided_at_iso") or updated_iso
        )
        ET.SubElement(entry, f"{{{ATOM_NS}}}link", href=f"decisions/{d.number}/index.html")
        rationale = d.record["outcome"].get("rationale") or ""
        summary = f"{label}: {rationale} (record head {d.record['head']})"
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
) -> dict[str, str]:
    """Every file of the site, by relative path. Only decisions (records with an outcome)
    are published, newest first."""
    shown = sorted(
        (d for d in decisions if d.segments and d.record["outcome"].get("decision")),
        key=lambda d: (d.decided_at, d.number),
        reverse=True,
    )
    files: dict[str, str] = {
        "index.html": _page(
            "Decisions",
            _index_body(f"Decisions of {group}", shown, shown, "") + charts(shown),
            "",
            group,
        ),
        "index.json": index_json(shown, options),
        "feed.atom": feed(shown, group, updated_iso),
    }
    for outcome in sorted({d.outcome for d in shown}):
        some = [d for d in shown if d.outcome == outcome]
        title = f"{OUTCOME_LABELS.get(outcome, outcome)} — decisions of {group}"
        files[f"outcome/{outcome}.html"] = _page(
            title, _index_body(title, some, shown, "../"), "../", group
        )
    for year in sorted({d.year for d in shown}):
        some = [d for d in shown if d.year == year]
        title = f"Decisions of {group} in {year}"
        files[f"year/{year}.html"] = _page(
            title, _index_body(title, some, shown, "../"), "../", group
        )
    for d in shown:
        folder = f"decisions/{d.number}/"
        files[folder + "index.html"] = decision_page(d, group, options)
        if not options.record_files:
            continue
        for n, text in enumerate(d.segments, start=1):
            files[folder + record_name(d, n, "json")] = text
        for n, text in enumerate(d.markdown, start=1):
            files[folder + record_name(d, n, "md")] = text
    return files
