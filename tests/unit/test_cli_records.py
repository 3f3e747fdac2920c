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
from bot.services.plans import AfterCommit
from storage.database import Database
from storage.repo import Repository
from tests.unit.test_engine import make_settings

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
            await repo.seed_member("main", "@alice:example.org", "academia", "europe", 1)
            rid = await repo.create_request(
                "main",
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


@pytest.fixture
def exported(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """Request #1's record, saved exactly as `export --format json` printed it."""
    assert main(["export", "--config", str(config), "--request", "1", "--format", "json"]) == 0
    saved = tmp_path / "record.json"
    saved.write_bytes(capsys.readouterr().out.encode("utf-8"))
    return saved


def _head_of(path: Path) -> str:
    return str(json.loads(path.read_text(encoding="utf-8"))["head"])


def test_verify_without_head_says_plainly_it_was_not_compared(
    exported: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "--verify", str(exported)]) == 0
    out = capsys.readouterr().out
    assert "self-consistent" in out
    assert "NOT compared with a published head" in out
    assert "--head HASH" in out
    assert _head_of(exported) in out


def test_verify_with_the_published_head_exits_0_in_either_case(
    exported: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = _head_of(exported)
    for given in (head, head.upper()):
        assert main(["export", "--verify", str(exported), "--head", given]) == 0
        out = capsys.readouterr().out
        assert f"its head is the published {head}" in out
        assert "NOT compared" not in out


def test_a_rewritten_record_passes_alone_but_not_against_the_published_head(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.domain.record import chain
    from bot.domain.record_render import render_json

    published = _head_of(exported)
    forged = json.loads(exported.read_text(encoding="utf-8"))
    bare = [
        {k: v for k, v in e.items() if k not in ("seq", "at", "prev", "hash")}
        for e in forged["entries"]
    ]
    next(e for e in bare if e["type"] == "position")["position"] = "object"
    forged["entries"] = chain(bare)
    forged["head"] = forged["entries"][-1]["hash"]
    rewritten = tmp_path / "rewritten.json"
    rewritten.write_text(render_json(forged), encoding="utf-8")

    assert main(["export", "--verify", str(rewritten)]) == 0  # a chain alone cannot tell
    assert "NOT compared with a published head" in capsys.readouterr().out
    assert main(["export", "--verify", str(rewritten), "--head", published]) == 1
    err = capsys.readouterr().err
    assert "does NOT verify" in err
    assert f"head is not the expected {published}" in err


def test_a_head_mismatch_exits_1(exported: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--verify", str(exported), "--head", "ab" * 32]) == 1
    assert f"head is not the expected {'ab' * 32}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "head", ["", "abc", "ab" * 31, "ab" * 33, "g" * 64, " " + "ab" * 32, "0x" + "ab" * 31]
)
def test_a_head_that_is_not_64_hex_digits_is_a_usage_error(
    exported: Path, head: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--verify", str(exported), "--head", head])
    assert exit_.value.code == 2
    assert "64 hex digits" in capsys.readouterr().err


def test_head_without_verify_is_a_usage_error(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--config", str(config), "--head", "ab" * 32])
    assert exit_.value.code == 2
    assert "--verify" in capsys.readouterr().err


def test_one_byte_tampered_anywhere_exits_1(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = exported.read_bytes()
    tampered = tmp_path / "tampered.json"
    head = _head_of(exported)
    # Every 7th byte, to keep it quick: in keys, values, hashes, numbers and whitespace.
    for index in range(0, len(original), 7):
        byte = original[index]
        for replacement in {b"0"[0], b" "[0], byte ^ 1} - {byte}:
            tampered.write_bytes(original[:index] + bytes([replacement]) + original[index + 1 :])
            code = main(["export", "--verify", str(tampered), "--head", head])
            assert code == 1, (index, original[index - 20 : index + 20], replacement)
    capsys.readouterr()


def test_files_that_are_not_the_exported_json_exit_1(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = exported.read_text(encoding="utf-8")
    other = tmp_path / "other.json"
    cases = {
        "reformatted": json.dumps(json.loads(text), indent=4),
        "duplicate key": text.replace('"schema": ', '"schema": "x",\n  "schema": ', 1),
        "NaN": text.replace('"quorum": 0.5', '"quorum": NaN', 1),
        "not UTF-8": None,
    }
    expected = {
        "reformatted": "use the file exactly as exported",
        "duplicate key": "duplicate key 'schema'",
        "NaN": "NaN is not a JSON number",
        "not UTF-8": "not UTF-8",
    }
    for name, content in cases.items():
        if content is None:
            other.write_bytes(text.encode("utf-8").replace(b"Statement", b"St\xe9tement", 1))
        else:
            assert content != text, name
            other.write_text(content, encoding="utf-8")
        assert main(["export", "--verify", str(other)]) == 1, name
        assert expected[name] in capsys.readouterr().err, name


def test_an_unreadable_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--verify", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["export", "--verify", str(tmp_path)]) == 2  # a directory


def test_the_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    out = capsys.readouterr().out
    for line in ("0  the file is intact", "1  it does not verify", "2  usage error"):
        assert line in out


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
        settings = make_settings(group_name="Example Collaboration Group", chairs=CHAIRS)
        ballots = Ballots(settings)
        async with db.transaction() as tx:
            repo = Repository(tx)
            # Five eligible members hum (the default minimum), plus one outsider whose hum is
            # dropped: only eligible members' hums are heard.
            hummers = [f"@h{n}:example.org" for n in range(1, 6)]
            for user in hummers:
                await repo.seed_member("main", user, "academia", "europe", 1)
                await tx.execute(
                    "INSERT INTO eligible(request_id, user_id, stakeholder, region) "
                    "VALUES (1, ?, 'academia', 'europe')",
                    (user,),
                )
            for user, side, strength in zip(
                [*hummers, "@outsider:example.org"],
                ["for", "for", "for", "against", "for", "against"],
                ["loud", "soft", "loud", "soft", "soft", "loud"],
                strict=True,
            ):
                await repo.set_hum(1, ballots.hummer(1, user), side, strength)
            # Hums reach the record only when the chair decides (never live).
            req = await repo.request(1)
            assert req is not None
            await ballots.decide(
                repo,
                Outbox(repo, 100, AfterCommit()),
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
    # No stored hum key (which would tie a hum to its row) reaches the record.
    text = json.dumps(record)
    ballots = Ballots(make_settings(chairs=CHAIRS))
    assert all(ballots.hummer(1, f"@h{n}:example.org") not in text for n in range(1, 6))
