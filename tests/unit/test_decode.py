"""Decoding raw `/sync` JSON into plain inbound values: every kind, garbage, and a fuzz."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.matrix.decode import (
    MAX_BODY_CHARS,
    MAX_JSON_DEPTH,
    TIMELINE_TYPES,
    Undecodable,
    cap_json_depth,
    decode_event,
    decode_event_strict,
    decode_sync,
    load_json,
    strip_reply_fallback,
    sync_filter,
)
from bot.matrix.events import (
    CommandText,
    EncryptionEnabled,
    Invite,
    LeftRoom,
    PollResponse,
    ReactionAdded,
    Redacted,
    SyncBatch,
)

BOT = "@bot:x"
P = "!cb"
ROOM = "!room:x"
TS = 1_800_000_000_000


def event(etype: str, content: Any, *, sender: str = "@alice:x", **extra: Any) -> dict[str, Any]:
    return {
        "type": etype,
        "event_id": "$e1",
        "sender": sender,
        "origin_server_ts": TS,
        "content": content,
        **extra,
    }


def reaction(key: str = "👍", target: str = "$ballot", **extra: Any) -> dict[str, Any]:
    relates = {"rel_type": "m.annotation", "event_id": target, "key": key}
    return event("m.reaction", {"m.relates_to": relates}, **extra)


def message(
    body: Any,
    msgtype: str | None = "m.text",
    *,
    sender: str = "@alice:x",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    content = {"msgtype": msgtype, "body": body, **(extra or {})}
    return event("m.room.message", content, sender=sender)


def decode(raw: Any) -> Any:
    return decode_event(ROOM, raw, BOT, P)


# ---- one event at a time ------------------------------------------------------------------


def test_reaction() -> None:
    assert decode(reaction("👍🏽")) == ReactionAdded(ROOM, "$e1", "@alice:x", TS, "$ballot", "👍🏽")


def test_a_long_reaction_key_is_capped() -> None:
    decoded = decode(reaction("x" * 500))
    assert isinstance(decoded, ReactionAdded)
    assert len(decoded.key) == 64


@pytest.mark.parametrize(
    "relates",
    [
        {"rel_type": "m.reference", "event_id": "$b", "key": "👍"},
        {"event_id": "$b", "key": "👍"},
        {"rel_type": "m.annotation", "key": "👍"},
        {"rel_type": "m.annotation", "event_id": "$b"},
        {"rel_type": "m.annotation", "event_id": "$b", "key": ""},
        {"rel_type": "m.annotation", "event_id": 7, "key": "👍"},
        {"rel_type": "m.annotation", "event_id": "$b", "key": ["👍"]},
        "not a dict",
        None,
    ],
)
def test_malformed_reactions_are_skipped(relates: Any) -> None:
    assert decode(event("m.reaction", {"m.relates_to": relates})) is None


def test_redaction_in_content_and_at_the_top_level() -> None:
    v11 = event("m.room.redaction", {"redacts": "$target"})
    old = event("m.room.redaction", {}, redacts="$target")
    expected = Redacted(ROOM, "$e1", "@alice:x", TS, "$target")
    assert decode(v11) == expected
    assert decode(old) == expected
    assert decode(event("m.room.redaction", {})) is None
    assert decode(event("m.room.redaction", {"redacts": 5})) is None


def test_command_text() -> None:
    assert decode(message("!cb support Good fit.")) == CommandText(
        ROOM, "$e1", "@alice:x", TS, "!cb support Good fit."
    )
    indented = decode(message("  !cb close"))
    assert isinstance(indented, CommandText)
    assert indented.body == "  !cb close"


@pytest.mark.parametrize(
    "raw",
    [
        message("hello everyone"),
        message("I think !cb support is right"),
        message("!cb close", msgtype="m.notice"),  # other bots speak in notices
        message("!cb close", msgtype="m.emote"),
        message("!cb close", msgtype=None),
        message(None),
        message(["!cb close"]),
        message(""),
        # An edit re-sends the body; running it again would run the command twice.
        message(
            "* !cb close",
            extra={
                "m.relates_to": {"rel_type": "m.replace", "event_id": "$orig"},
                "m.new_content": {"msgtype": "m.text", "body": "!cb close"},
            },
        ),
        message(
            "!cb close", extra={"m.relates_to": {"rel_type": "m.replace", "event_id": "$orig"}}
        ),
    ],
)
def test_messages_that_are_not_commands(raw: dict[str, Any]) -> None:
    assert decode(raw) is None


def test_a_command_sent_as_a_reply_loses_its_fallback() -> None:
    body = "> <@bob:x> !cb close\n> second quoted line\n\n!cb support Agreed."
    reply = {"m.relates_to": {"m.in_reply_to": {"event_id": "$q"}}}
    decoded = decode(message(body, extra=reply))
    assert isinstance(decoded, CommandText)
    assert decoded.body == "!cb support Agreed."
    # Replying to a command with chatter is not a command.
    chatter = "> <@bob:x> !cb close\n\nlol"
    assert decode(message(chatter, extra=reply)) is None


def test_strip_reply_fallback() -> None:
    assert strip_reply_fallback("> a\n> b\n\ntext") == "text"
    assert strip_reply_fallback("text\n> not a fallback") == "text\n> not a fallback"
    assert strip_reply_fallback("> only a quote") == ""


def test_a_huge_body_is_capped() -> None:
    decoded = decode(message("!cb support " + "x" * (MAX_BODY_CHARS * 2)))
    assert isinstance(decoded, CommandText)
    assert len(decoded.body) == MAX_BODY_CHARS


def test_encryption() -> None:
    enc = event("m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"}, state_key="")
    assert decode(enc) == EncryptionEnabled(ROOM, "$e1", "@alice:x", TS)
    no_state_key = event("m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"})
    assert decode(no_state_key) is None


@pytest.mark.parametrize(
    ("etype", "content", "answers"),
    [
        (
            "org.matrix.msc3381.poll.response",
            {
                "m.relates_to": {"rel_type": "m.reference", "event_id": "$poll"},
                "org.matrix.msc3381.poll.response": {"answers": ["support"]},
            },
            ("support",),
        ),
        (
            "m.poll.response",
            {
                "m.relates_to": {"rel_type": "m.reference", "event_id": "$poll"},
                "m.selections": ["object", 7, "concern"],
            },
            ("object", "concern"),
        ),
        (
            "org.matrix.msc3381.poll.response",
            {
                "m.relates_to": {"rel_type": "m.reference", "event_id": "$poll"},
                "org.matrix.msc3381.poll.response": {"answers": []},
            },
            (),  # no answers: withdrawn
        ),
    ],
)
def test_poll_responses(etype: str, content: dict[str, Any], answers: tuple[str, ...]) -> None:
    assert decode(event(etype, content)) == PollResponse(
        ROOM, "$e1", "@alice:x", TS, "$poll", answers
    )


def test_malformed_poll_responses_are_skipped() -> None:
    no_relation = {"org.matrix.msc3381.poll.response": {"answers": ["support"]}}
    not_a_list = {
        "m.relates_to": {"rel_type": "m.reference", "event_id": "$poll"},
        "org.matrix.msc3381.poll.response": {"answers": "support"},
    }
    assert decode(event("org.matrix.msc3381.poll.response", no_relation)) is None
    assert decode(event("org.matrix.msc3381.poll.response", not_a_list)) is None


@pytest.mark.parametrize(
    "raw",
    [
        reaction(sender=BOT),
        message("!cb close", sender=BOT),
        event("m.room.redaction", {"redacts": "$t"}, sender=BOT),
        event("m.room.encryption", {}, sender=BOT, state_key=""),
    ],
)
def test_the_bots_own_events_are_ignored(raw: dict[str, Any]) -> None:
    assert decode(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        None,
        42,
        "m.reaction",
        [reaction()],
        {},
        {"type": "m.reaction"},
        {**reaction(), "event_id": ""},
        {**reaction(), "event_id": None},
        {**reaction(), "sender": 12},
        {**reaction(), "type": None},
        {**reaction(), "origin_server_ts": True},  # a bool is not a timestamp
        {**reaction(), "origin_server_ts": 1.5},
        {**reaction(), "origin_server_ts": "1800000000000"},
        {k: v for k, v in reaction().items() if k != "origin_server_ts"},
        {**reaction(), "content": "not a dict"},
        {**reaction(), "content": None},
        event("m.room.member", {"membership": "join"}, state_key="@alice:x"),
        event("m.room.topic", {"topic": "!cb close"}),
    ],
)
def test_garbage_is_skipped(raw: Any) -> None:
    assert decode(raw) is None


# ---- whole sync responses -----------------------------------------------------------------


def member_event(state_key: str, membership: str, sender: str, **content: Any) -> dict[str, Any]:
    return {
        "type": "m.room.member",
        "state_key": state_key,
        "sender": sender,
        "event_id": f"$m-{membership}",
        "origin_server_ts": TS,
        "content": {"membership": membership, **content},
    }


def full_sync() -> dict[str, Any]:
    return {
        "next_batch": "s72",
        "rooms": {
            "join": {
                ROOM: {
                    "timeline": {
                        "limited": True,
                        "prev_batch": "p1",
                        "events": [
                            reaction(),
                            {**message("!cb status"), "event_id": "$e2"},
                            {**message("chatter"), "event_id": "$e3"},
                            "garbage",
                            {**reaction(sender=BOT), "event_id": "$e4"},
                        ],
                    }
                },
                "!quiet:x": {"timeline": {"events": []}},
            },
            "invite": {
                "!dm:x": {
                    "invite_state": {
                        "events": [
                            member_event(BOT, "invite", "@erin:x", is_direct=True),
                            member_event("@someone:x", "invite", "@erin:x", is_direct=False),
                        ]
                    }
                },
                "!group:x": {"invite_state": {"events": [member_event(BOT, "invite", "@chair:x")]}},
                "!odd:x": {},
            },
            "leave": {
                "!banned:x": {
                    "timeline": {
                        "events": [member_event(BOT, "ban", "@mod:x", reason="spam")],
                    }
                },
                "!kicked:x": {
                    "state": {"events": [member_event(BOT, "join", BOT)]},
                    "timeline": {"events": [member_event(BOT, "leave", "@mod:x")]},
                },
                "!gone:x": {},
            },
        },
    }


def test_decode_sync() -> None:
    batch = decode_sync(full_sync(), BOT, P)
    assert batch.next_batch == "s72"
    assert batch.events == [
        ReactionAdded(ROOM, "$e1", "@alice:x", TS, "$ballot", "👍"),
        CommandText(ROOM, "$e2", "@alice:x", TS, "!cb status"),
    ]
    assert batch.skipped == 3
    assert batch.joined_rooms == {ROOM, "!quiet:x"}
    assert batch.limited_rooms == {ROOM}
    assert batch.prev_batch == {ROOM: "p1"}
    invites = {i.room_id: i for i in batch.invites}
    assert invites["!dm:x"] == Invite("!dm:x", "@erin:x", True)
    assert invites["!group:x"] == Invite("!group:x", "@chair:x", False)
    assert invites["!odd:x"] == Invite("!odd:x", None, False)
    left = {x.room_id: x for x in batch.left}
    assert left["!banned:x"] == LeftRoom("!banned:x", "ban", "@mod:x", "spam")
    assert left["!kicked:x"] == LeftRoom("!kicked:x", "leave", "@mod:x", None)
    assert left["!gone:x"] == LeftRoom("!gone:x", "leave", None, None)


def test_an_initial_sync_skips_the_timeline_but_keeps_invites() -> None:
    batch = decode_sync(full_sync(), BOT, P, initial=True)
    assert batch.events == []
    assert batch.next_batch == "s72"
    assert batch.joined_rooms == {ROOM, "!quiet:x"}
    assert len(batch.invites) == 3
    assert len(batch.left) == 3


@pytest.mark.parametrize("raw", [None, [], "sync", 5, {}, {"rooms": []}, {"next_batch": 7}])
def test_decode_sync_of_garbage_is_empty(raw: Any) -> None:
    batch = decode_sync(raw, BOT, P)
    assert batch == SyncBatch(next_batch="")


def test_the_sync_filter_asks_for_what_is_decoded() -> None:
    f = sync_filter(50)
    assert f["room"]["timeline"]["limit"] == 50
    assert set(f["room"]["timeline"]["types"]) == set(TIMELINE_TYPES)
    assert {"m.reaction", "m.room.redaction", "m.room.message"} <= set(TIMELINE_TYPES)


# ---- fuzz ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["", BOT, "!cb", "!cb close", "m.reaction", "$e"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=15,
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The well-shaped value, or any JSON value in its place."""
    return st.one_of(strategy, strategy, json_values)


