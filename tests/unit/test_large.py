"""A large group under default rate limits (issue 25), the fast layer.

Request rooms are `restricted` to the members of the main room, so members join them without
an invite; only who cannot is invited (servers configured as unable, roster members not in
the main room, everyone when the room came out invite-only), and the log says who and why.
The main room's membership is the roster: a removed member is kicked from it. Only the
roster counts, whoever joins. The real-homeserver tests are in
tests/integration/test_large.py."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.domain.positions import Position
from bot.matrix.gateway import GatewayError
from bot.matrix.rooms import allow_room_of, invite_only, supports_restricted
from bot.services.outbox import INVITE_ABSENT, Doorbell, OutboxSender
from storage.repo import OutboxItem, Repository
from tests.unit.test_engine import (
    ALICE,
    BOB,
    CAROL,
    CHAIR,
    DAVE,
    ERIN,
    MAIN,
    MEMBERS,
    ROOM,
    World,
    make_world,
)


@pytest.fixture
async def restricted(tmp_path: Path) -> AsyncIterator[World]:
    """A world whose request rooms are restricted to the main room's members."""
    w = await make_world(tmp_path / "db.sqlite", allow_room=MAIN)
    try:
        yield w
    finally:
        await w.db.close()


async def _sent(w: World, item: OutboxItem, result: str) -> None:
    """Play the outbox sender's part for one item."""
    async with w.db.transaction() as tx:
        await w.services.hooks.on_sent(Repository(tx), item, result, w.clock.now_ms())
        await tx.execute("UPDATE outbox SET state = 'sent' WHERE id = ?", (item.id,))


async def _absent_row(w: World) -> OutboxItem:
    [row] = [i for i in await w.pending() if i.op == INVITE_ABSENT]
    return row


def _invites(items: list[OutboxItem]) -> list[str]:
    return sorted(i.payload["user_id"] for i in items if i.op == "invite")


async def test_large_request_room_is_restricted_to_the_main_room(restricted: World) -> None:
    w = restricted
    await w.open_request()
    create = await _created(w)
    assert allow_room_of(create.payload) == MAIN
    rules = [s for s in create.payload["initial_state"] if s["type"] == "m.room.join_rules"]
    assert rules[0]["content"] == {
        "join_rule": "restricted",
        "allow": [{"type": "m.room_membership", "room_id": MAIN}],
    }
    assert create.payload["invite"] == []  # nobody rides on createRoom: they join themselves
    pending = await w.pending()
    assert _invites(pending) == []  # no invite yet: one read of the main room decides
    row = await _absent_row(w)
    assert sorted(row.payload["users"]) == sorted([*MEMBERS, CHAIR])
    assert row.payload["allow_room"] == MAIN
    # One announcement in the main room, with the link members join from.
    [announcement] = [
        i
        for i in await w.messages()
        if i.room_id == MAIN and i.payload["consensus_bot"].get("event") == "opened"
    ]
    assert f"https://matrix.to/#/{ROOM}?via=x" in announcement.payload["body"]
    # The card and the ballot are posted in the request room as before.
    kinds = {i.payload["consensus_bot"]["kind"] for i in await w.messages() if i.room_id is None}
    assert "request_card" in kinds
    assert (await w.request()).ballot_event_id is not None


async def _created(w: World) -> OutboxItem:
    item_id = await w.scalar("SELECT MAX(id) FROM outbox WHERE op = 'create_room'")
    return await _item(w, int(item_id))


async def _item(w: World, item_id: int) -> OutboxItem:
    async with w.db.transaction() as tx:
        await tx.execute("UPDATE outbox SET state = 'pending' WHERE id = ?", (item_id,))
        items = await Repository(tx).pending_outbox(10_000)
        await tx.execute("UPDATE outbox SET state = 'sent' WHERE id = ?", (item_id,))
    return next(i for i in items if i.id == item_id)


async def test_large_only_members_absent_from_the_main_room_are_invited(
    restricted: World, caplog: pytest.LogCaptureFixture
) -> None:
    w = restricted
    await w.open_request()
    row = await _absent_row(w)
    joined = [ALICE, BOB, CHAIR, "@bot:x", "@observer:x"]
    caplog.set_level(logging.INFO)
    await _sent(w, row, json.dumps({"join_rule": "restricted", "joined": joined}))
    assert _invites(await w.pending()) == sorted([CAROL, DAVE])
    assert "not joined to the main room" in caplog.text
    # Someone in the main room who is not on the roster could join: the operator is told.
    assert "@observer:x" in caplog.text
    assert "not on the roster" in caplog.text


