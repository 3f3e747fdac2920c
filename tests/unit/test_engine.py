"""Service scenarios: the services over a real database, a manual clock and no network.

The `world` fixture runs each scenario on SQLite and on a throwaway PostgreSQL database (see
tests/conftest.py); `make_world(path)` alone gives a SQLite one.

Events are decoded values built by hand and applied with `Batches.apply_batch`, exactly as the
sync loop does. What the bot would send is read from the outbox. A request gets its room and
ballot the way the outbox sender would record them: `SentHooks.on_sent` for the queued
`create_room` and for the ballot message.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.app import Services, build_services
from bot.config import Config
from bot.domain.counting import Ballot, Redaction, count
from bot.domain.errors import Refusal
from bot.domain.ledger import PositionInput, Source
from bot.domain.lifecycle import Outcome, RequestState
from bot.domain.objections import ObjectionState
from bot.domain.positions import Position, position_for_reaction
from bot.domain.sense import Proposal, Voter
from bot.matrix.events import (
    CommandText,
    EncryptionEnabled,
    InboundEvent,
    LeftRoom,
    ReactionAdded,
    Redacted,
    SyncBatch,
)
from bot.services.batches import SYNC_TOKEN, BatchResult
from bot.services.clock import Clock
from bot.services.deadlines import Timers
from bot.services.outbox import Doorbell
from bot.services.settings import Settings
from bot.services.syncer import Syncer
from commands import COMMANDS
from storage.backend import Backend
from storage.database import Database
from storage.keys import Keys
from storage.postgres import PostgresDatabase
from storage.repo import OutboxItem, Repository

BOT = "@bot:x"
CHAIR = "@chair:x"
ALICE, BOB, CAROL, DAVE = "@alice:x", "@bob:x", "@carol:x", "@dave:x"
MEMBERS = {
    ALICE: ("academia", "europe"),
    BOB: ("civil-society", "africa"),
    CAROL: ("technical-community", "europe"),
    DAVE: ("government", "americas"),
}
ERIN = "@erin:x"  # the applicant
MALLORY = "@mallory:x"  # not on the roster
MAIN = "!main:x"
ROOM = "!req1:x"
BALLOT = "$ballot1"
T0 = 1_800_000_000_000
DAY = 86_400_000


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def now_ms(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


# What the engine tests run with, written as an operator would write the config: only the
# values that differ from the config's defaults are given.
TEST_CONFIG: dict[str, Any] = {
    "matrix": {
        "homeserver": "https://x",
        "user_id": BOT,
        "password": "unused",
        "command_prefix": "!cb",
        "encryption": "off",  # the unit layer has no crypto store (test_held_events turns it on)
    },
    # Invite-only request rooms: the scenarios were written for them (restricted rooms,
    # issue 25, have their own tests in test_large.py with `allow_room=MAIN`).
    "group": {
        "name": "Test Group",
        "main_room": MAIN,
        "chairs": [CHAIR],
        "request_rooms": "invite",
    },
    "process": {"reminders": [], "quorum": 0.5},
    "digest": {"schedule": ""},
}
TEST_KEYS = Keys(hums=b"test hum key", markers=b"test marker key")


def make_settings(**overrides: Any) -> Settings:
    """`Settings.from_config` over `TEST_CONFIG`, then `overrides` (values the config cannot
    express, such as no minimum deadline, or a test's own)."""
    config = Config.model_validate(
        TEST_CONFIG, context={"base_dir": Path("/nonexistent"), "env": {}}
    )
    settings = Settings.from_config(
        config, main_room_id=MAIN, keys=TEST_KEYS, space_id=None, bot_needs_power_entry=False
    )
    # Scenarios close ballots at once; the minimum deadline has its own tests.
    return replace(settings, **{"min_deadline_ms": 0, **overrides})


class World:
    """The services with their database and clock, and helpers to make events and read results."""

    def __init__(self, services: Services, db: Backend, clock: ManualClock) -> None:
        self.services = services
        self.db = db
        self.clock = clock
        self._seq = itertools.count(1)

    # --- events -------------------------------------------------------------------------

    def _next(self, ts: int | None) -> tuple[str, int]:
        n = next(self._seq)
        return f"$ev{n:04d}", ts if ts is not None else T0 + n * 1_000

    def reaction(
        self,
        sender: str,
        key: str,
        *,
        target: str = BALLOT,
        room: str = ROOM,
        ts: int | None = None,
    ) -> ReactionAdded:
        event_id, ts = self._next(ts)
        return ReactionAdded(room, event_id, sender, ts, target, key)

    def redaction(
        self, sender: str, redacts: str, *, room: str = ROOM, ts: int | None = None
    ) -> Redacted:
        event_id, ts = self._next(ts)
        return Redacted(room, event_id, sender, ts, redacts)

    def command(
        self, sender: str, body: str, *, room: str = ROOM, ts: int | None = None
    ) -> CommandText:
        event_id, ts = self._next(ts)
        return CommandText(room, event_id, sender, ts, body)

    async def apply(self, *events: InboundEvent, next_batch: str = "") -> BatchResult:
        return await self.services.batches.apply_batch(
            SyncBatch(next_batch=next_batch, events=list(events))
        )

    # --- requests -----------------------------------------------------------------------

    async def open_request(
        self,
        room: str = ROOM,
        ballot: str = BALLOT,
        statement: str = "Erin wants to help.",
        applicant: str = ERIN,
    ) -> int:
        """File a request from the main room and play the outbox sender's part."""
        filing = self.command(
            CHAIR,
            f"!cb request {applicant} --stakeholder academia --region europe {statement}",
            room=MAIN,
        )
        await self.apply(filing)
        now = self.clock.now_ms()
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            req = await repo.request_by_filing(filing.event_id)
            assert req is not None
            assert req.state is RequestState.PENDING
            create = [
                i
                for i in await repo.pending_outbox(10_000)
                if i.op == "create_room" and i.request_id == req.id
            ]
            assert len(create) == 1
            await repo.outbox_done(create[0].id, room, now)
            await self.services.hooks.on_sent(repo, create[0], room, now)
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            ballots = [
                i
                for i in await repo.pending_outbox(10_000)
                if i.purpose == "ballot" and i.request_id == req.id
            ]
            assert len(ballots) == 1
            await repo.outbox_done(ballots[0].id, ballot, now)
            await self.services.hooks.on_sent(repo, ballots[0], ballot, now)
            opened = await repo.request(req.id)
            assert opened is not None
            assert opened.state is RequestState.OPEN
            assert (opened.room_id, opened.ballot_event_id) == (room, ballot)
        return req.id

    # --- reading ------------------------------------------------------------------------

    async def pending(self) -> list[OutboxItem]:
        async with self.db.transaction() as tx:
            return await Repository(tx).pending_outbox(100_000)

    async def messages(self, kind: str | None = None) -> list[OutboxItem]:
        return [
            i
            for i in await self.pending()
            if i.op == "message" and (kind is None or i.payload["consensus_bot"]["kind"] == kind)
        ]

    async def replies_to(self, event_id: str) -> list[dict[str, Any]]:
        return [
            i.payload
            for i in await self.messages()
            if i.payload.get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id")
            == event_id
        ]

    async def reply_to(self, event_id: str) -> dict[str, Any]:
        replies = await self.replies_to(event_id)
        assert len(replies) == 1, replies
        return replies[0]

    async def acks(self, event_id: str) -> list[str]:
        return [
            i.payload["key"]
            for i in await self.pending()
            if i.op == "reaction" and i.target == event_id
        ]

    async def positions(self, request_id: int = 1) -> dict[str, Position | None]:
        return {m: i.position for m, i in (await self.current(request_id)).items()}

    async def current(self, request_id: int = 1) -> dict[str, PositionInput]:
        """Current inputs per member, as the bot's one counting rule sees them."""
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            req = await repo.request(request_id)
            assert req is not None
            return dict((await self.services.groups.first.ballots.count(repo, req)).current)

    async def inputs(self, request_id: int = 1) -> list[PositionInput]:
        async with self.db.transaction() as tx:
            return await Repository(tx).inputs(request_id)

    async def objections(self, request_id: int = 1) -> list[Any]:
        async with self.db.transaction() as tx:
            return await Repository(tx).objections(request_id)

    async def request(self, request_id: int = 1) -> Any:
        async with self.db.transaction() as tx:
            return await Repository(tx).request(request_id)

    async def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        async with self.db.transaction() as tx:
            return await tx.fetchval(sql, params)

    async def ledger_positions(self, request_id: int = 1) -> dict[str, Position | None]:
        """What the pure rule says over every raw row stored for the request."""
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            req = await repo.request(request_id)
            rows = await repo.rows(request_id)
        assert req is not None
        ballot = Ballot(req.room_id, req.closed_at)
        tally = count(ballot, rows.snapshot, rows.removed, rows.inputs, rows.redactions)
        return {m: i.position for m, i in tally.current.items()}


async def make_world(where: Path | Backend, **overrides: Any) -> World:
    """A world on a SQLite file at `where`, or on the (unopened) database given."""
    db = Database(where) if isinstance(where, Path) else where
    await db.open()
    clock = ManualClock()
    async with db.transaction() as tx:
        repo = Repository(tx)
        for user_id, (stakeholder, region) in MEMBERS.items():
            await repo.seed_member("main", user_id, stakeholder, region, T0)
    return World(make_services(make_settings(**overrides), db, clock), db, clock)


def make_services(
    settings: Settings, db: Backend, clock: Clock, timers: Timers | None = None
) -> Services:
    """The services wired by bot/app.py, without a homeserver or scheduler."""
    return build_services(settings, db, clock, Doorbell(), timers=timers)


def wire_syncer(w: World, gateway: Any, **options: Any) -> Syncer:
    """The sync loop over the world's services, as bot/app.py wires it (with a scripted
    gateway and no outbox sender to wake)."""
    s = w.services
    return Syncer(
        gateway, s.settings, s.batches, s.reconciler, s.dms, s.invites, lambda: None, **options
    )


def fresh_database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Backend:
    """An unopened, empty database of the backend: a file in tmp_path, or a new PostgreSQL
    database on the session's cluster."""
    if backend == "postgresql":
        return PostgresDatabase(request.getfixturevalue("pg_dsn"))
    return Database(tmp_path / "bot.db")


@pytest.fixture
async def world(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[World]:
    w = await make_world(fresh_database(backend, tmp_path, request))
    try:
        yield w
    finally:
        await w.db.close()


@pytest.fixture
async def opened(world: World) -> World:
    """A world with request #1 open: room ROOM, ballot BALLOT."""
    assert await world.open_request() == 1
    return world


# ---- opening a request --------------------------------------------------------------------


async def test_filing_and_opening_a_request(world: World) -> None:
    filing = world.command(CHAIR, f"!cb request {ERIN} Erin wants to help.", room=MAIN)
    await world.apply(filing)
    assert await world.acks(filing.event_id) == ["✅"]
    reply = await world.reply_to(filing.event_id)
    assert reply["consensus_bot"] == {"kind": "reply", "request": 1, "filed": 1}
    create = [i for i in await world.pending() if i.op == "create_room"]
    assert len(create) == 1
    spec = create[0].payload
    state_types = {s["type"]: s["content"] for s in spec["initial_state"]}
    assert state_types["m.room.guest_access"] == {"guest_access": "forbidden"}
    assert spec["power_levels"]["state_default"] == 100

    async with world.db.transaction() as tx:
        repo = Repository(tx)
        await world.services.hooks.on_sent(repo, create[0], ROOM, T0)
    req = await world.request()
    assert req.state is RequestState.OPEN
    assert req.room_id == ROOM
    kinds = [i.payload["consensus_bot"]["kind"] for i in await world.messages()]
    assert "request_card" in kinds
    assert "ballot" in kinds
    # Up to ten invitees ride on createRoom (one rate-limited request); the rest are
    # invited one by one; everyone exactly once.
    invites = [i.payload["user_id"] for i in await world.pending() if i.op == "invite"]
    assert 0 < len(spec["invite"]) <= 10
    assert sorted(spec["invite"] + invites) == sorted([*MEMBERS, CHAIR])
    # No reactions are seeded (every counter members see is real); the live tally is posted.
    seeded = [i for i in await world.pending() if i.op == "reaction" and i.target == "ballot"]
    assert seeded == []
    [tally] = [i for i in await world.messages("tally")]
    assert tally.purpose == "tally"
    assert tally.payload["consensus_bot"]["participated"] == 0
    announcement = [i for i in await world.messages() if i.room_id == MAIN]
    assert announcement
    assert announcement[-1].payload["consensus_bot"]["event"] == "opened"
    # Recording the room twice (a resend) changes nothing.
    before = len(await world.pending())
    async with world.db.transaction() as tx:
        await world.services.hooks.on_sent(Repository(tx), create[0], ROOM, T0)
    assert len(await world.pending()) == before


async def test_a_deadline_too_soon_is_refused(tmp_path: Path) -> None:
    world = await make_world(tmp_path / "bot.db", min_deadline_ms=72 * 3_600_000)
    filing = world.command(CHAIR, f"!cb request {ERIN} --deadline 1h Statement.", room=MAIN)
    await world.apply(filing)
    assert await world.acks(filing.event_id) == ["❌"]
    assert "at least 3d" in (await world.reply_to(filing.event_id))["body"]
    assert await world.request() is None
    await world.db.close()


# ---- positions ----------------------------------------------------------------------------


async def test_reactions_and_their_redactions_become_positions(opened: World) -> None:
    w = opened
    a = w.reaction(ALICE, "👍🏽")
    b = w.reaction(BOB, "👌")
    c = w.reaction(CAROL, "🤔")
    d = w.reaction(DAVE, "🤐")
    await w.apply(a, b, c, d)
    assert await w.positions() == {
        ALICE: Position.SUPPORT,
        BOB: Position.NO_OBJECTION,
        CAROL: Position.CONCERN,
        DAVE: Position.ABSTAIN,
    }
    # Alice changes her mind; then removes the new reaction: the old one counts again.
    a2 = w.reaction(ALICE, "🤔")
    await w.apply(a2)
    assert (await w.positions())[ALICE] is Position.CONCERN
    await w.apply(w.redaction(ALICE, a2.event_id))
    assert (await w.positions())[ALICE] is Position.SUPPORT
    # Removing every reaction retracts the position.
    await w.apply(w.redaction(ALICE, a.event_id), w.redaction(DAVE, d.event_id))
    assert await w.positions() == {BOB: Position.NO_OBJECTION, CAROL: Position.CONCERN}
    assert len(await w.inputs()) == 5  # the history is kept
    assert await w.positions() == await w.ledger_positions()


async def test_a_redaction_before_its_reaction_still_retracts_it(opened: World) -> None:
    w = opened
    reaction = w.reaction(ALICE, "👍")
    await w.apply(w.redaction(ALICE, reaction.event_id))
    await w.apply(reaction)
    assert await w.positions() == {}


async def test_reactions_from_outside_the_roster_are_ignored(opened: World) -> None:
    w = opened
    result = await w.apply(w.reaction(MALLORY, "👎"), w.reaction(CHAIR, "👍"))
    assert result.applied == 2
    assert await w.positions() == {}
    assert await w.inputs() == []
    assert await w.objections() == []


async def test_a_member_added_after_opening_is_not_counted(opened: World) -> None:
    w = opened
    add = w.command(
        CHAIR, "!cb member add @late:x --stakeholder academia --country Kenya", room=MAIN
    )
    await w.apply(add)
    assert await w.acks(add.event_id) == ["✅"]
    await w.apply(w.reaction("@late:x", "👍"))
    assert await w.positions() == {}


async def test_reactions_elsewhere_are_ignored(opened: World) -> None:
    w = opened
    await w.apply(
        w.reaction(ALICE, "👍", target="$some-other-event"),
        w.reaction(BOB, "👍", room=MAIN),  # the ballot's ID, but another room
        w.reaction(CAROL, "🎉"),  # not a ballot reaction
        w.reaction(DAVE, "✅", target="$ballot-of-nothing"),
    )
    assert await w.positions() == {}
    assert await w.inputs() == []


async def test_replaying_a_batch_changes_nothing(opened: World) -> None:
    w = opened
    batch: list[InboundEvent] = [
        w.reaction(ALICE, "👍"),
        w.reaction(BOB, "👎"),
        w.command(CAROL, "!cb concern Too vague."),
        w.command(DAVE, "!cb suport"),
    ]
    first = await w.apply(*batch, next_batch="s1")
    assert first.applied == 4
    assert first.queued > 0
    outbox = await w.pending()
    inputs = await w.inputs()
    objections = await w.objections()
    positions = await w.positions()
    again = await w.apply(*batch, next_batch="s1")
    assert (again.applied, again.duplicates, again.queued) == (0, 4, 0)
    assert await w.pending() == outbox
    assert await w.inputs() == inputs
    assert await w.objections() == objections
    assert await w.positions() == positions


async def test_a_duplicate_inside_one_batch_is_applied_once(opened: World) -> None:
    w = opened
    objection = w.reaction(BOB, "👎")
    result = await w.apply(objection, objection)
    assert (result.applied, result.duplicates) == (1, 1)
    assert len(await w.objections()) == 1
    assert len(await w.replies_to(objection.event_id)) == 1


# ---- objections ---------------------------------------------------------------------------


async def test_a_bare_objection_is_recorded_and_the_reason_asked_for(opened: World) -> None:
    w = opened
    thumbs_down = w.reaction(BOB, "👎")
    await w.apply(thumbs_down)
    [objection] = await w.objections()
    assert (objection.member, objection.state, objection.reason) == (
        BOB,
        ObjectionState.OPEN,
        None,
    )
    ask = await w.reply_to(thumbs_down.event_id)
    assert "!cb object REASON" in ask["body"]
    assert ask["m.mentions"] == {"user_ids": [BOB]}
    assert ask["msgtype"] == "m.notice"
    assert ask["consensus_bot"]["kind"] == "reply"
    assert ask["consensus_bot"]["request"] == 1
    assert ask["consensus_bot"]["objections"] == [
        {"id": objection.id, "member": BOB, "state": "open"}
    ]


async def test_object_with_a_reason_completes_the_same_objection(opened: World) -> None:
    w = opened
    await w.apply(w.reaction(BOB, "✋️"))
    because = w.command(BOB, "!cb object They have not agreed to the principles.")
    await w.apply(because)
    assert await w.acks(because.event_id) == ["✅"]
    [objection] = await w.objections()
    assert objection.state is ObjectionState.OPEN
    assert objection.reason == "They have not agreed to the principles."
    reply = await w.reply_to(because.event_id)
    assert f"Objection #{objection.id} recorded" in reply["body"]
    assert reply["consensus_bot"]["objections"] == [
        {"id": objection.id, "member": BOB, "state": "open"}
    ]
    assert await w.replies_to(because.event_id) == [reply]  # no second "why?" either


async def test_object_without_a_reason_is_refused(opened: World) -> None:
    w = opened
    bare = w.command(BOB, "!cb object")
    await w.apply(bare)
    assert await w.acks(bare.event_id) == ["❌"]
    assert "Usage:" in (await w.reply_to(bare.event_id))["body"]
    assert await w.objections() == []


@pytest.mark.parametrize("how", ["reaction", "command", "withdraw", "redaction"])
async def test_moving_away_from_object_withdraws_the_objection(opened: World, how: str) -> None:
    w = opened
    thumbs_down = w.reaction(BOB, "👎")
    await w.apply(thumbs_down)
    changes: dict[str, InboundEvent] = {
        "reaction": w.reaction(BOB, "👍"),
        "command": w.command(BOB, "!cb support Convinced now."),
        "withdraw": w.command(BOB, "!cb withdraw"),
        "redaction": w.redaction(BOB, thumbs_down.event_id),
    }
    change = changes[how]
    await w.apply(change)
    [objection] = await w.objections()
    assert objection.state is ObjectionState.WITHDRAWN
    assert objection.disposed_by == BOB
    expected = {} if how in ("withdraw", "redaction") else {BOB: Position.SUPPORT}
    assert await w.positions() == expected


async def test_objecting_again_after_withdrawing_opens_a_new_objection(opened: World) -> None:
    w = opened
    await w.apply(w.reaction(BOB, "👎"))
    await w.apply(w.reaction(BOB, "👍"))
    await w.apply(w.command(BOB, "!cb object Changed my mind again."))
    first, second = await w.objections()
    assert first.state is ObjectionState.WITHDRAWN
    assert second.state is ObjectionState.OPEN
    assert second.reason == "Changed my mind again."


async def test_a_disposed_objection_stays_disposed_when_the_position_does_not_change(
    opened: World,
) -> None:
    w = opened
    first = w.reaction(BOB, "👎")
    second = w.reaction(BOB, "✋")
    await w.apply(first, second)
    [objection] = await w.objections()
    await w.apply(
        w.command(
            CHAIR,
            f"!cb dispose {objection.id} addressed Answered on the list: the contact exists now.",
        )
    )
    await w.apply(w.redaction(BOB, second.event_id))  # bob tidies up his duplicate reaction
    assert await w.positions() == {BOB: Position.OBJECT}  # his position is unchanged
    assert [o.state for o in await w.objections()] == [ObjectionState.ADDRESSED]


# ---- commands -----------------------------------------------------------------------------


async def test_a_member_cannot_confirm(opened: World) -> None:
    w = opened
    attempt = w.command(DAVE, "!cb confirm")
    await w.apply(attempt)
    assert await w.acks(attempt.event_id) == ["❌"]
    reply = await w.reply_to(attempt.event_id)
    assert "only a chair can" in reply["body"]
    assert reply["consensus_bot"]["kind"] == "reply"
    assert (await w.request()).state is RequestState.OPEN


async def test_an_unknown_command_gets_a_suggestion(opened: World) -> None:
    w = opened
    typo = w.command(ALICE, "!cb suport")
    await w.apply(typo)
    assert await w.acks(typo.event_id) == ["❌"]
    assert "Did you mean !cb support" in (await w.reply_to(typo.event_id))["body"]
    assert await w.positions() == {}


async def test_an_unknown_command_suggests_once(opened: World) -> None:
    w = opened
    typo = w.command(ALICE, "!cb suport")
    await w.apply(typo)
    body = (await w.reply_to(typo.event_id))["body"]
    assert body.count("Did you mean") == 1, body
    assert body.count("help for the list") == 1, body


async def test_a_mistyped_option_is_not_suggested_as_a_command(world: World) -> None:
    filing = world.command(CHAIR, f"!cb request {ERIN} --deadlin 14d Statement.", room=MAIN)
    await world.apply(filing)
    body = (await world.reply_to(filing.event_id))["body"]
    assert "--deadline" in body
    assert "!cb --" not in body, body


async def test_missing_arguments_get_the_usage(world: World) -> None:
    bad = world.command(CHAIR, "!cb request", room=MAIN)
    await world.apply(bad)
    assert await world.acks(bad.event_id) == ["❌"]
    reply = await world.reply_to(bad.event_id)
    assert "Usage: !cb request" in reply["body"]
    assert reply["msgtype"] == "m.notice"
    assert await world.request() is None


async def test_text_without_the_prefix_is_not_answered(opened: World) -> None:
    w = opened
    chatter = w.command(ALICE, "!cbx hello")
    await w.apply(chatter)
    assert await w.acks(chatter.event_id) == []
    assert await w.replies_to(chatter.event_id) == []


async def test_a_command_in_the_wrong_place_says_where(opened: World) -> None:
    w = opened
    attempt = w.command(CHAIR, "!cb close", room=MAIN)
    await w.apply(attempt)
    assert await w.acks(attempt.event_id) == ["❌"]
    assert "a request's room" in (await w.reply_to(attempt.event_id))["body"]
    assert (await w.request()).state is RequestState.OPEN


async def test_positions_by_command_with_reasons_and_recusal(opened: World) -> None:
    w = opened
    await w.apply(
        w.command(ALICE, "!cb support Strong track record."),
        w.command(BOB, "!cb recuse I work with Erin."),
        w.command(CAROL, "!cb no-objection"),
    )
    current = await w.current(1)
    async with w.db.transaction() as tx:
        repo = Repository(tx)
        req = await repo.request(1)
        assert req is not None
        sense = await w.services.groups.first.ballots.sense(repo, req)
    assert current[ALICE].reason == "Strong track record."
    assert current[ALICE].source is Source.COMMAND
    assert current[BOB].position is Position.RECUSE
    assert sense.eligible == 3
    assert sense.participated == 2
    assert sense.recused == (BOB,)
    assert sense.did_not_take_part == (DAVE,)


async def test_a_position_command_in_a_dm_needs_the_request_number(opened: World) -> None:
    w = opened
    dm = "!dm-alice:x"
    await w.services.dms.remember(ALICE, dm)  # alice opened a direct chat with the bot
    without = w.command(ALICE, "!cb support", room=dm)
    with_number = w.command(ALICE, "!cb support --request 1", room=dm)
    await w.apply(without, with_number)
    assert await w.acks(without.event_id) == ["❌"]
    assert "--request" in (await w.reply_to(without.event_id))["body"]
    assert await w.acks(with_number.event_id) == ["✅"]
    assert await w.positions() == {ALICE: Position.SUPPORT}


# ---- closing and deciding -----------------------------------------------------------------


async def test_close_posts_the_draft_with_counts(opened: World) -> None:
    w = opened
    await w.apply(w.reaction(ALICE, "👍"), w.reaction(BOB, "👌"), w.reaction(CAROL, "🤔"))
    w.clock.advance(DAY)
    close = w.command(CHAIR, "!cb close")
    await w.apply(close)
    assert await w.acks(close.event_id) == ["✅"]
    [summary] = await w.messages("summary")
    assert summary.room_id is None  # the request's room
    data = summary.payload["consensus_bot"]
    assert data["request"] == 1
    assert data["counts"] == {
        "support": 1,
        "no-objection": 1,
        "concern": 1,
        "object": 0,
        "abstain": 0,
        "recuse": 0,
    }
    assert data["eligible"] == 4
    assert data["participated"] == 3
    assert data["open_objections"] == 0
    assert data["proposed_outcome"] == "rough-consensus-admit"
    assert data["did_not_take_part"] == [DAVE]
    assert summary.payload["m.mentions"] == {"user_ids": [CHAIR]}
    req = await w.request()
    assert req.state is RequestState.DRAFTED
    assert req.proposal is Proposal.ROUGH_CONSENSUS_ADMIT
    assert req.closed_at == T0 + DAY
    # The ballot is closed: a reaction sent after the close is not counted...
    w.clock.advance(2_000)  # (lateness is judged on the bot's clock)
    await w.apply(w.reaction(DAVE, "👎", ts=T0 + DAY + 1_000))
    assert DAVE not in await w.positions()
    # ...but one sent before the close and seen only now (within the clock-skew window)
    # counts, and the chair gets the draft again (once for the whole batch).
    await w.apply(w.reaction(DAVE, "👌", ts=T0 + DAY - 5_000), w.reaction(ALICE, "✅"))
    assert (await w.positions())[DAVE] == Position.NO_OBJECTION
    # One draft per round: the change is an edit of it (m.replace), whose block is current.
    assert len(await w.messages("summary")) == 1
    [edit] = [i for i in await w.pending() if i.op == "edit" and i.target == "draft"]
    assert edit.target == "draft"
    assert edit.payload["m.new_content"]["consensus_bot"]["participated"] == 4
    assert edit.payload["consensus_bot"]["kind"] == "summary"
    assert "Updated:" in edit.payload["m.new_content"]["body"]
    # Closing twice is refused.
    again = w.command(CHAIR, "!cb close")
    await w.apply(again)
    assert await w.acks(again.event_id) == ["❌"]
    assert "Not now" in (await w.reply_to(again.event_id))["body"]


async def test_confirm_after_disposing_of_the_objection_admits(opened: World) -> None:
    w = opened
    bob_objects = w.reaction(BOB, "👎")
    await w.apply(w.reaction(ALICE, "👍"), bob_objects, w.reaction(CAROL, "👌"))
    await w.apply(w.command(BOB, "!cb object No link to our work."))
    [objection] = await w.objections()

    await w.apply(w.command(CHAIR, "!cb close"))
    [draft] = await w.messages("summary")
    assert draft.payload["consensus_bot"]["proposed_outcome"] == "no-consensus-yet"
    assert draft.payload["consensus_bot"]["open_objections"] == 1
    assert "No link to our work." in draft.payload["body"]

    too_soon = w.command(CHAIR, "!cb confirm")
    await w.apply(too_soon)
    assert await w.acks(too_soon.event_id) == ["❌"]
    assert "objections are still open" in (await w.reply_to(too_soon.event_id))["body"]
    assert (await w.request()).state is RequestState.DRAFTED

    dispose = w.command(
        CHAIR, f"!cb dispose {objection.id} addressed Discussed at length; the charter settles it."
    )
    await w.apply(dispose)
    assert await w.acks(dispose.event_id) == ["✅"]
    reply = await w.reply_to(dispose.event_id)
    assert reply["consensus_bot"]["objections"] == [
        {"id": objection.id, "member": BOB, "state": "addressed"}
    ]

    w.clock.advance(60_000)
    # As many in the rough (bob) as in support (alice): the chair must say why.
    bare = w.command(CHAIR, "!cb confirm")
    await w.apply(bare)
    assert await w.acks(bare.event_id) == ["❌"]
    assert (
        "As many are in the rough as support admitting" in (await w.reply_to(bare.event_id))["body"]
    )
    confirm = w.command(
        CHAIR, "!cb confirm Bob's point about the missing contact was answered: one exists now."
    )
    await w.apply(confirm)
    assert await w.acks(confirm.event_id) == ["✅"]
    outcomes = await w.messages("outcome")
    # The request room, the main room, and the applicant by direct message.
    assert sorted((o.room_id or "request room") for o in outcomes) == [
        MAIN,
        f"dm:{ERIN}",
        "request room",
    ]
    for o in outcomes:
        data = o.payload["consensus_bot"]
        assert data["request"] == 1
        assert data["outcome"] == "admit"
        assert data["decided_by"] == CHAIR
        assert "missing contact was answered" in data["rationale"]
    req = await w.request()
    assert req.state is RequestState.DECIDED
    assert req.outcome is Outcome.ADMIT
    assert req.decided_by == CHAIR
    assert req.decided_at == w.clock.now_ms()
    async with w.db.transaction() as tx:
        repo = Repository(tx)
        erin = await repo.member("main", ERIN)
        sense = await w.services.groups.first.ballots.sense(repo, req)
    assert erin is not None
    assert (erin.active, erin.stakeholder, erin.region) == (True, "academia", "europe")
    assert sense.in_the_rough == (BOB,)
    invites = [i for i in await w.pending() if i.op == "invite" and i.room_id == MAIN]
    assert [i.payload["user_id"] for i in invites] == [ERIN]


async def test_decide_with_a_rationale_and_reopen(opened: World) -> None:
    w = opened
    await w.apply(w.reaction(ALICE, "👍"))
    decide = w.command(CHAIR, "!cb decide decline Not a fit for the group yet, by its charter.")
    await w.apply(decide)
    assert await w.acks(decide.event_id) == ["✅"]
    req = await w.request()
    assert (req.state, req.outcome, req.rationale) == (
        RequestState.DECIDED,
        Outcome.DECLINE,
        "Not a fit for the group yet, by its charter.",
    )
    async with w.db.transaction() as tx:
        assert await Repository(tx).member("main", ERIN) is None  # declined: not admitted
    reopen = w.command(CHAIR, "!cb reopen 7d")
    await w.apply(reopen)
    assert await w.acks(reopen.event_id) == ["✅"]
    req = await w.request()
    assert req.state is RequestState.OPEN
    assert req.outcome is None
    assert req.deadline_at == w.clock.now_ms() + 7 * DAY
    assert await w.positions() == {ALICE: Position.SUPPORT}  # positions so far stay


async def test_a_redaction_while_closed_is_reflected_after_reopen(opened: World) -> None:
    w = opened
    support = w.reaction(ALICE, "👍")
    concern = w.reaction(ALICE, "🤔")
    await w.apply(support, concern)
    await w.apply(w.command(CHAIR, "!cb close"))
    await w.apply(w.redaction(ALICE, concern.event_id))  # alice removes 🤔 from the ballot
    await w.apply(w.command(CHAIR, "!cb reopen 7d"))
    assert await w.ledger_positions() == {ALICE: Position.SUPPORT}
    assert await w.positions() == await w.ledger_positions()


async def test_a_redaction_in_another_room_does_not_retract(opened: World) -> None:
    w = opened
    support = w.reaction(ALICE, "👍")
    await w.apply(support)
    await w.apply(w.redaction(MALLORY, support.event_id, room="!mallory-dm:x"))
    assert await w.positions() == {ALICE: Position.SUPPORT}


async def test_encryption_blocks_the_request(opened: World) -> None:
    w = opened
    await w.apply(EncryptionEnabled(ROOM, "$enc", MALLORY, T0 + 5))
    assert (await w.request()).state is RequestState.BLOCKED
    blocked = [
        m for m in await w.messages() if m.payload["consensus_bot"].get("event") == "blocked"
    ]
    assert len(blocked) == 1
    assert blocked[0].room_id == MAIN
    assert blocked[0].payload["m.mentions"] == {"user_ids": [CHAIR]}
    assert "encryption" in blocked[0].payload["body"]
    await w.apply(w.reaction(ALICE, "👍"))
    assert await w.positions() == {}


async def test_being_removed_from_the_room_blocks_the_request(opened: World) -> None:
    w = opened
    await w.services.batches.apply_batch(
        SyncBatch(next_batch="s9", left=[LeftRoom(ROOM, "ban", "@mod:x", "spam")])
    )
    assert (await w.request()).state is RequestState.BLOCKED
    blocked = [
        m for m in await w.messages() if m.payload["consensus_bot"].get("event") == "blocked"
    ]
    assert "banned" in blocked[0].payload["body"]


async def test_deadline_fires_and_closes(opened: World) -> None:
    w = opened
    await w.apply(w.reaction(ALICE, "👍"), w.reaction(BOB, "👍"))
    await w.services.groups.first.calendar.fire_deadline(1)  # too early: nothing happens
    assert (await w.request()).state is RequestState.OPEN
    w.clock.advance(15 * DAY)
    await w.services.groups.first.calendar.fire_deadline(1)
    await w.services.groups.first.calendar.fire_deadline(1)  # firing twice is harmless
    assert (await w.request()).state is RequestState.DRAFTED
    assert len(await w.messages("summary")) == 1


# ---- failures and the sync token ----------------------------------------------------------


async def test_a_failing_event_is_set_aside_and_the_batch_goes_on(
    opened: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = opened

    async def boom(ctx: Any, args: Mapping[str, Any]) -> Any:
        await ctx.repo.set_meta("half-done", "yes")  # rolled back with the event's savepoint
        raise RuntimeError("secret detail")

    monkeypatch.setitem(w.services.groups.first.handlers.table, "status", boom)
    before = w.reaction(ALICE, "👍")
    failing = w.command(CAROL, "!cb status")
    after = w.reaction(BOB, "👌")
    result = await w.apply(before, failing, after, next_batch="s-after-failure")
    assert (result.applied, result.failed) == (2, 1)
    assert await w.positions() == {ALICE: Position.SUPPORT, BOB: Position.NO_OBJECTION}
    assert await w.scalar("SELECT value FROM meta WHERE key = 'half-done'") is None

    async with w.db.transaction() as tx:
        rows = await tx.fetchall("SELECT event_id, room_id, ref, error FROM failed_events")
        token = await Repository(tx).get_meta(SYNC_TOKEN)
        seen = await Repository(tx).seen(failing.event_id)
    assert token == "s-after-failure"
    assert seen  # set aside, not retried for ever
    [row] = rows
    assert (row["event_id"], row["room_id"]) == (failing.event_id, ROOM)
    assert row["ref"] == result.refs[0]
    assert "RuntimeError" in row["error"]

    assert await w.acks(failing.event_id) == ["❌"]
    body = (await w.reply_to(failing.event_id))["body"]
    assert f"Something went wrong (ref {row['ref']})" in body
    assert "secret detail" not in body


async def test_a_bugs_value_error_text_never_reaches_the_room(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a `Refusal`'s text is shown to users: a bug's ValueError inside a handler (here
    while filing, whose refusals once were ValueErrors too) becomes "something went wrong"."""
    w = world

    async def buggy(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("secret bug detail")

    monkeypatch.setattr(w.services.groups.first.handlers.ballots, "file_request", buggy)
    filing = w.command(CHAIR, f"!cb request {ERIN} Erin wants to help.", room=MAIN)
    result = await w.apply(filing)
    assert result.failed == 1
    body = (await w.reply_to(filing.event_id))["body"]
    assert f"Something went wrong (ref {result.refs[0]})" in body
    everything = [json.dumps(i.payload) for i in await w.pending()]
    assert everything
    assert not [p for p in everything if "secret bug detail" in p]


async def test_a_refusal_text_reaches_the_user(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other side of the rule: a `Refusal` raised in a handler is the answer itself."""
    w = world

    async def refusing(*args: Any, **kwargs: Any) -> Any:
        raise Refusal("the group is not taking applications this week")

    monkeypatch.setattr(w.services.groups.first.handlers.ballots, "file_request", refusing)
    filing = w.command(CHAIR, f"!cb request {ERIN} Erin wants to help.", room=MAIN)
    result = await w.apply(filing)
    assert (result.applied, result.failed) == (1, 0)
    body = (await w.reply_to(filing.event_id))["body"]
    assert "Not filed: the group is not taking applications this week." in body


async def test_a_failing_reaction_is_set_aside_silently(
    opened: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = opened

    async def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(w.services.batches, "_on_reaction", boom)
    bad = w.reaction(ALICE, "👍")
    result = await w.apply(bad, w.command(BOB, "!cb support"))
    assert (result.applied, result.failed) == (1, 1)
    assert await w.positions() == {BOB: Position.SUPPORT}
    assert await w.replies_to(bad.event_id) == []
    assert await w.scalar("SELECT count(*) FROM failed_events") == 1


async def test_the_sync_token_is_stored_with_its_batch(opened: World) -> None:
    w = opened

    async def token() -> str | None:
        async with w.db.transaction() as tx:
            return await Repository(tx).get_meta(SYNC_TOKEN)

    await w.apply(w.reaction(ALICE, "👍"), next_batch="s1")
    assert await token() == "s1"
    await w.apply(next_batch="s2")  # an empty batch still moves the token
    assert await token() == "s2"
    await w.apply(w.reaction(BOB, "👍"))  # reconciliation: no token, keeps the stored one
    assert await token() == "s2"


async def test_the_token_is_not_stored_when_the_batch_fails(
    opened: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = opened
    await w.apply(next_batch="s1")

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(Repository, "mark_processed_many", broken)
    with pytest.raises(OSError, match="disk on fire"):
        await w.apply(w.reaction(ALICE, "👍"), next_batch="s2")
    monkeypatch.undo()
    async with w.db.transaction() as tx:
        assert await Repository(tx).get_meta(SYNC_TOKEN) == "s1"
    assert await w.positions() == {}


# ---- a property: batching and replays do not change the positions -------------------------

VOTERS = (ALICE, BOB, CAROL)
KEYS = ("👍", "✅", "👌", "🤔", "👎", "✋", "🤐", "🎉", "👍🏽")

# An op is ("react", sender index, key index, ts) or ("redact", sender index, target, ts):
# the target indexes the list of reactions made so far (modulo), or names an unknown event.
ops_st = st.lists(
    st.one_of(
        st.tuples(
            st.just("react"),
            st.integers(0, 3),  # 3: MALLORY, not on the roster
            st.integers(0, len(KEYS) - 1),
            st.integers(0, 4),
        ),
        st.tuples(st.just("redact"), st.integers(0, 2), st.integers(0, 30), st.integers(0, 4)),
    ),
    min_size=1,
    max_size=14,
)


def build_events(ops: list[tuple[str, int, int, int]]) -> list[InboundEvent]:
    """Events from ops; redactions may name reactions that come later (or never)."""
    senders = (*VOTERS, MALLORY)
    n_reactions = sum(1 for op in ops if op[0] == "react")
    events: list[InboundEvent] = []
    made = 0
    for i, (kind, who, what, ts) in enumerate(ops):
        event_id = f"$p{i:02d}"
        if kind == "react":
            events.append(ReactionAdded(ROOM, event_id, senders[who], T0 + ts, BALLOT, KEYS[what]))
            made += 1
        else:
            reaction_ids = [f"$p{j:02d}" for j, op in enumerate(ops) if op[0] == "react"]
            target = reaction_ids[what % n_reactions] if n_reactions else "$nothing"
            events.append(Redacted(ROOM, event_id, senders[who], T0 + ts, target))
    return events


def expected_positions(events: list[InboundEvent]) -> dict[str, Position | None]:
    inputs = [
        PositionInput(e.event_id, e.sender, position_for_reaction(e.key), e.ts, Source.REACTION)
        for e in events
        if isinstance(e, ReactionAdded)
        and e.sender in VOTERS
        and position_for_reaction(e.key) is not None
    ]
    # Only a member's own redaction retracts their position (a moderator's does not): the
    # rule decides that from every redaction, whoever sent it.
    redactions = [
        Redaction(e.event_id, e.redacts, e.room_id, e.sender, e.ts, e.ts)
        for e in events
        if isinstance(e, Redacted)
    ]
    voters = [Voter(m, "", "") for m in VOTERS]
    tally = count(Ballot(ROOM, None), voters, {}, inputs, redactions)
    return {m: i.position for m, i in tally.current.items()}


async def run_plan(batches: list[list[InboundEvent]]) -> tuple[dict[str, Any], dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        w = await make_world(Path(tmp) / "bot.db")
        try:
            await w.open_request()
            for batch in batches:
                await w.apply(*batch)
            return await w.positions(), await w.ledger_positions()
        finally:
            await w.db.close()


@settings(max_examples=30, deadline=None)
@given(ops_st, st.data())
def test_batching_and_replays_do_not_change_positions(
    ops: list[tuple[str, int, int, int]], data: st.DataObject
) -> None:
    events = build_events(ops)
    cuts = sorted(data.draw(st.sets(st.integers(1, len(events)), max_size=4)))
    split = [events[a:b] for a, b in itertools.pairwise([0, *cuts, len(events)]) if a < b]
    prefix = data.draw(st.integers(0, len(events)))
    shuffled = data.draw(st.permutations(events))
    plans = {
        "one batch": [events],
        "split": split,
        "prefix replayed": [events[:prefix], events[:prefix], events],
        "shuffled": [shuffled],
    }
    expected = expected_positions(events)
    for name, plan in plans.items():
        positions, ledger = asyncio.run(run_plan(plan))
        assert positions == expected, name
        assert ledger == expected, name


async def test_every_command_is_bound_to_its_executors_handler(world: World) -> None:
    """The services bind one handler per executor key of `commands.table`, totally."""
    table = world.services.groups.first.handlers.table
    assert set(table) == {c.name for c in COMMANDS}
    assert table["support"] == table["object"] == world.services.groups.first.handlers.position
    assert table["member add"] == world.services.groups.first.handlers.member_add