relates_st = st.fixed_dictionaries(
    {},
    optional={
        "rel_type": maybe(st.sampled_from(["m.annotation", "m.replace", "m.reference"])),
        "event_id": maybe(st.sampled_from(["$ballot", "$poll", ""])),
        "key": maybe(st.sampled_from(["👍", "👎🏽", "", "x" * 100])),
        "m.in_reply_to": maybe(st.fixed_dictionaries({"event_id": st.just("$q")})),
    },
)
content_st = st.fixed_dictionaries(
    {},
    optional={
        "msgtype": maybe(st.sampled_from(["m.text", "m.notice", "m.emote"])),
        "body": maybe(
            st.sampled_from(["!cb support", "> <@a:x> hi\n\n!cb close", "hello", "!cb"])
            | st.text(max_size=20)
        ),
        "m.relates_to": maybe(relates_st),
        "redacts": maybe(st.sampled_from(["$e1", ""])),
        "membership": maybe(st.sampled_from(["invite", "join", "leave", "ban"])),
        "is_direct": maybe(st.booleans()),
        "reason": maybe(st.text(max_size=5)),
        "org.matrix.msc3381.poll.response": maybe(
            st.fixed_dictionaries({"answers": maybe(st.lists(maybe(st.just("support"))))})
        ),
        "m.selections": maybe(st.lists(maybe(st.just("object")))),
    },
)
event_st = st.fixed_dictionaries(
    {},
    optional={
        "type": maybe(
            st.sampled_from([*TIMELINE_TYPES, "m.room.member", "m.poll.response", "m.room.topic"])
        ),
        "event_id": maybe(st.sampled_from(["$e1", "$e2", ""])),
        "sender": maybe(st.sampled_from([BOT, "@alice:x", ""])),
        "origin_server_ts": maybe(st.integers()),
        "state_key": maybe(st.sampled_from(["", BOT, "@alice:x"])),
        "redacts": maybe(st.just("$e1")),
        "content": maybe(content_st),
    },
)
events_st = maybe(st.lists(maybe(event_st), max_size=4))
room_st = st.fixed_dictionaries(
    {},
    optional={
        "timeline": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "events": events_st,
                    "limited": maybe(st.booleans()),
                    "prev_batch": maybe(st.text(max_size=4)),
                },
            )
        ),
        "state": maybe(st.fixed_dictionaries({}, optional={"events": events_st})),
        "invite_state": maybe(st.fixed_dictionaries({}, optional={"events": events_st})),
    },
)
rooms_st = st.dictionaries(st.sampled_from(["!a:x", "!b:x", ""]), maybe(room_st), max_size=3)
sync_st = st.fixed_dictionaries(
    {},
    optional={
        "next_batch": maybe(st.text(max_size=5)),
        "rooms": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "join": maybe(rooms_st),
                    "invite": maybe(rooms_st),
                    "leave": maybe(rooms_st),
                },
            )
        ),
    },
)


