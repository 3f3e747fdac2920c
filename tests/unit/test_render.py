"""Rendering: hostile user text never reaches `formatted_body` unescaped, and every message
carries the machine-readable block, `m.notice` and explicit mentions."""

from __future__ import annotations

import ast
import html
import re
import unicodedata
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.lifecycle import Outcome, RequestState
from bot.domain.objections import Objection, ObjectionState
from bot.domain.positions import Position
from bot.domain.request import Applicant, Request
from bot.domain.sense import Sense, Voter, determine
from bot.matrix import render

NOW = 1_800_000_000_000
DAY = 86_400_000
KINDS = {
    "request_card",
    "ballot",
    "tally",
    "reminder",
    "summary",
    "outcome",
    "public_outcome",
    "digest",
    "reply",
}
ROOT = Path(__file__).resolve().parents[2]

# Bidi embeddings, overrides and isolates (Trojan Source) and zero-width characters.
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
ZERO_WIDTH = "\u200b\u200c\u200d\ufeff"
FORBIDDEN_IN_HTML = set(BIDI + ZERO_WIDTH + "\x00")

HOSTILE = [
    "<",
    ">",
    "&",
    '"',
    "'",
    "javascript:",
    "javascript:alert(1)",
    "<script>alert(1)</script>",
    "<ScRiPt src=//evil>",
    "<img src=x onerror=alert(1)>",
    '</p><a href="javascript:alert(1)">click</a>',
    '" onmouseover="alert(1)',
    "&lt;script&gt;",
    "&#60;script",
    "<!--",
    "]]>",
    *BIDI,
    *ZERO_WIDTH,
    "\u200e",
    "\u200f",
    "\x00",
    "\x1b[31m",
    "\r\n",
    "@room",
    "a",
    " ",
    "é",
    "👍🏽",
]
hostile_text = st.lists(
    st.sampled_from(HOSTILE) | st.text(max_size=3), min_size=1, max_size=12
).map("".join)


class TagCollector(HTMLParser):
    """Every tag and attribute in a piece of HTML, and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []
        self.other: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.other.append("comment")

    def handle_decl(self, decl: str) -> None:
        self.other.append("decl")

    def handle_pi(self, data: str) -> None:
        self.other.append("pi")

    def unknown_decl(self, data: str) -> None:
        self.other.append("unknown")


ALLOWED_TAGS = {"p", "br", "b", "h3", "ul", "li", "blockquote", "code", "pre", "a"}


def assert_safe_html(markup: str) -> None:
    """Only the bot's own tags, no attributes but a matrix.to link, no hidden characters."""
    assert "<script" not in markup.lower()
    assert not FORBIDDEN_IN_HTML & set(markup), [
        hex(ord(c)) for c in FORBIDDEN_IN_HTML & set(markup)
    ]
    parser = TagCollector()
    parser.feed(markup)
    parser.close()
    assert parser.other == []
    for tag, attrs in parser.tags:
        assert tag in ALLOWED_TAGS, tag
        if tag == "a":
            assert [name for name, _ in attrs] == ["href"]
            href = attrs[0][1] or ""
            assert href.startswith("https://matrix.to/#/"), href
        else:
            assert attrs == [], (tag, attrs)
    text = "".join(parser.text)
    assert not FORBIDDEN_IN_HTML & set(text)


def assert_message_contract(msg: render.Message) -> dict[str, Any]:
    content = msg.content()
    assert content["msgtype"] == "m.notice"
    assert content["format"] == "org.matrix.custom.html"
    assert content["body"] == msg.body
    assert content["formatted_body"] == msg.html
    assert "m.mentions" in content
    mentions = content["m.mentions"]
    assert isinstance(mentions, dict)
    assert set(mentions) <= {"user_ids"}
    assert "room" not in mentions  # never @room
    assert mentions.get("user_ids", []) == list(msg.mentions)
    block = content["consensus_bot"]
    assert block["kind"] == msg.kind
    assert block["kind"] in KINDS
    assert "request" in block
    assert block["request"] == msg.request
    if msg.reply_to:
        assert content["m.relates_to"] == {"m.in_reply_to": {"event_id": msg.reply_to}}
    else:
        assert "m.relates_to" not in content
    return content


def make_request(
    *,
    applicant: str = "@erin:x",
    name: str | None = "Erin",
    org: str | None = "Erin Org",
    statement: str = "Erin works on routing security.",
    filed_by: str = "@chair:x",
    rationale: str | None = None,
    outcome: Outcome | None = None,
    room_id: str | None = "!req:x",
    decided_by: str | None = None,
) -> Request:
    return Request(
        id=7,
        group_id="main",
        number=7,
        applicant=Applicant(applicant, name, org, "academia", "europe"),
        statement=statement,
        filed_by=filed_by,
        self_applied=False,
        state=RequestState.DECIDED if outcome else RequestState.OPEN,
        room_id=room_id,
        ballot_event_id="$ballot",
        deadline_at=NOW + 14 * DAY,
        created_at=NOW,
        outcome=outcome,
        decided_by=decided_by,
        rationale=rationale,
    )


