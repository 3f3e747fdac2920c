"""The configuration layer: loading, every error at once with key paths, secrets, rendering."""

from __future__ import annotations

import textwrap
import tomllib
from pathlib import Path

import pytest

from bot.config import (
    ConfigError,
    ConfigIssue,
    load_config,
    parse_cron,
    render_config,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config.example.toml"

MINIMAL = """
[matrix]
homeserver = "https://matrix.example.org"
user_id = "@consensus:example.org"
{credential}

[group]
name = "Test Group"
main_room = "!room:example.org"
chairs = ["@chair:example.org"]
{extra}
"""


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def minimal(tmp_path: Path, credential: str = 'password = "hunter2"', extra: str = "") -> Path:
    return write(tmp_path, MINIMAL.format(credential=credential, extra=extra))


def issues_of(path: Path, env: dict[str, str] | None = None) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={} if env is None else env)
    return caught.value.issues


def paths_of(path: Path, env: dict[str, str] | None = None) -> list[str]:
    return [issue.path for issue in issues_of(path, env)]


# --------------------------------------------------------------------------- the example


def test_example_loads_with_spec_defaults() -> None:
    config = load_config(EXAMPLE, env={"CONSENSUS_BOT_PASSWORD": "s3cret"})
    m, g, p = config.matrix, config.group, config.process
    assert m.homeserver == "https://matrix.example.org"
    assert m.user_id == "@consensus:example.org"
    assert m.password is not None
    assert m.password.get_secret_value() == "s3cret"
    assert m.access_token is None
    assert m.device_id == "CONSENSUSBOT"
    assert m.command_prefix == "!cb"
    assert m.allowed_inviters == ()
    assert config.storage.path == REPO / "data" / "consensus.db"
    assert g.name == "Example Collaboration Group"
    assert g.main_room == "!room:example.org"
    assert g.space == ""
    assert g.chairs == ("@chair:example.org",)
    assert g.timezone == "UTC"
    assert g.self_apply is True
    first = g.members[0]
    assert (first.user_id, first.stakeholder, first.region) == (
        "@alice:example.org",
        "technical-community",
        "europe",
    )
    assert len(g.members) >= 2
    assert p.deadline == "14d"
    assert p.deadline_ms == 14 * 86_400_000
    assert p.min_deadline_ms == 72 * 3_600_000
    assert p.reminders == ("48h", "24h")
    assert p.reminders_ms == (48 * 3_600_000, 24 * 3_600_000)
    assert p.quorum == 0.5
    assert p.appeal_window_ms == 14 * 86_400_000
    assert config.digest.schedule == "0 9 * * mon"
    assert config.digest.enabled


def test_example_mentions_every_stakeholder_group_and_region() -> None:
    from bot.domain.taxonomy import REGIONS, STAKEHOLDER_GROUPS

    text = EXAMPLE.read_text(encoding="utf-8")
    for word in (*STAKEHOLDER_GROUPS, *REGIONS):
        assert word in text


def test_defaults_apply_when_optional_sections_are_missing(tmp_path: Path) -> None:
    config = load_config(minimal(tmp_path), env={})
    assert config.storage.path == tmp_path / "data" / "consensus.db"
    assert config.process.deadline == "14d"
    assert config.process.min_deadline == "72h"
    assert config.process.reminders == ("48h", "24h")
    assert config.process.quorum == 0.5
    assert config.process.appeal_window == "14d"
    assert config.digest.schedule == "0 9 * * mon"
    assert config.group.members == ()
    assert config.group.tzinfo.key == "UTC"


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load_config(minimal(tmp_path), env={})
    with pytest.raises(ValueError, match="frozen"):
        config.group.name = "other"  # type: ignore[misc]


# --------------------------------------------------------------------------- every error at once