def timeline_events(raw: Any) -> int:
    """How many timeline entries the joined rooms of a raw sync hold."""
    rooms = raw.get("rooms") if isinstance(raw, dict) else None
    join = rooms.get("join") if isinstance(rooms, dict) else None
    total = 0
    for room_id, room in (join or {}).items() if isinstance(join, dict) else ():
        if not isinstance(room_id, str) or not isinstance(room, dict):
            continue
        timeline = room.get("timeline")
        events = timeline.get("events") if isinstance(timeline, dict) else None
        total += len(events) if isinstance(events, list) else 0
    return total


def check_batch(batch: SyncBatch, raw: Any, *, initial: bool) -> None:
    assert isinstance(batch, SyncBatch)
    assert isinstance(batch.next_batch, str)
    for ev in batch.events:
        assert isinstance(
            ev, ReactionAdded | Redacted | CommandText | EncryptionEnabled | PollResponse
        )
        assert ev.sender != BOT
        assert isinstance(ev.event_id, str)
        assert ev.event_id
        assert isinstance(ev.ts, int)
        assert not isinstance(ev.ts, bool)
        assert ev.room_id in batch.joined_rooms
    for ev in batch.events:
        if isinstance(ev, CommandText):
            assert ev.body.lstrip().startswith(P)
    if initial:
        assert batch.events == []
        assert batch.skipped == 0
    else:
        assert len(batch.events) + batch.skipped == timeline_events(raw)
    for left in batch.left:
        assert isinstance(left.membership, str)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, st.booleans())