def make_sense(members: list[str], reasons: list[str]) -> Sense:
    voters = [
        Voter(m, ("academia", "civil-society")[i % 2], ("europe", "africa")[i % 2])
        for i, m in enumerate(dict.fromkeys(members))
    ]
    cycle = [Position.SUPPORT, Position.OBJECT, Position.CONCERN, Position.RECUSE]
    positions = {v.user_id: cycle[i % len(cycle)] for i, v in enumerate(voters[:-1])}
    objections = [
        Objection(i + 1, 7, voters[i % len(voters)].user_id if voters else "@x:x", r, state)
        for i, (r, state) in enumerate(
            zip(reasons, [ObjectionState.OPEN, ObjectionState.ADDRESSED] * 10, strict=False)
        )
    ]
    return determine(voters, positions, objections, 0.5)


# ---- esc and clean ------------------------------------------------------------------------


@given(st.text())
def test_esc_never_lets_markup_through(text: str) -> None:
    out = render.esc(text)
    assert "<" not in out
    assert ">" not in out
    assert '"' not in out
    assert html.unescape(out) == render.clean(text)


@given(hostile_text)
def test_esc_of_hostile_text(text: str) -> None:
    out = render.esc(text)
    assert "<" not in out
    assert ">" not in out
    assert not FORBIDDEN_IN_HTML & set(out)


@given(st.text(), st.integers(1, 50))
def test_clean_removes_controls_and_caps(text: str, limit: int) -> None:
    out = render.clean(text, limit)
    assert len(out) <= limit
    assert not FORBIDDEN_IN_HTML & set(out)
    c0_and_del = {chr(c) for c in (*range(0x20), 0x7F)} - set("\t\n\r")
    assert not c0_and_del & set(out)


def test_clean_and_esc_examples() -> None:
    assert render.clean(None) == ""
    assert render.clean("") == ""
    assert render.clean("a\u202eb\u200bc\x00d") == "abcd"
    assert render.clean("line1\nline2\ttab") == "line1\nline2\ttab"
    assert render.clean("x" * 10, 5) == "xxxx…"
    assert render.esc('<b>"Erin" & co</b>') == "&lt;b&gt;&quot;Erin&quot; &amp; co&lt;/b&gt;"


def test_clean_removes_every_bidi_control() -> None:
    # Unicode PropList.txt, Bidi_Control.
    bidi_controls = "\u061c\u200e\u200f" + BIDI
    for ch in bidi_controls:
        assert render.clean(f"a{ch}b") == "ab", hex(ord(ch))


def test_clean_removes_every_control_character() -> None:
    for code in (*range(0x20), 0x7F, *range(0x80, 0xA0)):
        ch = chr(code)
        if ch in "\t\n\r":
            continue
        assert unicodedata.category(ch) == "Cc"
        assert render.clean(f"a{ch}b") == "ab", hex(code)


# ---- hostile text in every renderer -------------------------------------------------------


@settings(max_examples=150)
@given(hostile_text, hostile_text, hostile_text, hostile_text, hostile_text)
def test_request_card_escapes_everything(
    applicant: str, name: str, org: str, statement: str, filed_by: str
) -> None:
    req = make_request(
        applicant=applicant, name=name, org=org, statement=statement, filed_by=filed_by
    )
    msg = render.request_card(req, NOW)
    assert_safe_html(msg.html)
    assert not FORBIDDEN_IN_HTML & set(msg.body)
    assert_message_contract(msg)
    assert msg.kind == "request_card"
    assert "Independence" in msg.body


@settings(max_examples=150)
@given(
    st.lists(hostile_text, min_size=1, max_size=5),
    st.lists(hostile_text, max_size=4),
    hostile_text,
    st.booleans(),
)
def test_summary_escapes_everything(
    members: list[str], reasons: list[str], name: str, final: bool
) -> None:
    req = make_request(name=name)
    sense = make_sense(members, reasons)
    msg = render.summary(req, sense, final=final, mentions=["@chair:x"])
    assert_safe_html(msg.html)
    content = assert_message_contract(msg)
    data = content["consensus_bot"]
    assert data["kind"] == "summary"
    assert data["counts"] == {p.value: sense.counts[p] for p in Position}
    assert data["eligible"] == sense.eligible
    assert data["participated"] == sense.participated
    assert data["open_objections"] == len(sense.open_objections)
    assert data["proposed_outcome"] == sense.proposal.value
    assert content["m.mentions"] == {"user_ids": ["@chair:x"]}