def test_every_error_is_listed_with_its_key_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [matrix]
        homeserver = "https://matrix.example.org"
        user_id = "@consensus:example.org"
        password = "hunter2"
        colour = "blue"

        [group]
        name = "G"
        main_room = "!room:example.org"
        chairs = ["@chair:example.org"]

        [[group.members]]
        user_id = "@alice:example.org"
        stakeholder = "academia"
        region = "europe"

        [[group.members]]
        user_id = "@bob:example.org"
        stakeholder = "academia"
        region = "atlantis"

        [process]
        quorum = 1.5
        appeal_window = "two weeks"
        """,
    )
    issues = issues_of(path)
    assert [i.path for i in issues] == [
        "matrix.colour",
        "group.members[1].region",
        "process.quorum",
        "process.appeal_window",
    ]
    by_path = {i.path: i.message for i in issues}
    assert by_path["matrix.colour"] == "unknown key"
    assert "atlantis" in by_path["group.members[1].region"]
    assert "europe" in by_path["group.members[1].region"]  # lists the allowed values
    assert "two weeks" in by_path["process.appeal_window"]


def test_error_string_has_one_issue_per_line(tmp_path: Path) -> None:
    path = minimal(tmp_path, extra='timezone = "Mars/Olympus"\nself_apply = "yes"')
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("group.timezone: ")
    assert lines[1] == "group.self_apply: must be true or false"


def test_missing_required_keys_and_sections(tmp_path: Path) -> None:
    path = write(tmp_path, '[matrix]\nhomeserver = "ftp://x"\n')
    issues = issues_of(path)
    assert [i.path for i in issues] == ["matrix.homeserver", "matrix.user_id", "group"]
    assert issues[1].message == "required key is missing"
    assert "[group]" in issues[2].message


def test_unknown_section_and_nested_unknown_key(tmp_path: Path) -> None:
    path = minimal(
        tmp_path,
        extra='[[group.members]]\nuser_id = "@a:x.org"\nstakeholder = "academia"\n'
        'region = "europe"\nrole = "x"\n[extras]\na = 1\n',
    )
    assert paths_of(path) == ["group.members[0].role", "extras"]


def test_bad_values_name_their_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [matrix]
        homeserver = "matrix.example.org"
        user_id = "consensus"
        password = "x"
        command_prefix = "! cb"
        allowed_inviters = ["@ok:example.org", "nobody"]

        [group]
        name = " "
        main_room = "room"
        space = "#space"
        chairs = []

        [process]
        reminders = ["48h", "soon"]
        quorum = 0

        [digest]
        schedule = "0 9 * *"
        """,
    )
    assert paths_of(path) == [
        "matrix.homeserver",
        "matrix.user_id",
        "matrix.command_prefix",
        "matrix.allowed_inviters[1]",
        "group.name",
        "group.main_room",
        "group.space",
        "group.chairs",
        "process.reminders[1]",
        "process.quorum",
        "digest.schedule",
    ]


def test_room_ids_without_server_and_aliases_are_accepted(tmp_path: Path) -> None:
    path = minimal(tmp_path, extra='space = "#space:example.org"')
    text = path.read_text().replace("!room:example.org", "!Opaque_v12-RoomId")
    path.write_text(text)
    config = load_config(path, env={})
    assert config.group.main_room == "!Opaque_v12-RoomId"
    assert config.group.space == "#space:example.org"


def test_duplicate_members_name_the_index(tmp_path: Path) -> None:
    member = '[[group.members]]\nuser_id = "{}"\nstakeholder = "academia"\nregion = "cis"\n'
    extra = "".join(member.format(u) for u in ("@a:x.org", "@b:x.org", "@a:x.org"))
    issues = issues_of(minimal(tmp_path, extra=extra))
    assert [i.path for i in issues] == ["group.members[2].user_id"]
    assert "members[0]" in issues[0].message


def test_bad_stakeholder_suggests_a_close_one(tmp_path: Path) -> None:
    extra = '[[group.members]]\nuser_id = "@a:x.org"\nstakeholder = "acadmia"\nregion = "cis"\n'
    (issue,) = issues_of(minimal(tmp_path, extra=extra))
    assert issue.path == "group.members[0].stakeholder"
    assert "did you mean 'academia'" in issue.message


