"""`consensus-bot members import`: every row checked with its line number, then one transaction."""

from __future__ import annotations

import asyncio
import sqlite3
import textwrap
from pathlib import Path

import pytest

from bot.cli import main
from bot.domain.roster_import import (
    Change,
    Existing,
    RosterRow,
    parse_roster,
    plan_import,
    summarize,
)
from storage.database import Database, DatabaseError
from storage.repo import Repository

HEADER = "user_id,stakeholder,region\n"


# --------------------------------------------------------------------------- parsing


def test_a_valid_file() -> None:
    parsed = parse_roster(
        HEADER + "@alice:example.org,academia,europe\n@bob:example.org,civil-society,africa\n"
    )
    assert parsed.ok
    assert parsed.rows == (
        RosterRow(2, "@alice:example.org", "academia", "europe"),
        RosterRow(3, "@bob:example.org", "civil-society", "africa"),
    )


def test_columns_in_any_order_country_ignored_values_stripped_and_lowered() -> None:
    text = (
        "Region , country, USER_ID,stakeholder\r\n"
        " Europe ,FR, @alice:example.org , Technical-Community\r\n"
        "\r\n"
        "asia-pacific,,@carol:example.org,government\r\n"
    )
    parsed = parse_roster(text)
    assert parsed.ok, parsed.problems
    assert parsed.rows == (
        RosterRow(2, "@alice:example.org", "technical-community", "europe"),
        RosterRow(4, "@carol:example.org", "government", "asia-pacific"),
    )


def test_every_problem_is_listed_with_its_line() -> None:
    text = (
        HEADER
        + "@alice:example.org,academia,europe\n"  # 2: fine
        + "alice,acadmia,europe\n"  # 3: two problems
        + "@bob:example.org,civil-society,atlantis\n"  # 4
        + "@alice:example.org,academia,europe\n"  # 5: listed twice
        + "@dan:example.org,academia\n"  # 6: a value short
        + ",,\n"  # 7: blank, skipped
        + '"@erin:example.org",government,"cis"\n'  # 8: fine
        + "@frank:example.org,,europe\n"  # 9: empty stakeholder
    )
    parsed = parse_roster(text)
    assert not parsed.ok
    assert [(p.line, p.message.split(" ")[0]) for p in parsed.problems] == [
        (3, "'alice'"),
        (3, "'acadmia'"),
        (4, "'atlantis'"),
        (5, "@alice:example.org"),
        (6, "expected"),
        (9, "stakeholder"),
    ]
    by_line = {p.line: str(p) for p in parsed.problems}  # the last problem of each line
    assert str(parsed.problems[0]).startswith("line 3: ")
    assert "not a Matrix user ID" in str(parsed.problems[0])
    assert "did you mean 'academia'" in str(parsed.problems[1])
    assert "europe" in by_line[4]  # the allowed regions are listed
    assert "also on line 2" in by_line[5]
    assert [r.line for r in parsed.rows] == [2, 8]


def test_a_quoted_value_over_several_lines_keeps_the_line_numbers() -> None:
    text = (
        HEADER + '"@a:example.org",academia,"eu\nrope"\n@b:x.org,academia,cis\nbad,academia,cis\n'
    )
    parsed = parse_roster(text)
    assert [(p.line) for p in parsed.problems] == [2, 5]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "the file is empty"),
        ("\n\n", "the file is empty"),
        ("user_id,stakeholder\n@a:x.org,academia\n", "lacks region"),
        ("user_id,stakeholder,region,email\n", "unknown column 'email'"),
        ("user_id,stakeholder,region,region\n", "named twice"),
        ("@a:x.org,academia,europe\n", "unknown column '@a:x.org'"),
    ],
)
def test_header_problems_are_on_line_1(text: str, fragment: str) -> None:
    parsed = parse_roster(text)
    assert not parsed.ok
    assert parsed.problems[0].line == 1
    assert any(fragment in p.message for p in parsed.problems), parsed.problems


