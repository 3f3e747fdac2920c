"""The command line: check-config's exit codes and output, the README's generated reference."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.cli import main
from commands.help import reference_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_readme_command_reference_is_generated_from_the_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- commands:begin -->\n", 1)[1].split("\n<!-- commands:end -->", 1)[0]
    assert block == reference_markdown("!cb")


def test_check_config_prints_effective_config_without_secrets(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONSENSUS_BOT_PASSWORD", raising=False)
    monkeypatch.delenv("CONSENSUS_BOT_ACCESS_TOKEN", raising=False)
    assert main(["check-config", "--offline", "--config", str(ROOT / "config.example.toml")]) == 0
    out = capsys.readouterr().out
    assert "[matrix]" in out
    assert "change-me" not in out
    assert "********" in out


def test_check_config_lists_every_error_with_key_path_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    example = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    bad.write_text(
        example.replace("quorum = 0.5", "quorum = 7")
        .replace('command_prefix = "!cb"', 'command_prefix = "!cb"\ncolour = "blue"')
        .replace('deadline = "14d"', 'deadline = "soon"'),
        encoding="utf-8",
    )
    assert main(["check-config", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "process.quorum" in err
    assert "matrix.colour" in err
    assert "process.deadline" in err


def test_run_with_bad_config_exits_2_without_starting(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[matrix]\nhomeserver = 3\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "matrix.homeserver" in result.stderr
    assert "group" in result.stderr  # missing sections are named too


def test_missing_config_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("line", "key", "words"),
    [
        ('path = "/"', "storage.path", "must name a database file"),
        ('path = ".."', "storage.path", "must name a database file"),
        ('path = "db\\u0000x"', "storage.path", "NUL"),
        ('crypto_store = "c\\u0000"', "matrix.crypto_store", "NUL"),
        ('homeserver = "http://[::1"', "matrix.homeserver", "IPv6"),
    ],
)
def test_check_config_bad_paths_are_keyed_errors_exit_2_not_tracebacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, key: str, words: str
) -> None:
    example = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    name = line.split(" = ")[0]
    lines = [line if ln.startswith(f"{name} = ") else ln for ln in example.splitlines()]
    bad = tmp_path / "bad.toml"
    bad.write_text("\n".join(lines), encoding="utf-8")
    assert main(["check-config", "--offline", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{key}: " in err
    assert words in err


def test_check_config_with_an_unusable_storage_path_says_so_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSENSUS_BOT_PASSWORD", "pw")
    # A name longer than the file system allows: looking at it fails (ENAMETOOLONG).
    config = config_with_database(tmp_path, tmp_path / ("d" * 300 + ".db"))
    assert main(["check-config", "--offline", "--config", str(config)]) == 1
    assert "PROBLEM  storage.path: cannot look at" in capsys.readouterr().err


# ---- `run` with a database it cannot use: one sentence, exit code 2 -------------------------


def config_with_database(tmp_path: Path, database: Path) -> Path:
    example = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        example.replace('path = "data/consensus.db"', f'path = "{database}"')
        # Never reached (the database is refused first); a closed port just in case.
        .replace('"https://matrix.example.org"', '"http://127.0.0.1:9"'),
        encoding="utf-8",
    )
    return config


def newer_database(path: Path) -> None:
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    raw.execute("PRAGMA user_version = 999")
    raw.close()


def truncated_database(path: Path) -> None:
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("CREATE TABLE t (x TEXT)")
    raw.executemany("INSERT INTO t VALUES (?)", [("x" * 200,)] * 500)
    raw.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


DATABASE_CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "truncated": (
        lambda d: (truncated_database(d / "bot.db"), d / "bot.db")[1],
        "restore",
    ),
    "random-bytes": (
        lambda d: ((d / "bot.db").write_bytes(bytes(range(256)) * 40), d / "bot.db")[1],
        "not a usable SQLite database",
    ),
    "directory": (lambda d: ((d / "bot.db").mkdir(), d / "bot.db")[1], "is a directory"),
    "unwritable": (
        lambda d: ((d / "file").write_text("x"), d / "file" / "bot.db")[1],
        "cannot create",
    ),
    "newer": (lambda d: (newer_database(d / "bot.db"), d / "bot.db")[1], "newer than this bot"),
}


@pytest.mark.parametrize("case", list(DATABASE_CASES))
def test_run_with_an_unusable_database_says_so_in_one_line_and_exits_2(
    tmp_path: Path, case: str
) -> None:
    make, words = DATABASE_CASES[case]
    database = make(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "run",
            "--config",
            str(config_with_database(tmp_path, database)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("consensus-bot: ")
    assert words in lines[0]


def test_export_with_an_unusable_database_says_so_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "bot.db"
    database.write_bytes(bytes(range(256)) * 40)
    assert main(["export", "--config", str(config_with_database(tmp_path, database))]) == 2
    err = capsys.readouterr().err
    assert "not a usable SQLite database" in err
    assert "Traceback" not in err