def test_timezone_is_validated(tmp_path: Path) -> None:
    (issue,) = issues_of(minimal(tmp_path, extra='timezone = "Europe/Atlantis"'))
    assert issue.path == "group.timezone"
    assert "Europe/Atlantis" in issue.message
    config = load_config(minimal(tmp_path, extra='timezone = "Europe/Paris"'), env={})
    assert config.group.tzinfo.key == "Europe/Paris"


# --------------------------------------------------------------------------- process


def test_process_cross_checks(tmp_path: Path) -> None:
    path = minimal(
        tmp_path,
        extra='[process]\ndeadline = "48h"\nreminders = ["24h", "1d", "3d"]\n',
    )
    issues = issues_of(path)
    assert [i.path for i in issues] == [
        "process.deadline",
        "process.reminders[1]",
        "process.reminders[2]",
    ]
    assert "min_deadline" in issues[0].message
    assert "repeats" in issues[1].message


def test_reminders_are_sorted_longest_first(tmp_path: Path) -> None:
    path = minimal(tmp_path, extra='[process]\nreminders = ["1h", "3d", "12h"]\n')
    process = load_config(path, env={}).process
    assert process.reminders == ("1h", "3d", "12h")
    assert process.reminders_ms == (3 * 86_400_000, 12 * 3_600_000, 3_600_000)


def test_quorum_accepts_one_and_rejects_booleans(tmp_path: Path) -> None:
    assert load_config(minimal(tmp_path, extra="[process]\nquorum = 1"), env={}).process.quorum == 1
    assert paths_of(minimal(tmp_path, extra="[process]\nquorum = true")) == ["process.quorum"]


# --------------------------------------------------------------------------- digest / cron


def test_digest_can_be_disabled(tmp_path: Path) -> None:
    digest = load_config(minimal(tmp_path, extra='[digest]\nschedule = ""'), env={}).digest
    assert not digest.enabled
    assert digest.cron is None


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        ("60 9 * * mon", "minute"),
        ("0 24 * * *", "hour"),
        ("0 9 0 * *", "day-of-month"),
        ("0 9 * foo *", "month"),
        ("0 9 * * funday", "day-of-week"),
        ("0 9 * * 1-8", "day-of-week"),
        ("*/0 9 * * *", "minute"),
        ("0 9-5 * * *", "hour"),
    ],
)
def test_cron_errors_name_the_field(tmp_path: Path, schedule: str, field: str) -> None:
    (issue,) = issues_of(minimal(tmp_path, extra=f'[digest]\nschedule = "{schedule}"'))
    assert issue.path == "digest.schedule"
    assert issue.message.startswith(f"{field} field ")


@pytest.mark.parametrize(
    "schedule",
    [
        "0 9 * * mon",
        "*/15 8-18/2 1,15 jan-jun *",
        "*/15 8-18/2 * jan-jun mon-fri",
        "30 6 * * 0,7",
        "0 0 1 * *",
        "5/10 * * * SUN",
    ],
)
def test_cron_valid_expressions(schedule: str) -> None:
    parse_cron(schedule)


def test_cron_weekdays_for_apscheduler_are_names() -> None:
    cron = parse_cron("0 9 * * 0-2")
    assert cron.days_of_week == frozenset({0, 1, 2})
    fields = cron.apscheduler_fields()
    assert fields["day_of_week"] == "sun,mon,tue"
    assert (fields["minute"], fields["hour"], fields["day"], fields["month"]) == (
        "0",
        "9",
        "*",
        "*",
    )
    assert parse_cron("0 9 * * mon-sun").apscheduler_fields()["day_of_week"] == "*"


