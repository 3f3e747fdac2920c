"""The rooms the bot creates: their specs, the marker state events, and MSC3381 event types."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

REQUEST_STATE_TYPE = "org.consensus_bot.request"  # marks a room as a request's room
POLL_START = "org.matrix.msc3381.poll.start"
POLL_END = "org.matrix.msc3381.poll.end"
CREATE_ROOM_INVITES = 10  # Synapse refuses createRoom with more invitees


def request_marker(key: bytes, request_id: int) -> dict[str, Any]:
    """The marker state event content of a request's room: the request and a secret token
    only the bot can make (an HMAC under a key that never leaves it)."""
    label = f"request:{request_id}".encode()
    token = hmac.new(key, label, hashlib.sha256).hexdigest()[:32]
    return {"request": request_id, "token": token}


def adoptable(state: list[dict[str, Any]], bot_user_id: str, marker: dict[str, Any]) -> bool:
    """Whether a room's full state shows a room the bot made for this marker: the bot sent
    its `m.room.create`, and the bot's marker event carries exactly this content."""
    created_by_bot = False
    marked = False
    for event in state:
        if not isinstance(event, dict):
            continue
        kind, sender = event.get("type"), event.get("sender")
        if kind == "m.room.create" and sender == bot_user_id:
            created_by_bot = True
        if kind == REQUEST_STATE_TYPE and event.get("state_key") == "" and sender == bot_user_id:
            content = event.get("content")
            marked = isinstance(content, dict) and all(
                hmac.compare_digest(str(content.get(k)), str(v)) for k, v in marker.items()
            )
    return created_by_bot and marked


MEGOLM = "m.megolm.v1.aes-sha2"  # rooms created encrypted use it with the default rotation


def _state(kind: str, content: dict[str, Any], key: str = "") -> dict[str, Any]:
    return {"type": kind, "state_key": key, "content": content}


def request_room_spec(
    *,
    name: str,
    topic: str,
    marker: dict[str, Any],
    chairs: frozenset[str],
    bot_user_id: str,
    bot_needs_power_entry: bool,
    space_id: str | None,
    server_name: str,
    encrypted: bool = False,
    allow_room: str | None = None,
) -> dict[str, Any]:
    """createRoom arguments for a request's room: invite-only (or, with `allow_room`, open
    to whoever is joined to that room: MSC3083 `restricted`), guests forbidden, settings
    reserved to the bot; members may talk and react, only the bot removes others' events."""
    users = dict.fromkeys(sorted(chairs - {bot_user_id}), 50)
    if bot_needs_power_entry:
        users[bot_user_id] = 100
    initial_state = [
        _state("m.room.guest_access", {"guest_access": "forbidden"}),
        _state("m.room.history_visibility", {"history_visibility": "shared"}),
        _state(REQUEST_STATE_TYPE, marker),
    ]
    if space_id:
        parent = {"via": [server_name], "canonical": True}
        initial_state.append(_state("m.space.parent", parent, space_id))
    if encrypted:
        initial_state.append(_state("m.room.encryption", {"algorithm": MEGOLM}))
    if allow_room:
        initial_state.append(restricted_join_rule(allow_room))
    return {
        "name": name,
        "topic": topic,
        "initial_state": initial_state,
        "power_levels": {
            "users": users,
            "users_default": 0,
            "events_default": 0,
            "state_default": 100,
            "invite": 100,
            "kick": 100,
            "ban": 100,
            "redact": 100,  # nobody but the bot removes others' positions
            "events": {"m.reaction": 0, "m.room.redaction": 0},
            "notifications": {"room": 50},
        },
    }


def dm_initial_state(*, encrypted: bool = False) -> list[dict[str, Any]]:
    """Initial state of the bot's direct chat with a user (found again by the bot's own
    table, never by a marker: a marker could be copied into someone else's room)."""
    state = [_state("m.room.guest_access", {"guest_access": "forbidden"})]
    if encrypted:
        state.append(_state("m.room.encryption", {"algorithm": MEGOLM}))
    return state


# Room versions whose join rules know `restricted` (MSC3083: 8 and 9 with a flaw in how
# joins are authorised, fixed in 10; 11 and 12 keep it). Unknown versions (a newer server's)
# are tried and fall back to invites when the server refuses.
RESTRICTED_VERSIONS = frozenset({"8", "9", "10", "11", "12"})


def supports_restricted(room_version: str) -> bool:
    """Whether rooms of this version can be joined by the members of another room."""
    if room_version in RESTRICTED_VERSIONS:
        return True
    return not room_version.isdigit() or int(room_version) > 12  # a later one: try it


def restricted_join_rule(allow_room: str) -> dict[str, Any]:
    """The join rule of a room that the members joined to `allow_room` may join without an
    invite (their own server asks ours, where the bot has the power to invite)."""
    allow = [{"type": "m.room_membership", "room_id": allow_room}]
    return _state("m.room.join_rules", {"join_rule": "restricted", "allow": allow})


def allow_room_of(spec: dict[str, Any]) -> str | None:
    """The room whose members may join a room made from `spec`, or None (invite-only)."""
    for state in spec.get("initial_state", []):
        content = state.get("content", {})
        if state.get("type") == "m.room.join_rules" and content.get("join_rule") == "restricted":
            for rule in content.get("allow", []):
                if rule.get("type") == "m.room_membership":
                    return str(rule.get("room_id"))
    return None


def invite_only(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` as an invite-only room (the preset's join rule): for a server or room version
    that refused the restricted one."""
    state = [s for s in spec.get("initial_state", []) if s.get("type") != "m.room.join_rules"]
    return {**spec, "initial_state": state}