def test_decode_sync_never_raises_on_any_json(raw: Any, initial: bool) -> None:
    check_batch(decode_sync(raw, BOT, P, initial=initial), raw, initial=initial)


@settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow])
@given(sync_st, st.booleans())
def test_decode_sync_never_raises_on_sync_shaped_values(raw: Any, initial: bool) -> None:
    check_batch(decode_sync(raw, BOT, P, initial=initial), raw, initial=initial)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(maybe(event_st))
def test_decode_event_never_raises(raw: Any) -> None:
    decoded = decode_event(ROOM, raw, BOT, P)
    assert decoded is None or decoded.sender != BOT


# ---- decoding is total per event, and JSON of any depth is read -----------------------------


def nested(depth: int) -> Any:
    """A value `depth` objects deep, built without recursion."""
    value: Any = "bottom"
    for _ in range(depth):
        value = {"a": value}
    return value


def nested_text(depth: int) -> str:
    return '{"a":' * depth + '"bottom"' + "}" * depth


def sync_with(*events: Any) -> dict[str, Any]:
    return {"next_batch": "s2", "rooms": {"join": {ROOM: {"timeline": {"events": list(events)}}}}}


class Exploding(Mapping[str, Any]):
    """An event whose every read raises (a decoding bug no test foresaw, say)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getitem__(self, key: str) -> Any:
        raise self.error

    def __iter__(self) -> Iterator[str]:
        raise self.error

    def __len__(self) -> int:
        return 1


def test_deeply_nested_json_was_what_killed_the_loop() -> None:
    """The failure this guards against: Python's parser raises RecursionError, which is no
    ValueError, so it escaped every `except` on the way out of the sync loop."""
    text = json.dumps(sync_with(event("m.room.message", {"x": "DEEP"})))
    with pytest.raises(RecursionError):
        json.loads(text.replace('"DEEP"', nested_text(5000)))


def test_a_sync_response_with_a_5000_deep_event_is_read_and_the_batch_applies() -> None:
    deep = {**message("!cb support Yes.", extra={"x": "DEEP"}), "event_id": "$deep"}
    after = {**message("!cb status"), "event_id": "$after"}
    text = json.dumps(sync_with(deep, after)).replace('"DEEP"', nested_text(5000))
    raw = load_json(text.encode())
    batch = decode_sync(raw, BOT, P)
    assert batch.next_batch == "s2"  # the token advances
    assert batch.undecodable == []
    # The bot reads no field that deep: both commands decode, the deep part is null.
    assert [e.event_id for e in batch.events] == ["$deep", "$after"]
    assert raw["rooms"]["join"][ROOM]["timeline"]["events"][0]["content"]["body"] == (
        "!cb support Yes."
    )


def test_a_deep_list_in_place_of_a_reaction_key_is_read_too() -> None:
    text = json.dumps(sync_with(reaction()), ensure_ascii=False)
    text = text.replace('"👍"', "[" * 3000 + "]" * 3000)
    assert "[[[" in text
    batch = decode_sync(load_json(text), BOT, P)
    assert batch.events == []  # a reaction whose key is null is ignored
    assert batch.skipped == 1


def truncated(value: Any, room: int) -> Any:
    """The reference: `value` with everything more than `room` brackets down set to None."""
    if isinstance(value, dict | list) and room == 0:
        return None
    if isinstance(value, dict):
        return {k: truncated(v, room - 1) for k, v in value.items()}
    if isinstance(value, list):
        return [truncated(v, room - 1) for v in value]
    return value


tricky_text = st.text(alphabet='[]{}"\\ a\n\u00e9', max_size=8)
json_trees = st.recursive(
    st.none() | st.booleans() | st.integers() | tricky_text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(tricky_text, children, max_size=3)
    ),
    max_leaves=20,
)


@settings(max_examples=300)
@given(json_trees, st.integers(min_value=0, max_value=6), st.booleans())
def test_capping_is_the_reference_truncation(value: Any, depth: int, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only, indent=None if ascii_only else 1)
    assert json.loads(cap_json_depth(text, depth)) == truncated(value, depth)


def test_capping_leaves_a_shallow_text_alone() -> None:
    text = json.dumps(full_sync())
    assert cap_json_depth(text) == text
    assert load_json(text) == full_sync()


@pytest.mark.parametrize("text", ["[", "]", "[}", '{"a": [1}', '["]"', "{" * 5000])
def test_what_is_not_json_stays_not_json(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - JSONDecodeError or a bracket mismatch
        load_json(text)


def test_load_json_rejects_what_is_not_utf8() -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - UnicodeDecodeError is a ValueError
        load_json(b"\xff" + b"[" * 5000 + b"]" * 5000)


@pytest.mark.parametrize("error", [RecursionError("deep"), ValueError("x"), TypeError("odd")])
def test_an_event_that_cannot_be_decoded_is_set_aside_and_the_rest_applies(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    before = {**message("!cb status"), "event_id": "$before"}
    after = {**reaction(), "event_id": "$after"}
    with caplog.at_level(logging.ERROR, logger="bot.matrix.decode"):
        batch = decode_sync(sync_with(before, Exploding(error), after), BOT, P)
    assert [e.event_id for e in batch.events] == ["$before", "$after"]
    assert batch.skipped == 1
    assert len(batch.undecodable) == 1
    ref = batch.undecodable[0]
    assert any(ref in r.getMessage() and r.exc_info for r in caplog.records)
    assert batch.next_batch == "s2"


def test_decode_event_is_total_and_the_strict_one_says_why() -> None:
    assert decode_event(ROOM, Exploding(RecursionError()), BOT, P) is None
    with pytest.raises(Undecodable) as caught:
        decode_event_strict(ROOM, Exploding(RecursionError()), BOT, P)
    assert isinstance(caught.value.__cause__, RecursionError)
    assert decode_event_strict(ROOM, reaction(), BOT, P) == decode(reaction())


def test_an_invite_or_leave_that_cannot_be_decoded_is_set_aside() -> None:
    raw = {
        "next_batch": "s3",
        "rooms": {
            "invite": {"!bad:x": {"invite_state": {"events": [Exploding(ValueError())]}}},
            "leave": {"!bad2:x": {"timeline": {"events": [Exploding(ValueError())]}}},
        },
    }
    batch = decode_sync(raw, BOT, P)
    assert (batch.invites, batch.left) == ([], [])  # set aside (and logged), not raised
    assert batch.next_batch == "s3"


def test_the_depth_cap_is_far_deeper_than_anything_the_bot_reads() -> None:
    assert 20 < MAX_JSON_DEPTH < 200