async def test_large_an_invite_only_room_invites_everyone(restricted: World) -> None:
    """The room came out invite-only (the server refused the restricted rule): the read
    of its join rule says so, and every member is invited."""
    w = restricted
    await w.open_request()
    row = await _absent_row(w)
    await _sent(w, row, json.dumps({"join_rule": "invite", "joined": [ALICE, BOB]}))
    assert _invites(await w.pending()) == sorted([*MEMBERS, CHAIR])


async def test_large_unreadable_main_room_invites_everyone(restricted: World) -> None:
    w = restricted
    await w.open_request()
    row = await _absent_row(w)
    async with w.db.transaction() as tx:
        await w.services.hooks.on_failed(Repository(tx), row, "boom", w.clock.now_ms())
    assert _invites(await w.pending()) == sorted([*MEMBERS, CHAIR])


async def test_large_invite_servers_are_invited_directly(tmp_path: Path) -> None:
    w = await make_world(
        tmp_path / "db.sqlite", allow_room=MAIN, invite_servers=frozenset({"old.example"})
    )
    try:
        async with w.db.transaction() as tx:
            await Repository(tx).seed_member("main", "@olga:old.example", "academia", "europe", 0)
        await w.open_request()
        create = await _created(w)
        assert create.payload["invite"] == ["@olga:old.example"]  # rides on createRoom
        row = await _absent_row(w)
        assert "@olga:old.example" not in row.payload["users"]
        assert ALICE in row.payload["users"]
    finally:
        await w.db.close()


async def test_large_a_removed_member_leaves_the_main_room(restricted: World) -> None:
    """The main room's members may join request rooms: its membership is the roster."""
    w = restricted
    await w.apply(w.command(CHAIR, f"!cb member remove {BOB}", room=MAIN))
    kicks = [(i.room_id, i.payload["user_id"]) for i in await w.pending() if i.op == "kick"]
    assert (MAIN, BOB) in kicks
    await w.apply(
        w.command(CHAIR, "!cb member add @new:y --stakeholder academia --region europe", room=MAIN)
    )
    assert (MAIN, "@new:y") in [
        (i.room_id, i.payload["user_id"]) for i in await w.pending() if i.op == "invite"
    ]


async def test_large_joiners_off_the_roster_do_not_count(restricted: World) -> None:
    """Anyone who got into a restricted room (an observer of the main room) can react, but
    only the roster counts."""
    w = restricted
    await w.open_request()
    await w.apply(w.reaction("@observer:x", "👍"), w.reaction(ALICE, "👍"))
    positions = await w.positions()
    assert positions.get(ALICE) is Position.SUPPORT
    assert "@observer:x" not in positions
    assert ERIN not in positions


def test_large_room_versions_that_can_restrict() -> None:
    assert not supports_restricted("6")
    assert not supports_restricted("7")
    assert all(supports_restricted(v) for v in ("8", "9", "10", "11", "12", "13"))
    assert supports_restricted("org.example.custom")  # unknown: tried, falls back on refusal
    spec: dict[str, Any] = {"initial_state": [{"type": "m.room.join_rules", "content": {}}]}
    assert invite_only(spec)["initial_state"] == []


class _RefusesRestricted:
    """A homeserver whose room version cannot do restricted rooms."""

    user_id = "@bot:x"

    def __init__(self) -> None:
        self.created: list[list[dict[str, Any]]] = []

    async def create_room(self, **spec: Any) -> str:
        self.created.append(spec["initial_state"])
        if any(s["type"] == "m.room.join_rules" for s in spec["initial_state"]):
            raise GatewayError(
                "join rule restricted not supported", errcode="M_UNKNOWN", status=400
            )
        return ROOM

    async def encrypts(self, room_id: str) -> bool:
        return False

    async def send_message(self, room_id: str, content: Any, txn_id: str, t: str = "") -> str:
        return f"$e{txn_id}"

    async def put_state(self, *args: Any) -> None:
        return None

    async def invite(self, room_id: str, user_id: str) -> None:
        return None

    async def state_event(self, room_id: str, event_type: str, state_key: str = "") -> Any:
        return {"join_rule": "invite"}

    async def joined_members(self, room_id: str) -> set[str]:
        return {ALICE}


async def test_large_a_refused_restricted_room_falls_back_to_invites(
    restricted: World, caplog: pytest.LogCaptureFixture
) -> None:
    w = restricted
    filing = w.command(CHAIR, f"!cb request {ERIN} --stakeholder academia --region europe Hi")
    await w.apply(replace(filing, room_id=MAIN))
    gateway = _RefusesRestricted()
    sender = OutboxSender(w.db, gateway, w.services.hooks, w.clock, Doorbell())  # type: ignore[arg-type]
    caplog.set_level(logging.INFO)
    await sender.drain()
    assert len(gateway.created) == 2  # restricted refused, then invite-only
    assert "making it invite-only" in caplog.text
    req = await w.request()
    assert req.room_id == ROOM
    # Every member was invited (the old path), none is left pending.
    assert [i for i in await w.pending() if i.op == "invite"] == []
    rows = await w.scalar("SELECT COUNT(*) FROM outbox WHERE op = 'invite' AND state = 'sent'")
    assert rows == len(MEMBERS) + 1


