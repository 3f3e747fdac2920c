"""`consensus-bot init`: a config that loads, secrets kept out of it, nothing overwritten."""

from __future__ import annotations

import io
import stat
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import load_config
from bot.init_config import (
    Answers,
    Dialogue,
    Secret,
    render_config_text,
    run_init,
    secret_path,
    validate,
)

FLAGS = [
    "--homeserver",
    "https://matrix.example.org",
    "--user-id",
    "@consensus:example.org",
    "--main-room",
    "#group:example.org",
    "--chair",
    "@chair:example.org",
    "--chair",
    "@vice:example.org, @third:example.org",
]


@pytest.fixture(autouse=True)
def _no_env_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONSENSUS_BOT_PASSWORD", raising=False)
    monkeypatch.delenv("CONSENSUS_BOT_ACCESS_TOKEN", raising=False)


def piped(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- non-interactive


def test_flags_write_a_config_that_loads_with_the_secret_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = tmp_path / "etc" / "bot.toml"
    piped(monkeypatch, "hunter2-secret\n")
    args = ["init", "--yes", "--config", str(config_path), *FLAGS, "--password-file", "-"]
    assert main([*args, "--name", 'The "Quoted" Grüppe', "--timezone", "Europe/Paris"]) == 0
    config = load_config(config_path, env={})
    m, g = config.matrix, config.group
    assert m.homeserver == "https://matrix.example.org"
    assert m.user_id == "@consensus:example.org"
    assert m.password is not None
    assert m.password.get_secret_value() == "hunter2-secret"
    assert g.main_room == "#group:example.org"
    assert g.chairs == ("@chair:example.org", "@vice:example.org", "@third:example.org")
    assert g.name == 'The "Quoted" Grüppe'
    assert g.timezone == "Europe/Paris"
    # The secret is beside the config, the owner's only, and not in the TOML.
    secret = tmp_path / "etc" / "bot.password"
    assert m.password_file is not None
    assert m.password_file.path == secret
    assert mode(secret) == 0o600
    text = config_path.read_text(encoding="utf-8")
    assert "hunter2" not in text
    assert 'password_file = "bot.password"' in text
    assert "wrote" in capsys.readouterr().err


def test_the_defaults_are_those_of_the_example(tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"
    (tmp_path / "token").write_text("syt_token\n", encoding="utf-8")
    (tmp_path / "token").chmod(0o600)
    token_flag = ["--access-token-file", str(tmp_path / "token")]
    assert main(["init", "-y", "--config", str(config_path), *FLAGS, *token_flag]) == 0
    config = load_config(config_path, env={})
    example = load_config(
        Path(__file__).resolve().parents[2] / "config.example.toml",
        env={"CONSENSUS_BOT_PASSWORD": "x"},
    )
    assert config.process == example.process
    assert config.digest == example.digest
    assert config.group.timezone == "UTC"
    assert config.group.members == ()
    assert config.storage.path == tmp_path / "data" / "consensus.db"
    # An existing token file is referred to, not copied.
    assert config.matrix.access_token is not None
    assert config.matrix.access_token.get_secret_value() == "syt_token"
    assert 'access_token_file = "token"' in config_path.read_text(encoding="utf-8")
    assert not secret_path(config_path, "access_token").exists()


def test_an_existing_secret_file_elsewhere_is_referred_to_absolutely(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "pw").write_text("pw\n", encoding="utf-8")
    (secrets / "pw").chmod(0o644)
    config_path = tmp_path / "conf" / "config.toml"
    args = ["init", "-y", "--config", str(config_path), *FLAGS]
    assert main([*args, "--password-file", str(secrets / "pw")]) == 0
    assert f'password_file = "{secrets / "pw"}"' in config_path.read_text(encoding="utf-8")
    assert "chmod 600" in capsys.readouterr().err  # others could read it


def test_a_bad_homeserver_url_exits_2_with_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = tmp_path / "config.toml"
    piped(monkeypatch, "pw\n")
    flags = [*FLAGS]
    flags[1] = "matrix.example.org"  # no scheme
    args = ["init", "--yes", "--config", str(config_path), *flags, "--password-file", "-"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "matrix.homeserver: 'matrix.example.org' is not an http:// or https:// URL" in err
    assert list(tmp_path.iterdir()) == []  # nothing written, not even the secret


def test_every_bad_answer_is_listed_with_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    piped(monkeypatch, "pw\n")
    args = [
        "init",
        "-y",
        "--config",
        str(tmp_path / "c.toml"),
        "--homeserver",
        "https://m.example.org",
        "--user-id",
        "consensus",
        "--main-room",
        "group",
        "--chair",
        "chair",
        "--timezone",
        "Mars/Olympus",
        "--password-file",
        "-",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    for key in ("matrix.user_id", "group.main_room", "group.chairs[0]", "group.timezone"):
        assert f"  {key}: " in err


def test_yes_with_a_missing_answer_names_the_key_and_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", "--yes", "--config", str(tmp_path / "c.toml"), "--homeserver", "x"]) == 2
    err = capsys.readouterr().err
    assert "matrix.user_id: required; give --user-id" in err
    assert "group.main_room: required; give --main-room" in err
    assert "group.chairs: required; give --chair" in err
    assert "--password-file or --access-token-file" in err
    assert list(tmp_path.iterdir()) == []


def test_an_existing_config_is_never_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = tmp_path / "config.toml"
    config_path.write_text("# mine\n", encoding="utf-8")
    piped(monkeypatch, "pw\n")
    assert main(["init", "-y", "--config", str(config_path), *FLAGS, "--password-file", "-"]) == 2
    assert config_path.read_text(encoding="utf-8") == "# mine\n"
    assert "exists already" in capsys.readouterr().err
    assert not secret_path(config_path, "password").exists()


def test_an_existing_secret_file_is_never_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = tmp_path / "config.toml"
    kept = secret_path(config_path, "password")
    kept.write_text("old\n", encoding="utf-8")
    piped(monkeypatch, "new\n")
    assert main(["init", "-y", "--config", str(config_path), *FLAGS, "--password-file", "-"]) == 2
    assert kept.read_text(encoding="utf-8") == "old\n"
    assert not config_path.exists()
    assert "--password-file" in capsys.readouterr().err  # how to use it instead


def test_an_empty_or_missing_secret_file_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["init", "-y", "--config", str(tmp_path / "c.toml"), *FLAGS]
    assert main([*base, "--password-file", str(tmp_path / "none")]) == 2
    assert "cannot read the secret" in capsys.readouterr().err
    piped(monkeypatch, "  \n")
    assert main([*base, "--password-file", "-"]) == 2
    assert "is empty" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- interactive


class Script:
    """A scripted operator: answers prompts in order, records what was asked and said."""

    def __init__(self, answers: list[str], hidden: list[str]) -> None:
        self.answers: Iterator[str] = iter(answers)
        self.hidden: Iterator[str] = iter(hidden)
        self.prompts: list[str] = []
        self.said: list[str] = []

    def ask(self, prompt: str) -> str:
        self.prompts.append(prompt)
        try:
            return next(self.answers)
        except StopIteration:
            raise EOFError from None

    def ask_hidden(self, prompt: str) -> str:
        self.prompts.append(prompt)
        return next(self.hidden)

    def dialogue(self) -> Dialogue:
        return Dialogue(self.ask, self.ask_hidden, self.said.append)


ALL = ["homeserver", "user_id", "main_room", "chairs", "name", "timezone"]


def test_questions_bad_answers_are_asked_again(tmp_path: Path) -> None:
    script = Script(
        answers=[
            "matrix.example.org",  # homeserver: no scheme
            "@consensus:example.org",
            "",  # password (the default)
            "#group:example.org",
            "@chair:example.org @vice:example.org",
            "",  # name: the default
            "Europe/Atlantis",  # timezone: unknown
            "https://matrix.example.org",  # asked again
            "Africa/Nairobi",  # asked again
        ],
        hidden=["", "typed-secret"],  # an empty password is asked again
    )
    config_path = tmp_path / "config.toml"
    code = run_init(
        config_path,
        Answers(),
        secret=None,
        secret_file=None,
        interactive=True,
        dialogue=script.dialogue(),
        asked=ALL,
    )
    assert code == 0, script.said
    assert [p.split(" ")[0] for p in script.prompts] == [
        "Homeserver",
        "The",  # bot's user ID
        "Log",  # password or token
        "The",  # password, hidden
        "The",  # password again
        "The",  # main room
        "The",  # chairs
        "The",  # name
        "The",  # time zone
        "Homeserver",
        "The",  # time zone
    ]
    assert "  matrix.homeserver: 'matrix.example.org' is not an http:// or https:// URL" in (
        script.said
    )
    config = load_config(config_path, env={})
    assert config.matrix.homeserver == "https://matrix.example.org"
    assert config.group.timezone == "Africa/Nairobi"
    assert config.group.name == "Collaboration Group"
    assert config.group.chairs == ("@chair:example.org", "@vice:example.org")
    assert config.matrix.password is not None
    assert config.matrix.password.get_secret_value() == "typed-secret"
    assert mode(secret_path(config_path, "password")) == 0o600


def test_a_token_can_be_typed(tmp_path: Path) -> None:
    script = Script(answers=["token"], hidden=["syt_typed"])
    config_path = tmp_path / "config.toml"
    given = Answers(
        homeserver="https://matrix.example.org",
        user_id="@consensus:example.org",
        main_room="!room",
        chairs=("@chair:example.org",),
    )
    code = run_init(
        config_path,
        given,
        secret=None,
        secret_file=None,
        interactive=True,
        dialogue=script.dialogue(),
    )
    assert code == 0
    config = load_config(config_path, env={})
    assert config.matrix.access_token is not None
    assert config.matrix.access_token.get_secret_value() == "syt_typed"
    assert secret_path(config_path, "access_token").name == "config.access-token"


def test_stopping_half_way_writes_nothing(tmp_path: Path) -> None:
    script = Script(answers=["https://matrix.example.org"], hidden=[])
    code = run_init(
        tmp_path / "config.toml",
        Answers(),
        secret=None,
        secret_file=None,
        interactive=True,
        dialogue=script.dialogue(),
        asked=ALL,
    )
    assert code == 2
    assert "nothing was written" in script.said[-1]
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- the text


def test_the_text_is_toml_with_every_section_commented() -> None:
    answers = Answers(
        homeserver="https://m.example.org",
        user_id="@b:example.org",
        main_room="!r",
        chairs=("@c:example.org",),
        name='Back\\slash "and" quotes\n',
    )
    text = render_config_text(answers, "password", "config.password")
    data = tomllib.loads(text)
    assert set(data) == {"matrix", "storage", "group", "process", "digest"}
    assert data["group"]["name"] == answers.name
    assert data["matrix"]["password_file"] == "config.password"
    assert text.count("\n# ") > 20


def test_validate_reports_issues_without_touching_the_target(tmp_path: Path) -> None:
    answers = Answers(homeserver="gopher://x", user_id="@b:x.org", main_room="!r", chairs=())
    issues = validate(answers, Secret("password", value="pw"), tmp_path / "config.toml")
    assert [i.path for i in issues] == ["matrix.homeserver", "group.chairs"]
    assert list(tmp_path.iterdir()) == []
