"""Several groups in one bot (issue 26): each group its own process, nothing shared across.

Two groups with overlapping members and different process settings run requests at the same
time over one engine and one database (both backends): request numbers are per group, the
same votes give different drafts under different quorums, a chair of one group is refused in
the other, direct chats ask which group when it is ambiguous, and a database from before
several groups (schema 11, made by the previous release: tests/unit/fixtures) migrates with
its records still verifying against their heads.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import ValidationError

from bot.cli import main as cli_main
from bot.config import Config, ConfigError, load_config
from bot.domain.lifecycle import RequestState
from bot.domain.publish import PublishOptions
from bot.domain.record import verify_json
from bot.domain.sense import Proposal
from bot.services.export import export_record
from bot.services.outbox import Outbox
from bot.services.plans import AfterCommit
from bot.services.publish import SiteGroup, site_files
from bot.services.settings import Settings
from storage.backend import Backend
from storage.database import Database
from storage.postgres import _BOOKKEEPING, PostgresDatabase, pg_migrations
from storage.repo import Repository
from tests.unit.test_engine import (
    ALICE,
    BOB,
    BOT,
    CAROL,
    CHAIR,
    DAVE,
    DAY,
    MAIN,
    MALLORY,
    T0,
    TEST_CONFIG,
    TEST_KEYS,
    ManualClock,
    World,
    fresh_database,
    make_services,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
WG_CHAIR = "@wgchair:x"
WG_MAIN = "!wg-main:x"
FRANK = "@frank:x"  # on the working group's roster only

# Two groups written as an operator would: top-level [process] is every group's default,
# each group overrides what it sets.
TWO_GROUPS: dict[str, Any] = {
    "matrix": TEST_CONFIG["matrix"],
    "process": {"reminders": [], "quorum": 0.5},
    "digest": {"schedule": ""},
    "groups": [
        {
            "id": "core",
            "name": "Core Group",
            "main_room": MAIN,
            "chairs": [CHAIR],
            "request_rooms": "invite",
            "process": {"deadline": "14d"},
        },
        {
            "id": "wg",
            "name": "Routing Working Group",
            "main_room": WG_MAIN,
            "chairs": [WG_CHAIR],
            "request_rooms": "invite",
            "language": "fr",
            "process": {"deadline": "7d", "quorum": 0.9},
        },
    ],
}
ROSTERS = {
    "core": {ALICE: ("academia", "europe"), BOB: ("civil-society", "africa"),
             CAROL: ("technical-community", "europe"), DAVE: ("government", "americas")},
    "wg": {ALICE: ("academia", "europe"), BOB: ("civil-society", "africa"),
           CAROL: ("technical-community", "europe"), FRANK: ("private-sector", "asia-pacific")},
}  # fmt: skip


def two_group_config(data: dict[str, Any] = TWO_GROUPS) -> Config:
    return Config.model_validate(data, context={"base_dir": Path("/nonexistent"), "env": {}})


def settings_of(config: Config) -> list[Settings]:
    """Each group's settings, as the app builds them (no minimum deadline: scenarios close
    ballots at once)."""
    return [
        replace(
            Settings.from_config(
                config,
                main_room_id=entry.main_room,
                keys=TEST_KEYS,
                space_id=None,
                bot_needs_power_entry=False,
                group=entry,
            ),
            min_deadline_ms=0,
        )
        for entry in config.entries
    ]


def two_group_settings() -> list[Settings]:
    return settings_of(two_group_config())


@pytest.fixture
async def two_groups(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[World]:
    db = fresh_database(backend, tmp_path, request)
    await db.open()
    async with db.transaction() as tx:
        repo = Repository(tx)
        for group, roster in ROSTERS.items():
            for user_id, (stakeholder, region) in roster.items():
                await repo.seed_member(group, user_id, stakeholder, region, T0)
    clock = ManualClock()
    w = World(make_services(two_group_settings(), db, clock), db, clock)  # type: ignore[arg-type]
    try:
        yield w
    finally:
        await db.close()


async def file_and_open(
    w: World, chair: str, main: str, applicant: str, room: str, ballot: str
) -> int:
    """File a request in a group's main room and play the outbox sender's part; returns
    its key."""
    filing = w.command(
        chair, f"!cb request {applicant} --stakeholder academia --region europe Hello.", room=main
    )
    await w.apply(filing)
    assert await w.acks(filing.event_id) == ["✅"], await w.replies_to(filing.event_id)
    now = w.clock.now_ms()
    async with w.db.transaction() as tx:
        repo = Repository(tx)
        req = await repo.request_by_filing(filing.event_id)
        assert req is not None
        [create] = [
            i
            for i in await repo.pending_outbox(10_000)
            if i.op == "create_room" and i.request_id == req.id
        ]
        await repo.outbox_done(create.id, room, now)
        await w.services.hooks.on_sent(repo, create, room, now)
    async with w.db.transaction() as tx:
        repo = Repository(tx)
        [posted] = [
            i
            for i in await repo.pending_outbox(10_000)
            if i.purpose == "ballot" and i.request_id == req.id
        ]
        await repo.outbox_done(posted.id, ballot, now)
        await w.services.hooks.on_sent(repo, posted, ballot, now)
    return req.id


async def test_two_groups_number_their_requests_and_draft_by_their_own_rules(
    two_groups: World,
) -> None:
    w = two_groups
    core1 = await file_and_open(w, CHAIR, MAIN, "@erin:x", "!core1:x", "$core1")
    wg1 = await file_and_open(w, WG_CHAIR, WG_MAIN, "@erin:x", "!wg1:x", "$wg1")
    core2 = await file_and_open(w, CHAIR, MAIN, "@gina:x", "!core2:x", "$core2")
    core, wg, second = (await w.request(core1), await w.request(wg1), await w.request(core2))
    # Request numbers are per group: each group's first request is its #1.
    assert (core.group_id, core.number) == ("core", 1)
    assert (wg.group_id, wg.number) == ("wg", 1)
    assert (second.group_id, second.number) == ("core", 2)
    # Each group's deadline.
    assert core.deadline_at - core.opened_at == 14 * DAY
    assert wg.deadline_at - wg.opened_at == 7 * DAY
    # Each eligible snapshot is its own group's roster (overlapping, not the same).
    async with w.db.transaction() as tx:
        repo = Repository(tx)
        assert {v.user_id for v in await repo.voters(core1)} == set(ROSTERS["core"])
        assert {v.user_id for v in await repo.voters(wg1)} == set(ROSTERS["wg"])

    # The same three supporters of four on both ballots.
    for member in (ALICE, BOB, CAROL):
        await w.apply(
            w.reaction(member, "👍", room="!core1:x", target="$core1"),
            w.reaction(member, "👍", room="!wg1:x", target="$wg1"),
        )
    # A chair of one group is refused in the other's room, and the ballot stays open.
    wrong = w.command(CHAIR, "!cb close", room="!wg1:x")
    also_wrong = w.command(WG_CHAIR, "!cb close", room="!core1:x")
    await w.apply(wrong, also_wrong)
    assert await w.acks(wrong.event_id) == ["❌"]
    assert "only a chair can" in (await w.reply_to(wrong.event_id))["body"]
    assert await w.acks(also_wrong.event_id) == ["❌"]
    assert (await w.request(wg1)).state is RequestState.OPEN
    assert (await w.request(core1)).state is RequestState.OPEN
    # Each chair closes their own: 3 of 4 took part (0.75).
    await w.apply(
        w.command(CHAIR, "!cb close", room="!core1:x"),
        w.command(WG_CHAIR, "!cb close", room="!wg1:x"),
    )
    core, wg = await w.request(core1), await w.request(wg1)
    assert core.proposal is Proposal.ROUGH_CONSENSUS_ADMIT  # quorum 0.5
    assert wg.proposal is Proposal.INSUFFICIENT_PARTICIPATION  # quorum 0.9
    drafts = {m.request_id: m for m in await w.messages("summary")}
    assert set(drafts) == {core1, wg1}
    # The working group's rooms speak French; the core group's English.
    assert "Request #1" in drafts[core1].payload["body"]
    assert "Demande nº 1" in drafts[wg1].payload["body"] or "#1" in drafts[wg1].payload["body"]
    assert drafts[core1].payload["body"] != drafts[wg1].payload["body"]

    # `#1` means each group's own #1, wherever it is asked.
    core_status = w.command(ALICE, "!cb status 1", room=MAIN)
    wg_status = w.command(ALICE, "!cb status 1", room=WG_MAIN)
    await w.apply(core_status, wg_status)
    assert (await w.reply_to(core_status.event_id))["consensus_bot"]["request"] == core1
    assert (await w.reply_to(wg_status.event_id))["consensus_bot"]["request"] == wg1


async def test_two_groups_each_chair_governs_only_their_own_roster(two_groups: World) -> None:
    w = two_groups
    added = w.command(CHAIR, f"!cb member add {FRANK} --stakeholder academia --region europe",
                      room=MAIN)  # fmt: skip
    # The core group's chair cannot add to the working group's roster from its room.
    refused = w.command(CHAIR, "!cb member add @hal:x --stakeholder academia --region europe",
                        room=WG_MAIN)  # fmt: skip
    removed = w.command(WG_CHAIR, f"!cb member remove {BOB}", room=WG_MAIN)
    await w.apply(added, refused, removed)
    assert await w.acks(added.event_id) == ["✅"]
    assert await w.acks(refused.event_id) == ["❌"]
    assert await w.acks(removed.event_id) == ["✅"]
    async with w.db.transaction() as tx:
        repo = Repository(tx)
        core = {m.user_id for m in await repo.active_members("core")}
        wg = {m.user_id for m in await repo.active_members("wg")}
        assert await repo.groups_of(FRANK) == ["core", "wg"]
        assert await repo.groups_of(BOB) == ["core"]
        assert await repo.member("wg", "@hal:x") is None
    assert core == set(ROSTERS["core"]) | {FRANK}
    assert wg == set(ROSTERS["wg"]) - {BOB}


async def test_two_groups_direct_chat_asks_which_group_and_remembers(two_groups: World) -> None:
    w = two_groups
    await file_and_open(w, CHAIR, MAIN, "@erin:x", "!core1:x", "$core1")
    wg1 = await file_and_open(w, WG_CHAIR, WG_MAIN, "@erin:x", "!wg1:x", "$wg1")
    await w.apply(w.reaction(ALICE, "👎", room="!wg1:x", target="$wg1"))
    await w.services.dms.remember(ALICE, "!dm-alice:x")
    await w.services.dms.remember(DAVE, "!dm-dave:x")
    await w.services.dms.remember(MALLORY, "!dm-mallory:x")
    # Alice is in both groups: the bot asks which one a command is about.
    ask = w.command(ALICE, "!cb mine 1", room="!dm-alice:x")
    await w.apply(ask)
    asked = (await w.reply_to(ask.event_id))["body"]
    assert "Which group" in asked
    assert "core — Core Group" in asked
    assert "wg — Routing Working Group" in asked
    # Help needs no group.
    helped = w.command(ALICE, "!cb help", room="!dm-alice:x")
    await w.apply(helped)
    assert await w.acks(helped.event_id) == ["✅"]
    # She says which; the chat remembers it, and #1 is the working group's #1.
    choose = w.command(ALICE, "!cb group wg", room="!dm-alice:x")
    again = w.command(ALICE, "!cb mine 1", room="!dm-alice:x")
    await w.apply(choose, again)
    assert await w.acks(choose.event_id) == ["✅"]
    answer = await w.reply_to(again.event_id)
    assert answer["consensus_bot"]["request"] == wg1
    unknown = w.command(ALICE, "!cb group nope", room="!dm-alice:x")
    await w.apply(unknown)
    assert "I serve no group" in (await w.reply_to(unknown.event_id))["body"]
    # Dave is only in the core group: no question.
    dave = w.command(DAVE, "!cb mine 1", room="!dm-dave:x")
    await w.apply(dave)
    assert "Which group" not in (await w.reply_to(dave.event_id))["body"]
    # An outsider applying is asked first; once chosen, the application is the group's.
    apply = w.command(MALLORY, "!cb apply I run an exchange point.", room="!dm-mallory:x")
    await w.apply(apply)
    assert "Which group" in (await w.reply_to(apply.event_id))["body"]
    choose = w.command(MALLORY, "!cb group wg", room="!dm-mallory:x")
    apply = w.command(MALLORY, "!cb apply I run an exchange point.", room="!dm-mallory:x")
    await w.apply(choose, apply)
    async with w.db.transaction() as tx:
        [application] = await Repository(tx).requests("wg", [RequestState.TRIAGE])
        assert await Repository(tx).requests("core", [RequestState.TRIAGE]) == []
    assert (application.applicant.applicant, application.number) == (MALLORY, 2)


async def test_two_groups_digest_and_timers_are_each_groups_own(two_groups: World) -> None:
    w = two_groups
    await file_and_open(w, CHAIR, MAIN, "@erin:x", "!core1:x", "$core1")
    await file_and_open(w, WG_CHAIR, WG_MAIN, "@gina:x", "!wg1:x", "$wg1")
    for group in w.services.groups:
        now = w.clock.now_ms()
        async with w.db.transaction() as tx:
            repo = Repository(tx)
            await group.calendar.post_digest(repo, Outbox(repo, now, AfterCommit()), now)
    digests = await w.messages("digest")
    by_room = {d.room_id: d.payload for d in digests}
    assert set(by_room) == {MAIN, WG_MAIN}
    assert "@erin:x" in by_room[MAIN]["body"]
    assert "@gina:x" not in by_room[MAIN]["body"]
    assert "@gina:x" in by_room[WG_MAIN]["body"]
    assert "@erin:x" not in by_room[WG_MAIN]["body"]


async def test_two_groups_config_reads_both_layouts_and_names_every_error() -> None:
    config = two_group_config()
    assert [e.id for e in config.entries] == ["core", "wg"]
    core, wg = config.entries
    # Top-level [process] is the default; each group's own keys win.
    assert (core.process.quorum, core.process.deadline) == (0.5, "14d")
    assert (wg.process.quorum, wg.process.deadline) == (0.9, "7d")
    assert wg.language == "fr"
    single = Config.model_validate(
        {**{k: v for k, v in TWO_GROUPS.items() if k != "groups"}, "group": {
            "name": "G", "main_room": MAIN, "chairs": [CHAIR]}},
        context={"base_dir": Path("/nonexistent"), "env": {}},
    )  # fmt: skip
    assert [e.id for e in single.entries] == ["main"]
    bad = {
        **TWO_GROUPS,
        "groups": [
            {**TWO_GROUPS["groups"][0], "id": "Core!"},
            {**TWO_GROUPS["groups"][1], "id": "wg", "main_room": MAIN},
            {**TWO_GROUPS["groups"][1], "process": {"quorum": 2}},
        ],
    }
    with pytest.raises(ValidationError) as caught:
        two_group_config(bad)
    text = str(caught.value)
    assert "Core!" in text
    assert "groups.2.process.quorum" in text or "groups[2].process.quorum" in text


async def test_two_groups_check_config_shows_how_it_was_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[matrix]
homeserver = "https://x"
user_id = "{BOT}"
password = "unused"

[process]
quorum = 0.6

[[groups]]
id = "core"
name = "Core Group"
main_room = "{MAIN}"
chairs = ["{CHAIR}"]

[[groups]]
id = "wg"
name = "Working Group"
main_room = "{WG_MAIN}"
chairs = ["{WG_CHAIR}"]
[groups.process]
deadline = "7d"

[[groups]]
id = "wg"
name = "Again"
main_room = "{WG_MAIN}"
chairs = ["{WG_CHAIR}"]
""",
        encoding="utf-8",
    )
    assert cli_main(["check-config", "--config", str(path), "--offline"]) == 2
    err = capsys.readouterr().err
    assert "groups[2].id: wg is listed twice" in err
    assert "groups[2].main_room" in err
    with pytest.raises(ConfigError):
        load_config(path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.rindex("[[groups]]")], encoding="utf-8")
    assert cli_main(["check-config", "--config", str(path), "--offline"]) == 0
    out = capsys.readouterr().out
    assert "# 2 groups ([[groups]]): core, wg" in out
    assert 'id = "wg"' in out
    # The defaults as they apply: the top-level quorum in both, the group's own deadline.
    assert out.count("quorum = 0.6") == 2
    assert 'deadline = "7d"' in out
    assert 'deadline = "14d"' in out


