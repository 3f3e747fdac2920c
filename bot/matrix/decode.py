"""Decode a raw `/sync` response into plain inbound values.

Works on the JSON itself: every field is checked for type, and anything malformed is counted
and skipped, never raised, so one hostile event cannot stop the loop. The raw JSON also
carries what nio does not surface (`rooms.leave`, matrix-nio issue 46).

Decoding is total per event: should decoding one event raise anyway (a bug, or a value no
test thought of), that event alone is set aside, logged with a reference and listed in
`SyncBatch.undecodable`; the rest of the batch still applies and the sync token advances.

The JSON text itself is parsed by `load_json` (the gateway calls it for every response).
Python's parser recurses once per nesting level, so an event whose content nests ~990
levels deep made `json.loads` raise RecursionError inside the HTTP layer, which escaped the
sync loop and killed it before the token could advance: the same response came back on
every restart, a crash loop. `load_json` parses a too-deep text a second time with every
value nested deeper than MAX_JSON_DEPTH replaced by null; the bot reads no field deeper
than about ten levels, so nothing it acts on changes.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from bot.matrix.events import (
    CommandText,
    EncryptedMessage,
    EncryptionEnabled,
    InboundEvent,
    Invite,
    LeftRoom,
    PollResponse,
    ReactionAdded,
    Redacted,
    SyncBatch,
)

# Longer bodies are still decoded (the command layer refuses them politely).
MAX_BODY_CHARS = 65_536
# Timeline event types the bot asks for; the sync filter is built from this.
TIMELINE_TYPES: tuple[str, ...] = (
    "m.reaction",
    "m.room.redaction",
    "m.room.message",
    "m.room.encryption",
    "org.matrix.msc3381.poll.response",
    "m.poll.response",
    "m.room.encrypted",
    # Not decoded: the crypto edge follows joins, invites and leaves with them, so keys go to
    # whoever is in an encrypted room now (the state section lazy-loads members).
    "m.room.member",
)
POLL_RESPONSE_TYPES = ("org.matrix.msc3381.poll.response", "m.poll.response")
# What the bot acts on that clients send encrypted: the only types it takes from inside an
# encrypted event (bot/matrix/crypto.py); redactions and state are never encrypted.
DECRYPTABLE_TYPES = frozenset({"m.room.message", "m.reaction", *POLL_RESPONSE_TYPES})
# Values nested deeper than this (counted from the top of a whole response) become null.
# The deepest field the bot reads is ~10 levels down (rooms.join.<id>.timeline.events[n]
# .content.<poll response>.answers[n]); 100 stays far below Python's recursion limit.
MAX_JSON_DEPTH = 100

log = logging.getLogger(__name__)
T = TypeVar("T")

# A JSON string (escapes included) or one bracket; strings are matched whole so that the
# brackets inside them are never counted.
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_CLOSING = {"]": "[", "}": "{"}


def cap_json_depth(text: str, max_depth: int = MAX_JSON_DEPTH) -> str:
    """The JSON text with every value nested deeper than `max_depth` replaced by `null`.

    Iterative (no recursion however deep the input). Text that is not JSON stays not JSON:
    mismatched or unclosed brackets raise ValueError, anything else is left to the parser.
    """
    out: list[str] = []
    stack: list[str] = []
    last = 0  # text[last:] is not yet copied to `out`
    for match in _JSON_TOKENS.finditer(text):
        lexeme = match.group()
        if lexeme[0] == '"':
            continue
        if lexeme in ("[", "{"):
            stack.append(lexeme)
            if len(stack) == max_depth + 1:  # a too-deep value starts here
                out.append(text[last : match.start()])
            continue
        if not stack or stack.pop() != _CLOSING[lexeme]:
            raise ValueError("mismatched bracket in JSON text")
        if len(stack) == max_depth:  # ... and ends here
            out.append("null")
            last = match.end()
    if stack:
        raise ValueError("unclosed bracket in JSON text")
    out.append(text[last:])
    return "".join(out)


def load_json(data: bytes | str) -> Any:
    """Parse a JSON body however deeply it nests; raises ValueError when it is not JSON.

    The common case is one plain `json.loads`; only a body too deep for it is capped at
    MAX_JSON_DEPTH (see the module docstring) and parsed again.
    """
    try:
        return json.loads(data)
    except RecursionError:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        log.warning(
            "a homeserver response nests too deeply for the JSON parser; values deeper than "
            "%d levels are read as null",
            MAX_JSON_DEPTH,
        )
        return json.loads(cap_json_depth(text))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


class Undecodable(Exception):
    """Decoding one event raised; `ref` is in the log line that has the traceback."""

    def __init__(self, ref: str) -> None:
        super().__init__(f"undecodable event (ref {ref})")
        self.ref = ref


def decode_event(room_id: str, event: Any, bot_user_id: str, prefix: str) -> InboundEvent | None:
    """Decode one timeline event; None for anything the bot does not act on or cannot trust.

    Never raises: an event whose decoding fails is logged (with a reference) and is None.
    """
    try:
        return decode_event_strict(room_id, event, bot_user_id, prefix)
    except Undecodable:
        return None


def decode_event_strict(
    room_id: str, event: Any, bot_user_id: str, prefix: str
) -> InboundEvent | None:
    """`decode_event`, but an event whose decoding fails raises `Undecodable` (logged with
    its reference) so that the caller can count it apart from the events it ignores."""
    try:
        return _decode_event(room_id, event, bot_user_id, prefix)
    except Exception as exc:
        ref = secrets.token_hex(3)
        log.error(
            "event %s in %s cannot be decoded and is set aside (ref %s): %s",
            _event_id(event),
            room_id,
            ref,
            type(exc).__name__,
            exc_info=True,
        )
        raise Undecodable(ref) from exc


def _event_id(event: Any) -> str:
    try:
        event_id = event.get("event_id") if isinstance(event, Mapping) else None
    except Exception:
        event_id = None
    return event_id[:255] if isinstance(event_id, str) else "(no event id)"


def _decode_event(room_id: str, event: Any, bot_user_id: str, prefix: str) -> InboundEvent | None:
    if not isinstance(event, Mapping):
        return None
    etype = _str(event.get("type"))
    event_id = _str(event.get("event_id"))
    sender = _str(event.get("sender"))
    ts = event.get("origin_server_ts")
    if etype is None or event_id is None or sender is None:
        return None
    if not isinstance(ts, int) or isinstance(ts, bool):
        return None
    if sender == bot_user_id:
        return None
    content = _dict(event.get("content"))
    if etype == "m.reaction":
        relates = _dict(content.get("m.relates_to"))
        target = _str(relates.get("event_id"))
        key = _str(relates.get("key"))
        if relates.get("rel_type") != "m.annotation" or target is None or key is None:
            return None
        return ReactionAdded(room_id, event_id, sender, ts, target, key[:64])
    if etype == "m.room.redaction":
        # Room versions 11+ put `redacts` in content; older ones at the top level.
        redacts = _str(content.get("redacts")) or _str(event.get("redacts"))
        if redacts is None:
            return None
        return Redacted(room_id, event_id, sender, ts, redacts)
    if etype == "m.room.message":
        if content.get("msgtype") not in ("m.text", "m.notice"):
            return None
        if content.get("msgtype") == "m.notice":
            return None  # other bots speak in notices; never act on them
        body = _str(content.get("body"))
        if body is not None and "m.in_reply_to" in _dict(content.get("m.relates_to")):
            body = strip_reply_fallback(body)
        if body is None or not body.lstrip().startswith(prefix):
            return None
        # An edit (m.replace) re-sends the body with "* "; do not run a command twice.
        if _dict(content.get("m.relates_to")).get("rel_type") == "m.replace":
            return None
        return CommandText(room_id, event_id, sender, ts, body[:MAX_BODY_CHARS])
    if etype in POLL_RESPONSE_TYPES:
        relates = _dict(content.get("m.relates_to"))
        poll_id = _str(relates.get("event_id"))
        if relates.get("rel_type") != "m.reference" or poll_id is None:
            return None
        body = content.get("org.matrix.msc3381.poll.response", content.get("m.response"))
        answers = _dict(body).get("answers") if body is not None else content.get("m.selections")
        if not isinstance(answers, list):
            return None
        picked = tuple(a for a in answers if isinstance(a, str))[:8]
        return PollResponse(room_id, event_id, sender, ts, poll_id, picked)
    if etype == "m.room.encrypted":
        # Kept whole (it is at most one PDU, 64 KiB) so it can be decrypted when its key comes;
        # its session is named so that the key's arrival finds it (`Syncer.release_held`).
        envelope = event.get("content")
        envelope = envelope if isinstance(envelope, dict) else {}
        sender_key, session_id = envelope.get("sender_key"), envelope.get("session_id")
        return EncryptedMessage(
            room_id,
            event_id,
            sender,
            ts,
            json.dumps(event),
            sender_key if isinstance(sender_key, str) else "",
            session_id if isinstance(session_id, str) else "",
        )
    if etype == "m.room.encryption" and event.get("state_key") == "":
        return EncryptionEnabled(room_id, event_id, sender, ts)
    return None


def strip_reply_fallback(body: str) -> str:
    """Drop the quoted `> <@user> …` lines clients put before a reply's own text."""
    lines = body.split("\n")
    i = 0
    while i < len(lines) and lines[i].startswith(">"):
        i += 1
    if i and i < len(lines) and lines[i] == "":
        i += 1
    return "\n".join(lines[i:]) if i else body


