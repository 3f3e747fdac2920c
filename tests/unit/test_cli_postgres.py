"""The one-off commands with `storage.backend = "postgresql"`: they open the configured
database through the same factory as the bot (a database on the session's cluster)."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import asyncpg
import pytest

from bot.cli import main

pytestmark = pytest.mark.pg  # needs the session's PostgreSQL cluster


@pytest.fixture
def pg_config(tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("CONSENSUS_BOT_PASSWORD", raising=False)
    monkeypatch.delenv("CONSENSUS_BOT_ACCESS_TOKEN", raising=False)
    config = tmp_path / "config.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [matrix]
            homeserver = "https://matrix.example.org"
            user_id = "@consensus:example.org"
            password = "pw"

            [storage]
            backend = "postgresql"
            dsn = "{pg_dsn}"

            [group]
            name = "G"
            main_room = "!room:example.org"
            chairs = ["@chair:example.org"]
            """
        ),
        encoding="utf-8",
    )
    return config


def members_in(dsn: str) -> dict[str, tuple[str, str, int]]:
    async def read() -> dict[str, tuple[str, str, int]]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch("SELECT user_id, stakeholder, region, active FROM members")
            return {r[0]: (r[1], r[2], r[3]) for r in rows}
        finally:
            await conn.close()

    return asyncio.run(read())


def test_members_import_writes_to_postgresql(
    pg_config: Path, pg_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path = tmp_path / "roster.csv"
    csv_path.write_text(
        "user_id,stakeholder,region\n@alice:example.org,academia,europe\n", encoding="utf-8"
    )
    assert main(["members", "import", "--dry-run", "--config", str(pg_config), str(csv_path)]) == 0
    assert "dry run, nothing written: 1 to add" in capsys.readouterr().out
    assert members_in(pg_dsn) == {}
    assert main(["members", "import", "--config", str(pg_config), str(csv_path)]) == 0
    assert members_in(pg_dsn) == {"@alice:example.org": ("academia", "europe", 1)}


def test_backup_points_to_pg_dump_and_check_config_shows_the_backend(
    pg_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backup", "--config", str(pg_config), str(tmp_path / "b.db")]) == 1
    assert "pg_dump" in capsys.readouterr().err
    assert not (tmp_path / "b.db").exists()
    assert main(["check-config", "--offline", "--config", str(pg_config)]) == 0
    out = capsys.readouterr().out
    assert 'backend = "postgresql"' in out
    assert 'dsn = "postgresql://postgres@127.0.0.1:' in out