def test_both_day_fields_restricted_is_refused_with_the_key(tmp_path: Path) -> None:
    # Cron reads `0 9 1 * mon` as "the 1st, or any Monday"; APScheduler, which runs the
    # digest, as "a 1st that is a Monday". Neither is silently picked.
    (issue,) = issues_of(minimal(tmp_path, extra='[digest]\nschedule = "0 9 1 * mon"'))
    assert issue.path == "digest.schedule"
    assert issue.message.startswith("restrict either day-of-month or day-of-week, not both")
    for schedule in ("0 9 1-7 * mon", "0 9 */2 * mon-fri", "0 9 1 * mon-sun"):
        with pytest.raises(ValueError, match="restrict either day-of-month or day-of-week"):
            parse_cron(schedule)


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        ("0 9 L * *", "day-of-month"),  # croniter: last day of the month
        ("0 9 * * 5#2", "day-of-week"),  # croniter: second Friday
        ("0 9 * * L5", "day-of-week"),
        ("0 9 ? * mon", "day-of-month"),  # Quartz
        ("H 9 * * *", "minute"),  # Jenkins
        ("0 9 * * fri-mon", "day-of-week"),  # croniter wraps the range around
        ("0 9 * * mon-mon", "day-of-week"),  # croniter: the whole week
        ("0 9 * * 5-0", "day-of-week"),
        ("0 22-6 * * *", "hour"),
    ],
)
def test_croniter_extensions_and_odd_ranges_are_refused(schedule: str, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field} field ") as caught:
        parse_cron(schedule)
    assert "'" in str(caught.value)  # quotes what was written


def test_seconds_and_year_fields_are_refused() -> None:
    for schedule in ("0 0 9 * * mon", "0 9 * * mon 2027"):
        with pytest.raises(ValueError, match="expected 5 fields"):
            parse_cron(schedule)


def test_a_schedule_that_never_runs_is_refused(tmp_path: Path) -> None:
    (issue,) = issues_of(minimal(tmp_path, extra='[digest]\nschedule = "0 9 31 2 *"'))
    assert issue.path == "digest.schedule"
    assert "never runs" in issue.message
    parse_cron("0 9 29 2 *")  # leap days do come


def test_sunday_is_0_and_7_as_in_cron() -> None:
    for schedule in ("0 9 * * 0", "0 9 * * 7", "0 9 * * sun", "0 9 * * SUN"):
        assert parse_cron(schedule).apscheduler_fields()["day_of_week"] == "sun"
    assert parse_cron("0 9 * * 5-7").days_of_week == frozenset({5, 6, 0})
    assert parse_cron("0 9 * * sat-sun").days_of_week == frozenset({6, 0})


def test_the_digest_schedule_object_keeps_the_expression(tmp_path: Path) -> None:
    digest = load_config(
        minimal(tmp_path, extra='[digest]\nschedule = "  30   8 * *  1-5 "'), env={}
    ).digest
    assert digest.enabled
    assert digest.schedule == "30 8 * * 1-5"
    assert digest.cron is not None
    assert digest.cron.expression == "30 8 * * 1-5"
    assert digest.cron.apscheduler_fields()["day_of_week"] == "mon,tue,wed,thu,fri"


# The digest is run by APScheduler from `apscheduler_fields()`; the meaning is croniter's.
# Both must fire at the same moments, DST changes included.
AGREEING = [
    "0 9 * * mon",
    "0 9 * * 0",
    "30 6 * * 0,7",
    "*/15 8-18/2 * jan-jun mon-fri",
    "*/20 * 1,15 * *",
    "5/10 7 * * SUN",
    "0 12 1-7 */3 *",
    "45 23 * * 5-7",
    "0 0 29 2 *",
    "0 9 * * sat-sun",
]