def test_broken_csv_quoting_is_a_problem_not_a_crash() -> None:
    parsed = parse_roster(HEADER + '@a:x.org,"academia"x,europe\n')
    assert not parsed.ok
    assert "not readable as CSV" in parsed.problems[0].message


# --------------------------------------------------------------------------- planning


def test_plan_says_what_changes() -> None:
    rows = [
        RosterRow(2, "@new:x.org", "academia", "europe"),
        RosterRow(3, "@moved:x.org", "academia", "europe"),
        RosterRow(4, "@gone:x.org", "academia", "europe"),
        RosterRow(5, "@same:x.org", "academia", "europe"),
    ]
    existing = {
        "@moved:x.org": Existing("academia", "africa", True),
        "@gone:x.org": Existing("academia", "europe", False),
        "@same:x.org": Existing("academia", "europe", True),
    }
    plan = plan_import(rows, existing)
    assert [p.change for p in plan] == [
        Change.ADD,
        Change.UPDATE,
        Change.REACTIVATE,
        Change.UNCHANGED,
    ]
    assert [p.describe() for p in plan] == [
        "line 2: add @new:x.org (academia, europe)",
        "line 3: update @moved:x.org: region africa → europe",
        "line 4: reactivate @gone:x.org (academia, europe)",
        "line 5: unchanged @same:x.org",
    ]
    assert summarize(plan) == "1 to add, 1 to update, 1 to reactivate, 1 unchanged"
    assert summarize(plan, done=True) == "1 added, 1 updated, 1 reactivated, 1 unchanged"


