"""The command line: check-config's exit codes and output, the README's generated reference."""

from __future__ import annotations

import subprocess
import sys
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