@pytest.mark.parametrize("schedule", AGREEING)
@pytest.mark.parametrize("tz", ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"])
def test_apscheduler_fires_when_cron_means(schedule: str, tz: str) -> None:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from apscheduler.triggers.cron import CronTrigger
    from croniter import croniter

    zone = ZoneInfo(tz)
    start = datetime(2026, 3, 1, tzinfo=zone)  # spans the spring DST changes
    trigger = CronTrigger(timezone=zone, **parse_cron(schedule).apscheduler_fields())
    cron = croniter(schedule, start)
    previous = start  # both give the first moment strictly after
    for _ in range(40):
        expected = cron.get_next(datetime)
        fired = trigger.get_next_fire_time(None, previous + timedelta(microseconds=1))
        assert fired is not None
        assert fired.timestamp() == expected.timestamp(), (schedule, tz, expected)
        previous = fired


# --------------------------------------------------------------------------- credentials


def test_env_password_overrides_the_file(tmp_path: Path) -> None:
    config = load_config(minimal(tmp_path), env={"CONSENSUS_BOT_PASSWORD": "from-env"})
    assert config.matrix.password is not None
    assert config.matrix.password.get_secret_value() == "from-env"
    assert config.matrix.password_source == "CONSENSUS_BOT_PASSWORD"


def test_env_access_token_overrides_a_password_in_the_file(tmp_path: Path) -> None:
    config = load_config(minimal(tmp_path), env={"CONSENSUS_BOT_ACCESS_TOKEN": "tok"})
    assert config.matrix.password is None
    assert config.matrix.access_token is not None
    assert config.matrix.access_token.get_secret_value() == "tok"


def test_both_env_credentials_is_an_error(tmp_path: Path) -> None:
    env = {"CONSENSUS_BOT_ACCESS_TOKEN": "tok", "CONSENSUS_BOT_PASSWORD": "pw"}
    assert paths_of(minimal(tmp_path), env) == ["matrix"]


def test_password_file_is_relative_to_the_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    (conf_dir / "secrets").mkdir()
    (conf_dir / "secrets" / "pw").write_text("  file-secret\n", encoding="utf-8")
    path = minimal(conf_dir, credential='password_file = "secrets/pw"')
    monkeypatch.chdir(tmp_path)  # not the config dir
    config = load_config(path, env={})
    assert config.matrix.password is not None
    assert config.matrix.password.get_secret_value() == "file-secret"
    assert config.matrix.password_file is not None
    assert config.matrix.password_file.path == conf_dir / "secrets" / "pw"
    assert config.storage.path == conf_dir / "data" / "consensus.db"


def test_access_token_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("syt_abc\n", encoding="utf-8")
    config = load_config(minimal(tmp_path, credential='access_token_file = "token"'), env={})
    assert config.matrix.access_token is not None
    assert config.matrix.access_token.get_secret_value() == "syt_abc"
    assert config.matrix.password is None


def test_missing_password_file_is_reported_unless_env_overrides(tmp_path: Path) -> None:
    path = minimal(tmp_path, credential='password_file = "nope"')
    (issue,) = issues_of(path)
    assert issue.path == "matrix.password_file"
    assert "nope" in issue.message
    config = load_config(path, env={"CONSENSUS_BOT_PASSWORD": "pw"})
    assert config.matrix.password_source == "CONSENSUS_BOT_PASSWORD"


def test_empty_password_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("\n", encoding="utf-8")
    assert paths_of(minimal(tmp_path, credential='password_file = "pw"')) == [
        "matrix.password_file"
    ]


def test_no_credential_is_an_error(tmp_path: Path) -> None:
    (issue,) = issues_of(minimal(tmp_path, credential=""))
    assert issue.path == "matrix"
    assert "no credential" in issue.message
    assert "CONSENSUS_BOT_PASSWORD" in issue.message


def test_two_credentials_is_an_error(tmp_path: Path) -> None:
    path = minimal(tmp_path, credential='password = "pw"\naccess_token = "tok"')
    (issue,) = issues_of(path)
    assert issue.path == "matrix"
    assert "exactly one credential" in issue.message


def test_password_and_password_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("x", encoding="utf-8")
    path = minimal(tmp_path, credential='password = "pw"\npassword_file = "pw"')
    assert paths_of(path) == ["matrix.password_file"]


def test_secret_is_hidden_in_repr(tmp_path: Path) -> None:
    config = load_config(minimal(tmp_path, credential='password = "hunter2"'), env={})
    assert "hunter2" not in repr(config)
    assert "hunter2" not in str(config)


# --------------------------------------------------------------------------- render


@pytest.mark.parametrize(
    ("credential", "env", "source"),
    [
        ('password = "hunter2"', {}, "# from matrix.password"),
        ('access_token = "hunter2"', {}, "# from matrix.access_token"),
        ('password_file = "pw"', {}, "# from matrix.password_file"),
        ("", {"CONSENSUS_BOT_PASSWORD": "hunter2"}, "# from CONSENSUS_BOT_PASSWORD"),
        ('password = "other"', {"CONSENSUS_BOT_ACCESS_TOKEN": "hunter2"}, "CONSENSUS_BOT_"),
    ],
)
def test_render_never_shows_the_secret(
    tmp_path: Path, credential: str, env: dict[str, str], source: str
) -> None:
    (tmp_path / "pw").write_text("hunter2", encoding="utf-8")
    config = load_config(minimal(tmp_path, credential=credential), env=env)
    text = render_config(config)
    assert "hunter2" not in text
    assert "other" not in text
    assert '"********"' in text
    assert source in text


def test_render_is_toml_with_every_section_and_defaults(tmp_path: Path) -> None:
    config = load_config(EXAMPLE, env={})
    text = render_config(config)
    data = tomllib.loads(text)
    assert set(data) == {"matrix", "storage", "group", "process", "digest", "publish"}
    assert data["storage"]["path"] == str(REPO / "data" / "consensus.db")
    assert data["matrix"]["device_id"] == "CONSENSUSBOT"
    assert data["matrix"]["password"] == "********"
    assert data["process"]["reminders"] == ["48h", "24h"]
    assert data["process"]["quorum"] == 0.5
    assert data["digest"]["schedule"] == "0 9 * * mon"
    assert data["group"]["members"][1]["region"] == "africa"


def test_render_round_trips_the_non_secret_values(tmp_path: Path) -> None:
    path = minimal(
        tmp_path,
        extra='space = "#s:example.org"\ntimezone = "Asia/Tokyo"\nself_apply = false\n'
        '[process]\ndeadline = "3w"\n[digest]\nschedule = ""\n',
    )
    config = load_config(path, env={})
    rendered = write(tmp_path, render_config(config), "rendered.toml")
    again = load_config(rendered, env={})
    assert again.group == config.group
    assert again.process == config.process
    assert again.digest == config.digest
    assert again.storage == config.storage


# --------------------------------------------------------------------------- file problems


def test_toml_syntax_error_reports_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[matrix]\nhomeserver = "https://x.org"\nuser_id = @bot:x.org\n')
    (issue,) = issues_of(path)
    assert issue.path == "(file)"
    assert "line 3" in issue.message


def test_missing_file_is_a_clear_issue(tmp_path: Path) -> None:
    (issue,) = issues_of(tmp_path / "absent.toml")
    assert issue.path == "(file)"
    assert "absent.toml" in issue.message
    assert "does not exist" in issue.message


# --------------------------------------------------------------------------- hums


def test_hum_min_defaults_to_five(tmp_path: Path) -> None:
    assert load_config(minimal(tmp_path), env={}).process.hum_min == 5
    assert load_config(EXAMPLE, env={}).process.hum_min == 5
    assert "hum_min = 5" in EXAMPLE.read_text(encoding="utf-8")


@pytest.mark.parametrize("value", [3, 4, 12, 1000])
def test_hum_min_accepts_three_and_more(tmp_path: Path, value: int) -> None:
    path = minimal(tmp_path, extra=f"[process]\nhum_min = {value}")
    assert load_config(path, env={}).process.hum_min == value


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("2", "at least 3"),
        ("0", "at least 3"),
        ("-5", "at least 3"),
        ("true", "whole number"),
        ("4.5", "whole number"),
        ("5.0", "whole number"),
        ('"5"', "whole number"),
    ],
)
def test_hum_min_below_three_or_not_a_whole_number_is_refused(
    tmp_path: Path, value: str, words: str
) -> None:
    issues = issues_of(minimal(tmp_path, extra=f"[process]\nhum_min = {value}"))
    assert [i.path for i in issues] == ["process.hum_min"]
    assert words in issues[0].message


