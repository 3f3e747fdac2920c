"""A PostgreSQL DSN in the configuration: every password form masked wherever it is shown,
and a DSN asyncpg could not use refused as a keyed error (`storage.dsn`, exit 2), never a
traceback, never quoted (a misplaced part may be a piece of the password)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.cli import main
from bot.config import load_config, render_config
from storage.dsn import DsnError, describe_dsn, mask_dsn, parse_dsn
from tests.unit.test_config import minimal

SECRET = "Zq7SECRETvalue"


def pg_config(tmp_path: Path, dsn: str) -> Path:
    return minimal(tmp_path, extra=f"[storage]\nbackend = \"postgresql\"\ndsn = '{dsn}'\n")


@pytest.fixture(autouse=True)
def _no_env_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONSENSUS_BOT_PASSWORD", raising=False)
    monkeypatch.delenv("CONSENSUS_BOT_ACCESS_TOKEN", raising=False)


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        (
            f"postgresql://bot:{SECRET}@db.example.org:5433/consensus",
            "postgresql://bot:********@db.example.org:5433/consensus",
        ),
        (
            f"postgresql://bot@db/cb?password={SECRET}&sslmode=require",
            "postgresql://bot@db/cb?password=********&sslmode=require",
        ),
        (
            f"postgresql://bot@db/cb?passfile=/etc/{SECRET}/pgpass",
            "postgresql://bot@db/cb?passfile=********",
        ),
        (
            f"postgresql://bot@db/cb?sslmode=verify-full&sslpassword={SECRET}",
            "postgresql://bot@db/cb?sslmode=verify-full&sslpassword=********",
        ),
        # An encoded key is still the password parameter to asyncpg.
        (f"postgresql://db/cb?pass%77ord={SECRET}", "postgresql://db/cb?pass%77ord=********"),
        (
            f"postgresql://bot:{SECRET}@h1:5432,h2:5433/cb",
            "postgresql://bot:********@h1:5432,h2:5433/cb",
        ),
        (
            f"postgres://bot:{quote('p@ss/' + SECRET, safe='')}@[::1]:5432/cb",
            "postgres://bot:********@[::1]:5432/cb",
        ),
        (
            f"postgresql:///cb?host=/run/postgresql&password={SECRET}",
            "postgresql:///cb?host=/run/postgresql&password=********",
        ),
        # Both forms at once, repeated: every one is masked.
        (
            f"postgresql://bot:{SECRET}@db/cb?password={SECRET}&password={SECRET}",
            "postgresql://bot:********@db/cb?password=********&password=********",
        ),
    ],
)
def test_dsn_every_password_form_is_masked_in_check_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dsn: str, shown: str
) -> None:
    assert mask_dsn(dsn) == shown
    assert main(["check-config", "--offline", "--config", str(pg_config(tmp_path, dsn))]) == 0
    out, err = capsys.readouterr()
    assert f"dsn = {shown!r}".replace("'", '"') in out
    assert SECRET not in out + err


@pytest.mark.parametrize(
    ("dsn", "words"),
    [
        ("postgresql://bot@db:abc/cb", "port that is not a whole number"),
        (f"postgresql://bot:{SECRET}@db:5432x/cb", "port that is not a whole number"),
        (f"postgresql://bot:{SECRET}@db:0/cb", "from 1 to 65535"),
        (f"postgresql://bot:{SECRET}@db:70000/cb", "from 1 to 65535"),
        (f"postgresql://bot:{SECRET}@h1:5432,h2:x/cb", "port that is not a whole number"),
        ("postgresql://db/cb?port=five", "port that is not a whole number"),
        # A '/' in the password ends the host part early: the "port" is part of the password.
        (f"postgresql://bot:pa/{SECRET}@db/cb", "must be percent-encoded"),
        (f"postgresql://bot:pa@{SECRET}@db/cb", "more than one '@'"),
        (f"postgresql://bot:{SECRET}@[::1/cb", "not a valid URL"),
        (f"postgresql://bot:{SECRET}@[::1]x/cb", "IPv6"),
        (f"postgresql://bot:{SECRET}@h1,,h2/cb", "empty host"),
        (f"postgresql://bot:{SECRET}@db/cb?{SECRET}", "query string"),
        # A digits-only piece before an unencoded '#', '/' or '?' would pass for a port, and
        # the rest of the password would be shown after the host: refused instead.
        (f"postgresql://bot:1234#{SECRET}@db/cb", "has a '#'"),
        (f"postgresql://bot:1234/{SECRET}@db/cb", "an '@' after the host"),
        (f"postgresql://bot:1234?{SECRET}@db/cb", "an '@' after the host"),
        ("mysql://db/cb", "PostgreSQL URL"),
    ],
)
def test_dsn_that_asyncpg_cannot_use_is_a_keyed_error_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dsn: str, words: str
) -> None:
    with pytest.raises(DsnError, match=words):
        parse_dsn(dsn)
    assert main(["check-config", "--offline", "--config", str(pg_config(tmp_path, dsn))]) == 2
    out, err = capsys.readouterr()
    assert "storage.dsn: " in err
    assert words in err
    assert SECRET not in out + err
    assert "Traceback" not in err


def test_dsn_with_a_bad_port_never_shows_a_traceback_from_the_command(tmp_path: Path) -> None:
    config = pg_config(tmp_path, f"postgresql://bot:{SECRET}@db:abc/cb")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check-config", "--offline", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "storage.dsn: has a port that is not a whole number" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_dsn_masked_one_loads_back_and_describes_without_password(tmp_path: Path) -> None:
    dsn = f"postgresql://bot:{SECRET}@h1:5432,[::1]:5433/cb?password={SECRET}"
    config = load_config(pg_config(tmp_path, dsn), env={})
    text = render_config(config)
    assert SECRET not in text
    assert describe_dsn(dsn) == "PostgreSQL database cb on h1:5432, [::1]:5433"
    assert describe_dsn("postgresql://bot@db:abc/cb") == "PostgreSQL database of storage.dsn"
    assert mask_dsn(f"postgresql://bot:{SECRET}@db:abc/cb") == "(not shown: not a valid DSN)"


def test_dsn_of_migrate_storage_is_checked_without_quoting_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "c.db"
    target = f"postgresql:postgresql://bot:{SECRET}@db:abc/cb"
    assert main(["migrate-storage", "--from", f"sqlite:{source}", "--to", target]) == 2
    err = capsys.readouterr().err
    assert "--to has a port that is not a whole number" in err
    assert SECRET not in err


_PASSWORD_TEXT = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="%"),
    min_size=1,
    max_size=20,
)


@given(password=_PASSWORD_TEXT, where=st.sampled_from(["userinfo", "password", "sslpassword"]))
def test_dsn_mask_never_shows_an_encoded_password(password: str, where: str) -> None:
    secret = SECRET + password
    encoded = quote(secret, safe="")
    if where == "userinfo":
        dsn = f"postgresql://bot:{encoded}@db.example.org:5432/cb?sslmode=require"
    else:
        dsn = f"postgresql://bot@db.example.org:5432/cb?{where}={encoded}&sslmode=require"
    parse_dsn(dsn)
    shown = mask_dsn(dsn)
    assert SECRET not in shown
    assert "db.example.org:5432/cb" in shown
    assert "sslmode=require" in shown


@given(password=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=12))
def test_dsn_unencoded_password_is_refused_or_fully_masked(password: str) -> None:
    # Typed into the config as is, '/', '?', '#', '@' and all: never half shown.
    dsn = f"postgresql://bot:{password}{SECRET}{password}@db.example.org:5432/cb"
    problem = _problem_of(dsn)
    if problem is not None:
        assert SECRET not in problem
        assert mask_dsn(dsn) == "(not shown: not a valid DSN)"
    else:
        assert SECRET not in mask_dsn(dsn)
        assert SECRET not in describe_dsn(dsn)


def _problem_of(dsn: str) -> str | None:
    try:
        parse_dsn(dsn)
    except DsnError as exc:
        return str(exc)
    return None
