"""check-config against a real homeserver: each failure says what to do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.devtools.synapse import LocalSynapse
from tests.integration.harness import make_group

pytestmark = pytest.mark.real


def check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "check-config", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_check_config_reaches_homeserver_login_and_rooms(
    synapse: LocalSynapse, tmp_path: Path
) -> None:
    group = await make_group(synapse, tmp_path, "chk")
    try:
        # Invited but not joined yet: fine, the bot joins at start.
        result = check(group.config_path)
        assert result.returncode == 0, result.stderr
        assert "ok  homeserver" in result.stderr
        assert "ok  login" in result.stderr
        assert "group.main_room: invited; the bot joins at start" in result.stderr
        assert group.chair.user_id in result.stderr  # who invited it

        # Neither joined nor invited, in a private room: that will fail at start.
        elsewhere = await group.chair.create_room("Elsewhere", [])
        text = group.config_path.read_text()
        not_invited = tmp_path / "not-invited.toml"
        not_invited.write_text(text.replace(group.main_room, elsewhere))
        result = check(not_invited)
        assert result.returncode == 1
        assert "PROBLEM  group.main_room: the bot is not in" in result.stderr
        assert "not invited" in result.stderr
        assert f"invite {group.bot_user.user_id}" in result.stderr

        group.bot.start()
        await group.bot.wait_ready()
        result = check(group.config_path)
        assert result.returncode == 0, result.stderr
        assert "PROBLEM" not in result.stderr
        assert group.bot_user.access_token not in result.stdout + result.stderr

        text = group.config_path.read_text()
        bad_token = tmp_path / "bad-token.toml"
        bad_token.write_text(text.replace(group.bot_user.access_token, "not-a-token"))
        result = check(bad_token)
        assert result.returncode == 1
        assert "cannot log in" in result.stderr
        assert "check the access token" in result.stderr

        down = tmp_path / "down.toml"
        down.write_text(text.replace(synapse.base_url, "http://127.0.0.1:9"))
        result = check(down)
        assert result.returncode == 1
        assert "does not answer" in result.stderr
    finally:
        await group.close()