def test_hum_min_is_rendered_and_round_trips(tmp_path: Path) -> None:
    config = load_config(minimal(tmp_path, extra="[process]\nhum_min = 7"), env={})
    text = render_config(config)
    assert tomllib.loads(text)["process"]["hum_min"] == 7
    again = load_config(write(tmp_path, text, "rendered.toml"), env={})
    assert again.process == config.process


# --------------------------------------------------------------------------- storage backend


def test_the_backend_defaults_to_sqlite(tmp_path: Path) -> None:
    config = load_config(minimal(tmp_path), env={})
    assert config.storage.backend == "sqlite"
    assert config.storage.dsn is None
    assert config.storage.failover_timeout_s == 10.0


def test_postgresql_takes_a_dsn_and_hides_its_password(tmp_path: Path) -> None:
    extra = (
        '[storage]\nbackend = "postgresql"\n'
        'dsn = "postgresql://bot:s3cret@db.example.org:5433/consensus"\nfailover_timeout = "20s"\n'
    )
    config = load_config(minimal(tmp_path, extra=extra), env={})
    assert config.storage.backend == "postgresql"
    assert config.storage.failover_timeout_s == 20.0
    text = render_config(config)
    assert "s3cret" not in text
    assert 'dsn = "postgresql://bot:********@db.example.org:5433/consensus"' in text
    assert 'backend = "postgresql"' in text


