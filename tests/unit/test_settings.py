"""`Settings` is built from `Config` only (issue 22): no default of its own that could drift
from the config's, and no placeholder key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bot.config import Config
from bot.services.settings import Settings
from storage.keys import Keys

KEYS = Keys(hums=b"h" * 32, markers=b"m" * 32)


def _config(**process: object) -> Config:
    return Config.model_validate(
        {
            "matrix": {"homeserver": "https://x", "user_id": "@bot:x.org", "password": "p"},
            "group": {"name": "G", "main_room": "#main:x.org", "chairs": ["@c:x.org"]},
            "process": process,
        },
        context={"base_dir": Path("/nonexistent"), "env": {}},
    )


def test_settings_have_no_defaults_of_their_own() -> None:
    defaulted = [
        f.name
        for f in dataclasses.fields(Settings)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    ]
    assert defaulted == []


def test_settings_from_config_take_the_config_defaults_and_the_keys() -> None:
    config = _config()
    s = Settings.from_config(
        config, main_room_id="!m:x.org", keys=KEYS, space_id=None, bot_needs_power_entry=True
    )
    p = config.process
    assert (s.deadline_ms, s.min_deadline_ms, s.reminders_ms) == (
        p.deadline_ms,
        p.min_deadline_ms,
        p.reminders_ms,
    )
    assert (s.hum_min, s.quorum, s.appeal_window_ms) == (p.hum_min, p.quorum, p.appeal_window_ms)
    assert s.encryption == config.matrix.encryption == "on"
    assert s.retention_ms == config.storage.retention_ms
    assert s.dm_rooms_per_server == config.group.dm_rooms_per_server
    assert (s.hum_key, s.marker_key) == (KEYS.hums, KEYS.markers)
    assert (s.main_room_id, s.server_name, s.bot_needs_power_entry) == ("!m:x.org", "x.org", True)
    assert s.digest_cron is not None  # the default weekly digest


def test_settings_from_config_follow_what_the_operator_wrote() -> None:
    s = Settings.from_config(
        _config(deadline="3d", hum_min=7, reminders=["1h"]),
        main_room_id="!m:x.org",
        keys=KEYS,
        space_id="!space:x.org",
        bot_needs_power_entry=False,
    )
    assert (s.deadline_ms, s.hum_min, s.reminders_ms) == (3 * 86_400_000, 7, (3_600_000,))
    assert s.space_id == "!space:x.org"