# --------------------------------------------------------------------------- migration


def _schema11(path: Path) -> None:
    """The single-group database the previous release (schema 11) left: one decided request
    with its frozen record, one open (made by its own engine; see fixtures/)."""
    with sqlite3.connect(path) as db:
        db.executescript((FIXTURES / "schema11_single_group.sql").read_text(encoding="utf-8"))


async def _schema11_on_postgresql(dsn: str, sqlite_path: Path) -> None:
    """The same database as a bot of schema 11 on PostgreSQL would hold it: its migrations
    up to 11, then the rows."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(_BOOKKEEPING)
        for version, name, sql in pg_migrations():
            if version > 11:
                break
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_version(version, name) VALUES ($1, $2)", version, name
            )
        with sqlite3.connect(sqlite_path) as db:
            # Parents first: the tables others refer to.
            order = ["meta", "members", "requests"]
            names = [
                r[0]
                for r in db.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
                )
            ]
            for table in order + sorted(set(names) - set(order)):
                cursor = db.execute(f'SELECT * FROM "{table}"')
                columns = [d[0] for d in cursor.description]
                rows = cursor.fetchall()
                if rows:
                    await conn.copy_records_to_table(table, records=rows, columns=columns)
        # Later inserts continue after the copied keys.
        for table, column in await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND is_identity = 'YES'"
        ):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                f'max("{column}")) FROM "{table}" HAVING max("{column}") IS NOT NULL'
            )
    finally:
        await conn.close()


async def test_multi_group_migration_keeps_a_single_group_database_verifying(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    head = (FIXTURES / "schema11_single_group.head").read_text(encoding="utf-8").strip()
    old = tmp_path / "old.db"
    _schema11(old)
    with sqlite3.connect(old) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 11
        before = db.execute("SELECT body FROM records").fetchone()[0]
    db_: Backend
    if backend == "postgresql":
        dsn = request.getfixturevalue("pg_empty_dsn")
        await _schema11_on_postgresql(dsn, old)
        db_ = PostgresDatabase(dsn)
    else:
        db_ = Database(old)
    await db_.open()  # migrates to the multi-group schema
    try:
        async with db_.transaction() as tx:
            repo = Repository(tx)
            decided = await repo.request_numbered("main", 1)
            still_open = await repo.request_numbered("main", 2)
            assert decided is not None
            assert decided.state is RequestState.DECIDED
            assert still_open is not None
            assert still_open.state is RequestState.OPEN
            assert await repo.groups_of(ALICE) == ["main"]
            assert {v.user_id for v in await repo.voters(still_open.id)} >= {ALICE, BOB}
            # The frozen record is the same bytes, and verifies against its published head.
            record = await export_record(repo, decided.id, group_name="Test Group", quorum=0.5)
            [frozen] = await repo.frozen_records(decided.id)
            assert frozen.body == before
            assert verify_json(frozen.body, head=head) == []
            assert record["head"] == head
            assert "group_id" not in record["request"]  # as it was frozen
        # The bot goes on numbering the old group where it stopped.
        clock = ManualClock(T0 + 30 * DAY)
        settings = [replace(s, min_deadline_ms=0) for s in two_group_settings_with_main()]
        w = World(make_services(settings, db_, clock), db_, clock)  # type: ignore[arg-type]
        w._seq = itertools.count(1_000)  # event IDs after the old bot's
        third = await file_and_open(w, CHAIR, MAIN, "@ivy:x", "!req3:x", "$ballot3")
        first_wg = await file_and_open(w, WG_CHAIR, WG_MAIN, "@ivy:x", "!wg1:x", "$wg1")
        assert ((await w.request(third)).group_id, (await w.request(third)).number) == ("main", 3)
        assert (await w.request(first_wg)).number == 1
    finally:
        await db_.close()


def two_group_settings_with_main() -> list[Settings]:
    """The migrated single group kept as "main" beside a new group (the README's advice)."""
    data = json.loads(json.dumps(TWO_GROUPS))
    data["groups"][0]["id"] = "main"
    return settings_of(two_group_config(data))


async def test_two_groups_publish_a_site_each_under_one_index(two_groups: World) -> None:
    w = two_groups
    core1 = await file_and_open(w, CHAIR, MAIN, "@erin:x", "!core1:x", "$core1")
    wg1 = await file_and_open(w, WG_CHAIR, WG_MAIN, "@gina:x", "!wg1:x", "$wg1")
    await w.apply(
        w.reaction(ALICE, "👍", room="!core1:x", target="$core1"),
        w.reaction(BOB, "👍", room="!wg1:x", target="$wg1"),
    )
    admit = w.command(
        CHAIR,
        "!cb decide admit Broad support across the group, no objection raised.",
        room="!core1:x",
    )
    decline = w.command(
        WG_CHAIR, "!cb decide decline Too few members took part to judge it yet.", room="!wg1:x"
    )
    await w.apply(admit, decline)
    assert await w.acks(admit.event_id) == ["✅"], await w.replies_to(admit.event_id)
    assert await w.acks(decline.event_id) == ["✅"], await w.replies_to(decline.event_id)
    assert (await w.request(core1)).state is RequestState.DECIDED
    assert (await w.request(wg1)).state is RequestState.DECIDED
    async with w.db.transaction() as tx:
        files = await site_files(
            Repository(tx),
            groups=[SiteGroup("core", "Core Group"), SiteGroup("wg", "Routing Working Group")],
            options=PublishOptions(record_files=True),
            now_ms=w.clock.now_ms(),
        )
    # Each group's #1 in its own folder, its record naming its group and number.
    assert "core/decisions/1/index.html" in files
    assert "wg/decisions/1/index.html" in files
    assert 'href="core/index.html"' in files["index.html"]
    assert "Routing Working Group" in files["wg/index.html"]
    assert "Routing Working Group" not in files["core/index.html"]
    [wg_record] = [v for k, v in files.items() if k.startswith("wg/") and k.endswith(".json")
                   and "record" in k]  # fmt: skip
    request = json.loads(wg_record)["request"]
    assert (request["group_id"], request["number"], request["id"]) == ("wg", 1, wg1)


async def test_two_groups_digest_command_posts_only_its_groups_digest(two_groups: World) -> None:
    w = two_groups
    asked = w.command(WG_CHAIR, "!cb digest", room=WG_MAIN)
    refused = w.command(WG_CHAIR, "!cb digest", room=MAIN)  # not a chair of the core group
    await w.apply(asked, refused)
    assert await w.acks(asked.event_id) == ["✅"]
    assert await w.acks(refused.event_id) == ["❌"]
    assert [d.room_id for d in await w.messages("digest")] == [WG_MAIN]


async def test_two_groups_a_hum_pointed_to_the_direct_chat_works_there_as_suggested(
    two_groups: World,
) -> None:
    w = two_groups
    await file_and_open(w, CHAIR, MAIN, "@erin:x", "!core1:x", "$core1")
    wg1 = await file_and_open(w, WG_CHAIR, WG_MAIN, "@gina:x", "!wg1:x", "$wg1")
    await w.services.dms.remember(ALICE, "!dm-alice:x")  # in both groups
    in_room = w.command(ALICE, "!cb hum for --request 1", room="!wg1:x")
    await w.apply(in_room)
    assert await w.acks(in_room.event_id) == ["❌"]  # hums are private
    hum = w.command(ALICE, "!cb hum for --request 1", room="!dm-alice:x")
    await w.apply(hum)
    assert await w.acks(hum.event_id) == ["✅"], await w.replies_to(hum.event_id)
    hums = "SELECT count(*) FROM hums WHERE request_id = ?"
    assert await w.scalar(hums, (wg1,)) == 1