@pytest.mark.parametrize(
    ("storage", "path", "words"),
    [
        ('backend = "postgresql"', "storage.dsn", "required"),
        ('backend = "postgres"', "storage.backend", "sqlite"),
        ('backend = "postgresql"\ndsn = "mysql://x/y"', "storage.dsn", "PostgreSQL URL"),
        ('dsn = "postgresql://db/x"', "storage.dsn", "only used"),
        (
            'backend = "postgresql"\ndsn = "postgresql://db/x"\nfailover_timeout = "1s"',
            "storage.failover_timeout",
            "at least 3s",
        ),
    ],
)
def test_bad_storage_settings_name_their_key(
    tmp_path: Path, storage: str, path: str, words: str
) -> None:
    issues = issues_of(minimal(tmp_path, extra=f"[storage]\n{storage}\n"))
    assert [i.path for i in issues] == [path]
    assert words in issues[0].message


def test_a_bad_backend_exits_2_naming_the_key(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = minimal(tmp_path, extra='[storage]\nbackend = "postgresql"\n')
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "storage.dsn" in result.stderr


@pytest.mark.parametrize(
    ("user_id", "valid"),
    [
        ("@alice:example.org", True),
        ("@a:[::1]:8448", True),
        ("@Old=Style!:example.org", True),
        ("@a:-x-", False),
        ("@a:x-", False),
        ("@a:", False),
        ("alice:example.org", False),
        ("@a b:example.org", False),
        ("@" + "a" * 250 + ":x.org", False),
    ],
)
def test_one_user_id_grammar_for_config_commands_and_roster(
    tmp_path: Path, user_id: str, valid: bool
) -> None:
    """The config, the command parser and the roster import accept the same user IDs (they
    disagreed: `@a:-x-` passed the config and failed the others)."""
    from bot.domain.roster_import import parse_roster
    from commands import ParseFailure, parse

    path = minimal(
        tmp_path,
        extra=f'[[group.members]]\nuser_id = "{user_id}"\n'
        'stakeholder = "academia"\nregion = "europe"\n',
    )
    config_ok = not any("members" in p for p in _paths_or_none(path))
    parsed = parse(f"!cb member add {user_id} --stakeholder academia --region europe", "!cb", 0)
    command_ok = parsed is not None and not isinstance(parsed, ParseFailure)
    roster = parse_roster(f"user_id,stakeholder,region\n{user_id},academia,europe\n")
    roster_ok = not roster.problems
    assert (config_ok, command_ok, roster_ok) == (valid, valid, valid)


def _paths_or_none(path: Path) -> list[str]:
    try:
        load_config(path, env={})
    except ConfigError as exc:
        return [issue.path for issue in exc.issues]
    return []