# --------------------------------------------------------------------------- the command


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config whose database lives in tmp_path; returns the config path."""
    monkeypatch.delenv("CONSENSUS_BOT_PASSWORD", raising=False)
    monkeypatch.delenv("CONSENSUS_BOT_ACCESS_TOKEN", raising=False)
    config = tmp_path / "config.toml"
    config.write_text(
        textwrap.dedent(
            """
            [matrix]
            homeserver = "https://matrix.example.org"
            user_id = "@consensus:example.org"
            password = "pw"

            [storage]
            path = "consensus.db"

            [group]
            name = "G"
            main_room = "!room:example.org"
            chairs = ["@chair:example.org"]
            """
        ),
        encoding="utf-8",
    )
    return config


def roster(tmp_path: Path, body: str, name: str = "roster.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def members_in(db_path: Path) -> dict[str, tuple[str, str, int, str]]:
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT user_id, stakeholder, region, active, added_by FROM members")
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


async def seed(db_path: Path) -> None:
    db = Database(db_path)
    await db.open()
    try:
        async with db.transaction() as tx:
            repo = Repository(tx)
            await repo.upsert_member(
                "main", "@bob:example.org", "academia", "africa", 1, "@chair:x.org"
            )
            await repo.upsert_member(
                "main", "@carol:example.org", "government", "cis", 1, "@chair:x.org"
            )
            await repo.deactivate_member("main", "@carol:example.org", 2)
    finally:
        await db.close()


def test_import_upserts_every_row(
    tmp_path: Path, setup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db_path = tmp_path / "consensus.db"
    asyncio.run(seed(db_path))
    csv_path = roster(
        tmp_path,
        "@alice:example.org,academia,europe\n"
        "@bob:example.org,academia,europe\n"
        "@carol:example.org,government,cis\n",
    )
    assert main(["members", "import", "--config", str(setup), str(csv_path)]) == 0
    out = capsys.readouterr().out
    assert "line 2: add @alice:example.org (academia, europe)" in out
    assert "line 3: update @bob:example.org: region africa → europe" in out
    assert "line 4: reactivate @carol:example.org" in out
    assert "1 added, 1 updated, 1 reactivated, 0 unchanged" in out
    members = members_in(db_path)
    assert members["@alice:example.org"] == ("academia", "europe", 1, "import:roster.csv")
    assert members["@bob:example.org"][:3] == ("academia", "europe", 1)
    assert members["@carol:example.org"][2] == 1
    # Importing the same file again changes nothing.
    assert main(["members", "import", "--config", str(setup), str(csv_path)]) == 0
    assert "0 added, 0 updated, 0 reactivated, 3 unchanged" in capsys.readouterr().out


def test_dry_run_writes_nothing(
    tmp_path: Path, setup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db_path = tmp_path / "consensus.db"
    csv_path = roster(tmp_path, "@alice:example.org,academia,europe\n")
    # No database yet: a dry run does not create one.
    assert main(["members", "import", "--dry-run", "--config", str(setup), str(csv_path)]) == 0
    assert "1 to add" in capsys.readouterr().out
    assert not db_path.exists()
    asyncio.run(seed(db_path))
    before = members_in(db_path)
    assert main(["members", "import", "--dry-run", "--config", str(setup), str(csv_path)]) == 0
    out = capsys.readouterr().out
    assert "line 2: add @alice:example.org (academia, europe)" in out
    assert "dry run, nothing written: 1 to add, 0 to update, 0 to reactivate, 0 unchanged" in out
    assert members_in(db_path) == before


@pytest.mark.parametrize("dry_run", [True, False])
def test_any_invalid_row_means_exit_2_and_nothing_written(
    tmp_path: Path, setup: Path, capsys: pytest.CaptureFixture[str], dry_run: bool
) -> None:
    db_path = tmp_path / "consensus.db"
    asyncio.run(seed(db_path))
    before = members_in(db_path)
    csv_path = roster(
        tmp_path,
        "@alice:example.org,academia,europe\nzed,academia,europe\n@yan:x.org,academia,mars\n",
    )
    args = ["members", "import", "--config", str(setup), str(csv_path)]
    assert main([*args, "--dry-run"] if dry_run else args) == 2
    err = capsys.readouterr().err
    assert "2 problem(s); nothing was imported" in err
    assert "line 3: 'zed' is not a Matrix user ID" in err
    assert "line 4: 'mars' is not a region" in err
    assert members_in(db_path) == before


def test_all_rows_go_in_one_transaction(
    tmp_path: Path, setup: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_path = tmp_path / "consensus.db"
    asyncio.run(seed(db_path))
    before = members_in(db_path)
    calls = 0
    real = Repository.upsert_member

    async def failing_third(self: Repository, *args: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise DatabaseError("disk full")
        await real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Repository, "upsert_member", failing_third)
    csv_path = roster(
        tmp_path,
        "@a:example.org,academia,europe\n@b:example.org,academia,europe\n@c:example.org,academia,europe\n",
    )
    assert main(["members", "import", "--config", str(setup), str(csv_path)]) == 2
    assert calls == 3
    assert members_in(db_path) == before  # the first two were rolled back too


def test_unreadable_files_exit_2(
    tmp_path: Path, setup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["members", "import", "--config", str(setup), str(tmp_path / "nope.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes((HEADER + "@josé:example.org,academia,europe\n").encode("latin-1"))
    assert main(["members", "import", "--config", str(setup), str(latin1)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_a_byte_order_mark_is_fine(tmp_path: Path, setup: Path) -> None:
    bom = tmp_path / "excel.csv"
    bom.write_bytes(("\ufeff" + HEADER + "@alice:example.org,academia,europe\n").encode("utf-8"))
    assert main(["members", "import", "--config", str(setup), str(bom)]) == 0
    assert "@alice:example.org" in members_in(tmp_path / "consensus.db")


def test_a_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = roster(tmp_path, "@alice:example.org,academia,europe\n")
    assert main(["members", "import", "--config", str(tmp_path / "no.toml"), str(csv_path)]) == 2
    assert "no.toml" in capsys.readouterr().err
