"""consensus-bot export / export --verify / backup on a real database file."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from bot.cli import main
from bot.domain.ledger import PositionInput, Source
from bot.domain.lifecycle import Action, Outcome
from bot.domain.positions import Position
from bot.domain.request import Applicant
from bot.services.ballots import Ballots
from bot.services.outbox import Outbox
from bot.services.settings import Settings
from storage.database import Database
from storage.repo import Repository

ROOT = Path(__file__).resolve().parents[2]
CHAIRS = frozenset({"@chair:example.org"})


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config whose database holds one request with a position."""
    db_path = tmp_path / "consensus.db"

    async def seed() -> None:
        db = Database(db_path)
        await db.open()
        async with db.transaction() as tx:
            repo = Repository(tx)
            await repo.seed_member("@alice:example.org", "academia", "europe", 1)
            rid = await repo.create_request(
                Applicant("@erin:example.org", name="Erin"),
                "Statement",
                "@chair:example.org",
                "$filed",
                False,
                10_000_000,
                1,
            )
            await repo.update_request(rid, state="open", room_id="!r:x", opened_at=2)
            await repo.snapshot_eligible(rid)
            item = PositionInput("$p1", "@alice:example.org", Position.SUPPORT, 5, Source.REACTION)
            await repo.add_input(rid, item, 6)
        await db.close()

    asyncio.run(seed())
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(text.replace('path = "data/consensus.db"', f'path = "{db_path}"'))
    return path


def test_export_markdown_json_and_verify(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "--config", str(config), "--format", "md"]) == 0
    minutes = capsys.readouterr().out
    assert "Erin" in minutes
    assert "@alice" in minutes

    assert main(["export", "--config", str(config), "--request", "1", "--format", "json"]) == 0
    record = capsys.readouterr().out
    saved = tmp_path / "record.json"
    saved.write_text(record, encoding="utf-8")
    assert main(["export", "--verify", str(saved)]) == 0
    assert "intact" in capsys.readouterr().out

    data = json.loads(record)
    for entry in data["entries"]:
        if entry.get("type") == "position":
            entry["position"] = "object"  # a forged position
    saved.write_text(json.dumps(data), encoding="utf-8")
    assert main(["export", "--verify", str(saved)]) == 1
    assert "does NOT verify" in capsys.readouterr().err


def test_export_of_a_missing_request_is_a_clear_error(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "--config", str(config), "--request", "99"]) == 1
    assert "no request #99" in capsys.readouterr().err


def test_backup_writes_a_consistent_copy_once(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "backup.db"
    assert main(["backup", "--config", str(config), str(dest)]) == 0
    with sqlite3.connect(dest) as copy:
        assert copy.execute("SELECT count(*) FROM position_inputs").fetchone() == (1,)
    assert main(["backup", "--config", str(config), str(dest)]) == 1  # never overwrites
    assert "cannot write a backup" in capsys.readouterr().err


def test_the_record_carries_hums_as_loudness_only(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db_path = Path(str(config).replace("config.toml", "consensus.db"))

    async def hum() -> None:
        db = Database(db_path)
        await db.open()
        async with db.transaction() as tx:
            repo = Repository(tx)
            for hummer, side, strength in (
                ("h1", "for", "loud"),
                ("h2", "for", "soft"),
                ("h3", "against", "soft"),
            ):
                await repo.set_hum(1, hummer, side, strength)
            # Hums reach the record only when the chair decides (never live).
            req = await repo.request(1)
            assert req is not None
            settings = Settings("@bot:x", "!cb", "!main:x", "Example Collaboration Group", CHAIRS)
            await Ballots(settings).decide(
                repo,
                Outbox(repo, 100),
                req,
                Outcome.ADMIT,
                "@chair:example.org",
                "ok",
                100,
                action=Action.DECIDE,
            )
        await db.close()

    asyncio.run(hum())
    assert main(["export", "--config", str(config), "--request", "1", "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["hums"] == {"for": "loud", "against": "soft"}
    assert "h1" not in json.dumps(record)