def _invite(room_id: str, room: Mapping[str, Any], bot_user_id: str) -> Invite:
    inviter: str | None = None
    is_direct = False
    events = _dict(room.get("invite_state")).get("events")
    for ev in events if isinstance(events, list) else []:
        ev = _dict(ev)
        if ev.get("type") == "m.room.member" and ev.get("state_key") == bot_user_id:
            content = _dict(ev.get("content"))
            if content.get("membership") == "invite":
                inviter = _str(ev.get("sender"))
                is_direct = content.get("is_direct") is True
    return Invite(room_id, inviter, is_direct)


def _left(room_id: str, room: Mapping[str, Any], bot_user_id: str) -> LeftRoom | None:
    timeline = _dict(room.get("timeline")).get("events")
    state = _dict(room.get("state")).get("events")
    events = [
        *(state if isinstance(state, list) else []),
        *(timeline if isinstance(timeline, list) else []),
    ]
    for ev in reversed(events):
        ev = _dict(ev)
        if ev.get("type") == "m.room.member" and ev.get("state_key") == bot_user_id:
            content = _dict(ev.get("content"))
            membership = _str(content.get("membership")) or "leave"
            return LeftRoom(
                room_id, membership, _str(ev.get("sender")), _str(content.get("reason"))
            )
    return LeftRoom(room_id, "leave", None, None)