@given(hostile_text, hostile_text)
def test_reply_escapes_everything(text: str, reply_to: str) -> None:
    msg = render.reply(text, request=3, reply_to=reply_to or None)
    assert_safe_html(msg.html)
    assert_message_contract(msg)
    assert msg.kind == "reply"


@given(hostile_text, hostile_text, hostile_text)
def test_outcome_ballot_and_announcement_escape_everything(
    name: str, rationale: str, decided_by: str
) -> None:
    req = make_request(name=name, rationale=rationale, outcome=Outcome.ADMIT, decided_by=decided_by)
    for msg in (
        render.outcome(req, HEAD, "<!cb>"),
        render.ballot(req, "!cb"),
        render.announcement(req),
        render.announcement(make_request(name=name, room_id=None)),
    ):
        assert_safe_html(msg.html)
        assert_message_contract(msg)


def test_outcome_data() -> None:
    req = make_request(rationale="Rough consensus.", outcome=Outcome.DECLINE, decided_by="@chair:x")
    msg = render.outcome(req, HEAD)
    data = msg.content()["consensus_bot"]
    assert data == {
        "kind": "outcome",
        "request": 7,
        "outcome": "decline",
        "decided_by": "@chair:x",
        "rationale": "Rough consensus.",
        "record_head": HEAD,
    }
    # The text names the head's first 16 hex and how to check a copy against all of it.
    assert f"Record: {HEAD[:16]}…" in msg.body
    assert f"consensus-bot export --verify FILE --head {HEAD}" in msg.body


HEAD = "3f9c" + "0" * 60


def test_the_request_card_shows_the_applicant_escaped() -> None:
    req = make_request(name="Erin <b>Example</b>")
    msg = render.request_card(req, NOW)
    assert "Erin &lt;b&gt;Example&lt;/b&gt;" in msg.html
    assert "<b>Example</b>" not in msg.html
    assert "Erin <b>Example</b>" in msg.body  # plain text needs no escaping


def test_reply_data_and_mentions() -> None:
    msg = render.reply(
        "Objection #1 recorded.",
        request=2,
        reply_to="$cmd",
        data={"objections": [{"id": 1, "member": "@b:x", "state": "open"}]},
    )
    content = assert_message_contract(msg)
    assert content["m.mentions"] == {}
    assert content["consensus_bot"]["objections"] == [{"id": 1, "member": "@b:x", "state": "open"}]
    assert render.reply("multi\nline").html == "<p>multi<br>line</p>"


def test_a_summary_for_a_huge_ballot_stays_under_the_event_size_limit() -> None:
    """Synapse refuses events over 64 KiB: a 10,000-member ballot's draft must still post."""
    import json

    from bot.domain.sense import Voter, determine
    from bot.matrix.render import MAX_LISTED, summary

    voters = [Voter(f"@member{i:05d}:example.org", "academia", "europe") for i in range(10_000)]
    positions = {v.user_id: Position.SUPPORT for v in voters[:6_000]}
    sense = determine(voters, positions, [], quorum=0.5)
    msg = summary(make_request(), sense, final=True)
    size = len(json.dumps(msg.content(), ensure_ascii=False).encode())
    assert size < 60_000
    assert "and 3950 more" in msg.body
    data = msg.content()["consensus_bot"]
    assert len(data["did_not_take_part"]) == MAX_LISTED
    assert data["did_not_take_part_count"] == 4_000


def _kinds_sent() -> set[str]:
    """Every `consensus_bot` kind the code makes: the literal first argument of each
    `Message(…)` and `notice(…)`, and every literal `"kind"` of a content dictionary."""
    kinds: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        if "devtools" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and node.args:
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                first = node.args[0]
                if name in ("Message", "notice") and isinstance(first, ast.Constant):
                    kinds.add(str(first.value))
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if (
                        isinstance(key, ast.Constant)
                        and key.value == "kind"
                        and isinstance(value, ast.Constant)
                        and not str(value.value).startswith("org.matrix.")  # a poll's kind
                    ):
                        kinds.add(str(value.value))
    return kinds


def test_the_contract_lists_every_message_kind_the_bot_sends() -> None:
    contract = (ROOT / "docs" / "design" / "contract.md").read_text(encoding="utf-8")
    section = contract.split("## Machine-readable content", 1)[1].split("\n## ", 1)[0]
    listed = set(re.search(r"the nine kinds\s+(.*?)\n\(", section, re.S).group(1).split())  # type: ignore[union-attr]
    listed = {word.strip("`,") for word in listed} - {"", "and"}
    assert _kinds_sent() == KINDS
    assert listed == KINDS