# ---- item 2: notices that scale -----------------------------------------------------------


async def test_large_reminder_is_one_message_in_the_main_room(tmp_path: Path) -> None:
    from tests.unit.test_calendar import HOUR, FakeTimers, reschedule

    w = await make_world(tmp_path / "db.sqlite")
    try:
        await w.open_request()
        timers = FakeTimers()
        w.services.groups.first.calendar.timers = timers  # type: ignore[assignment]
        await w.apply(w.reaction(ALICE, "👍"))
        await reschedule(w, reminders_ms=(24 * HOUR,), allow_room=MAIN)
        [job] = list(timers.due("req:1:remind:"))
        await timers.fire(job)
        await timers.fire(job)  # a double wake-up sends nothing twice
        [reminder] = await w.messages("reminder")
        assert reminder.room_id == MAIN  # where every member is; no direct message
        assert sorted(reminder.payload["m.mentions"]["user_ids"]) == sorted([BOB, CAROL, DAVE])
        body, html_ = reminder.payload["body"], reminder.payload["formatted_body"]
        assert all(m in body for m in (BOB, CAROL, DAVE))
        assert ALICE not in body  # she took a position
        assert f'href="https://matrix.to/#/{BOB}"' in html_  # a pill
        assert "!cb support --request 1" in body
        assert f"https://matrix.to/#/{ROOM}?via=x" in body
    finally:
        await w.db.close()


def test_large_reminder_for_500_is_capped_and_mentions_everyone() -> None:
    from bot.i18n.catalog import english
    from bot.services.reach import MAX_NAMED, group_reminders, mention_chunks
    from tests.unit.test_render import make_request

    req = make_request()
    members = [f"@member{i:03d}:server{i % 7}.example.org" for i in range(500)]
    [msg] = group_reminders(
        req, members, "Mon 10:00", "1 day", "!cb", "https://matrix.to/#/!r", english()
    )
    content = msg.content()
    assert len(content["m.mentions"]["user_ids"]) == 500
    assert f"and {500 - MAX_NAMED} more" in content["body"]
    assert content["body"].count("@member") == MAX_NAMED
    assert len(json.dumps(content).encode()) < 60_000  # under the homeserver's 64 KiB
    # Thousands: split so that every event stays under the limit, nobody left out.
    many = [f"@member{i:05d}:server{i % 7}.example.org" for i in range(5_000)]
    chunks = mention_chunks(many)
    assert sum(len(c) for c in chunks) == 5_000
    for msg in group_reminders(req, many, "Mon", "1 day", "!cb", "", english()):
        assert len(json.dumps(msg.content()).encode()) < 60_000


async def test_large_an_edit_tells_positioned_members_in_one_message(restricted: World) -> None:
    w = restricted
    await w.open_request()
    await w.apply(w.reaction(ALICE, "👍"), w.reaction(BOB, "👍"))
    await w.apply(w.command(CHAIR, "!cb edit 1 Erin maintains two validators."))
    edited = [i for i in await w.messages() if i.payload["consensus_bot"].get("event") == "edited"]
    assert {i.room_id for i in edited} == {None, MAIN}  # the request room and the main room
    assert not [i for i in edited if (i.room_id or "").startswith("dm:")]
    [main] = [i for i in edited if i.room_id == MAIN]
    assert sorted(main.payload["m.mentions"]["user_ids"]) == sorted([ALICE, BOB])


def test_large_straggler_invites_never_hold_up_a_draft() -> None:
    from bot.services.outbox import STRAGGLER, pick, urgent

    stragglers = [
        OutboxItem(n, f"t{n}", "invite", 1, None, None, STRAGGLER, {"user_id": f"@u{n}:x"}, 0)
        for n in range(1, 51)
    ]
    draft = {"consensus_bot": {"kind": "summary"}}
    later = OutboxItem(99, "t99", "message", 1, None, None, "draft", draft, 0)
    assert not any(urgent(i) for i in stragglers)
    assert pick([*stragglers, later], 0) is later  # the draft goes first
    # ... and the stragglers still go: one in five while urgent items wait, all when none.
    assert pick([*stragglers, later], 4) is stragglers[0]
    assert pick(stragglers, 0) is stragglers[0]