def decode_sync(raw: Any, bot_user_id: str, prefix: str, *, initial: bool = False) -> SyncBatch:
    """Decode a whole sync response.

    With `initial` (the very first sync of a fresh database) timeline events are skipped:
    old commands must not run again; invites are still taken.
    """
    data = _dict(raw)
    batch = SyncBatch(next_batch=_str(data.get("next_batch")) or "")
    rooms = _dict(data.get("rooms"))
    for room_id, room in _dict(rooms.get("join")).items():
        if not isinstance(room_id, str):
            continue
        batch.joined_rooms.add(room_id)
        timeline = _dict(_dict(room).get("timeline"))
        if timeline.get("limited") is True:
            batch.limited_rooms.add(room_id)
            prev = _str(timeline.get("prev_batch"))
            if prev:
                batch.prev_batch[room_id] = prev
        if initial:
            continue
        events = timeline.get("events")
        for event in events if isinstance(events, list) else []:
            try:
                decoded = decode_event_strict(room_id, event, bot_user_id, prefix)
            except Undecodable as exc:
                batch.undecodable.append(exc.ref)
                decoded = None
            if decoded is None:
                batch.skipped += 1
            else:
                batch.events.append(decoded)
    for room_id, room in _dict(rooms.get("invite")).items():
        if isinstance(room_id, str):
            invite = _contained("invite", room_id, _invite, _dict(room), bot_user_id)
            if invite is not None:
                batch.invites.append(invite)
    for room_id, room in _dict(rooms.get("leave")).items():
        if isinstance(room_id, str):
            left = _contained("leave", room_id, _left, _dict(room), bot_user_id)
            if left is not None:
                batch.left.append(left)
    return batch


def _contained(
    what: str,
    room_id: str,
    decode: Callable[[str, Mapping[str, Any], str], T],
    room: Mapping[str, Any],
    bot_user_id: str,
) -> T | None:
    """`decode(room_id, room, bot_user_id)`, or None (logged) when it raises."""
    try:
        return decode(room_id, room, bot_user_id)
    except Exception:
        log.exception(
            "the %s of %s cannot be decoded and is set aside (ref %s)",
            what,
            room_id,
            secrets.token_hex(3),
        )
        return None


def sync_filter(timeline_limit: int = 100) -> dict[str, Any]:
    """The sync filter: only what the bot acts on, so initial syncs stay fast."""
    return {
        "presence": {"types": []},
        "account_data": {"types": []},
        "room": {
            "timeline": {"limit": timeline_limit, "types": list(TIMELINE_TYPES)},
            "state": {"lazy_load_members": True, "types": ["m.room.member", "m.room.encryption"]},
            "ephemeral": {"types": []},
            "account_data": {"types": []},
        },
    }


def invites_filter() -> dict[str, Any]:
    """A sync filter that leaves out everything but the rooms' membership sections.

    No `room.rooms` list: the invite section is not limited by it anyway, and Synapse
    refuses the whole sync (400) when one of its entries is not a well-formed room ID, which
    would turn a typo in the config into "pending invites could not be read".
    """
    empty: dict[str, Any] = {"types": []}
    return {
        "presence": empty,
        "account_data": empty,
        "room": {
            "timeline": {"limit": 0},
            "state": empty,
            "ephemeral": empty,
            "account_data": empty,
        },
    }
