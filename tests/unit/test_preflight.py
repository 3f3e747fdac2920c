"""check-config's reachability checks, without a homeserver: the pure decision per room, and
the whole preflight against a fake gateway (what it asks, and what it concludes)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.config import Config, load_config
from bot.matrix import preflight as preflight_module
from bot.matrix.gateway import GatewayError
from bot.matrix.preflight import Check, RoomSight, judge_room, preflight

BOT = "@consensus:example.org"
CHAIR = "@chair:example.org"
MAIN = "!main:example.org"
SPACE = "!space:example.org"


# --------------------------------------------------------------------------- the decision


def judge(sight: RoomSight, key: str = "group.main_room", joined: tuple[str, ...] = ()) -> Check:
    room = SPACE if key == "group.space" else MAIN
    return judge_room(key, room, sight, bot_user_id=BOT, joined_rooms=joined)


def test_joined_is_ok() -> None:
    check = judge(RoomSight(MAIN, joined=True))
    assert check == Check("group.main_room", True, f"the bot is in {MAIN}")


def test_invited_is_ok_the_bot_joins_at_start() -> None:
    check = judge(RoomSight(MAIN, invited=True, inviter=CHAIR))
    assert check.ok
    assert check.detail.startswith("invited; the bot joins at start")
    assert CHAIR in check.detail
    assert judge(RoomSight(MAIN, invited=True)).detail.startswith("invited; the bot joins")


def test_a_public_room_needs_no_invite() -> None:
    check = judge(RoomSight(MAIN, join_rule="public"))
    assert check.ok
    assert "public" in check.detail


def test_a_restricted_room_is_ok_only_through_a_room_the_bot_is_in() -> None:
    sight = RoomSight(MAIN, join_rule="restricted", allowed_room_ids=(SPACE,))
    assert judge(sight, joined=(SPACE,)).ok
    assert not judge(sight, joined=("!other:example.org",)).ok
    knock = RoomSight(MAIN, join_rule="knock_restricted", allowed_room_ids=(SPACE,))
    assert judge(knock, joined=(SPACE,)).ok


@pytest.mark.parametrize("join_rule", ["invite", "knock", "private", None])
def test_not_invited_and_not_joinable_is_a_problem_saying_what_to_do(
    join_rule: str | None,
) -> None:
    check = judge(RoomSight(MAIN, join_rule=join_rule))
    assert not check.ok
    assert check.detail.startswith(f"the bot is not in {MAIN} and not invited")
    assert f"invite {BOT}" in check.detail


def test_the_space_problem_mentions_the_power_to_add_rooms() -> None:
    check = judge(RoomSight(SPACE), key="group.space")
    assert not check.ok
    assert check.name == "group.space"
    assert "m.space.child" in check.detail


def test_unreadable_invites_are_said() -> None:
    check = judge(RoomSight(MAIN, invited=None, invites_error="HTTP 502"))
    assert not check.ok
    assert "pending invites could not be read: HTTP 502" in check.detail


def test_a_missing_alias_names_the_key() -> None:
    check = judge_room(
        "group.main_room", "#nope:example.org", RoomSight(None), bot_user_id=BOT, joined_rooms=()
    )
    assert check == Check(
        "group.main_room",
        False,
        "the alias #nope:example.org does not exist: check group.main_room.",
    )


# --------------------------------------------------------------------------- with a fake gateway


class FakeGateway:
    """The homeserver as `preflight` sees it: rooms joined, invites pending, summaries."""

    def __init__(
        self,
        *,
        joined: tuple[str, ...] = (),
        invites: dict[str, str] | None = None,
        summaries: dict[str, dict[str, Any]] | None = None,
        aliases: dict[str, str] | None = None,
        whoami: str = BOT,
        login_error: GatewayError | None = None,
        sync_error: GatewayError | None = None,
    ) -> None:
        self.joined = list(joined)
        self.invites = invites or {}
        self.summaries = summaries or {}
        self.aliases = aliases or {}
        self.whoami = whoami
        self.login_error = login_error
        self.sync_error = sync_error
        self.filters: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.closed = False

    async def connect(self, *, password: str | None, access_token: str | None) -> None:
        if self.login_error:
            raise self.login_error

    async def raw(
        self, method: str, path: str, body: Any = None, *, timeout: float | None = None
    ) -> Any:
        self.paths.append(path)
        if path == "/_matrix/client/v3/account/whoami":
            return {"user_id": self.whoami}
        prefix = "/_matrix/client/v1/room_summary/"
        if path.startswith(prefix):
            from urllib.parse import unquote

            room_id = unquote(path[len(prefix) :].split("?")[0])
            if room_id in self.summaries:
                return self.summaries[room_id]
            raise GatewayError("Room not found or is not accessible", status=404)
        raise AssertionError(f"unexpected call {method} {path}")

    async def sync(self, since: str | None, timeout_ms: int, sync_filter: dict[str, Any]) -> Any:
        assert since is None  # the invite section of a full sync lists every pending invite
        self.filters.append(sync_filter)
        if self.sync_error:
            raise self.sync_error
        invite = {
            room_id: {
                "invite_state": {
                    "events": [
                        {
                            "type": "m.room.member",
                            "state_key": BOT,
                            "sender": inviter,
                            "content": {"membership": "invite"},
                        }
                    ]
                }
            }
            for room_id, inviter in self.invites.items()
        }
        return {"next_batch": "s1", "rooms": {"invite": invite}}

    async def joined_rooms(self) -> list[str]:
        return self.joined

    async def resolve_alias(self, alias: str) -> str:
        if alias not in self.aliases:
            raise GatewayError("Room alias not found", errcode="M_NOT_FOUND", status=404)
        return self.aliases[alias]

    async def close(self) -> None:
        self.closed = True


def config(tmp_path: Path, main_room: str = MAIN, space: str = "") -> Config:
    path = tmp_path / "config.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [matrix]
            homeserver = "https://matrix.example.org"
            user_id = "{BOT}"
            access_token = "tok"

            [group]
            name = "G"
            main_room = "{main_room}"
            space = "{space}"
            chairs = ["{CHAIR}"]
            """
        ),
        encoding="utf-8",
    )
    return load_config(path, env={})


async def answers(homeserver: str) -> str | None:
    return None


async def run(cfg: Config, gateway: FakeGateway) -> dict[str, Check]:
    checks = await preflight(cfg, gateway=gateway, versions=answers)
    assert gateway.closed
    return {c.name: c for c in checks}


async def test_invited_to_the_main_room_passes(tmp_path: Path) -> None:
    gateway = FakeGateway(invites={MAIN: CHAIR})
    checks = await run(config(tmp_path), gateway)
    assert [c.ok for c in checks.values()] == [True, True, True]
    assert checks["group.main_room"].detail.startswith("invited; the bot joins at start")
    # The sync asked for no timeline, state or presence: only the membership sections.
    (filt,) = gateway.filters
    assert filt["room"]["timeline"] == {"limit": 0}
    assert "rooms" not in filt["room"]  # a malformed ID there fails the whole sync
    assert filt["presence"] == {"types": []}


async def test_joined_rooms_need_no_sync(tmp_path: Path) -> None:
    gateway = FakeGateway(joined=(MAIN, SPACE))
    checks = await run(config(tmp_path, space=SPACE), gateway)
    assert checks["group.main_room"].ok
    assert checks["group.space"].ok
    assert gateway.filters == []


async def test_not_invited_to_a_private_room_is_a_problem(tmp_path: Path) -> None:
    gateway = FakeGateway(invites={"!elsewhere:example.org": CHAIR})
    checks = await run(config(tmp_path), gateway)
    main_room = checks["group.main_room"]
    assert not main_room.ok
    assert main_room.detail.startswith(f"the bot is not in {MAIN} and not invited")
    assert any(
        p.startswith("/_matrix/client/v1/room_summary/%21main%3Aexample.org") for p in gateway.paths
    )


async def test_a_public_main_room_and_an_invite_to_the_space(tmp_path: Path) -> None:
    gateway = FakeGateway(
        invites={SPACE: "@someone:example.org"},
        summaries={MAIN: {"room_id": MAIN, "join_rule": "public", "num_joined_members": 3}},
    )
    checks = await run(config(tmp_path, space=SPACE), gateway)
    assert checks["group.main_room"].ok
    assert "public" in checks["group.main_room"].detail
    assert checks["group.space"].ok
    assert checks["group.space"].detail.startswith("invited; the bot joins at start")


async def test_aliases_are_resolved_first(tmp_path: Path) -> None:
    gateway = FakeGateway(aliases={"#main:example.org": MAIN}, invites={MAIN: CHAIR})
    checks = await run(
        config(tmp_path, main_room="#main:example.org", space="#gone:example.org"), gateway
    )
    assert checks["group.main_room"].ok
    assert not checks["group.space"].ok
    assert "does not exist" in checks["group.space"].detail


async def test_a_failing_sync_is_reported_not_raised(tmp_path: Path) -> None:
    gateway = FakeGateway(sync_error=GatewayError("bad gateway", status=502))
    checks = await run(config(tmp_path), gateway)
    assert not checks["group.main_room"].ok
    assert "pending invites could not be read" in checks["group.main_room"].detail


async def test_login_problems_stop_before_the_rooms(tmp_path: Path) -> None:
    gateway = FakeGateway(login_error=GatewayError("Invalid token", status=401))
    checks = await run(config(tmp_path), gateway)
    assert list(checks) == ["homeserver", "login"]
    assert "check the access token" in checks["login"].detail
    other = await run(config(tmp_path), FakeGateway(whoami="@other:example.org"))
    assert "belongs to @other:example.org" in other["login"].detail


async def test_an_unreachable_homeserver_stops_at_once(tmp_path: Path) -> None:
    async def down(homeserver: str) -> str | None:
        return "ClientConnectorError"

    gateway = FakeGateway()
    checks = await preflight(config(tmp_path), gateway=gateway, versions=down)
    assert [c.name for c in checks] == ["homeserver"]
    assert not gateway.closed  # never opened


# --------------------------------------------------------------------------- the command


def test_check_config_exits_0_when_the_bot_is_only_invited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config(tmp_path)  # writes tmp_path/config.toml
    assert cfg.group.main_room == MAIN
    monkeypatch.setattr(preflight_module, "_versions", answers)
    monkeypatch.setattr(
        preflight_module, "Gateway", lambda *args: FakeGateway(invites={MAIN: CHAIR})
    )
    monkeypatch.delenv("CONSENSUS_BOT_PASSWORD", raising=False)
    monkeypatch.delenv("CONSENSUS_BOT_ACCESS_TOKEN", raising=False)
    assert main(["check-config", "--config", str(tmp_path / "config.toml")]) == 0
    err = capsys.readouterr().err
    assert "ok  group.main_room: invited; the bot joins at start" in err
    assert "PROBLEM" not in err


def test_check_config_exits_1_when_the_bot_cannot_get_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config(tmp_path)
    monkeypatch.setattr(preflight_module, "_versions", answers)
    monkeypatch.setattr(preflight_module, "Gateway", lambda *args: FakeGateway())
    monkeypatch.delenv("CONSENSUS_BOT_PASSWORD", raising=False)
    monkeypatch.delenv("CONSENSUS_BOT_ACCESS_TOKEN", raising=False)
    assert main(["check-config", "--config", str(tmp_path / "config.toml")]) == 1
    assert "PROBLEM  group.main_room: the bot is not in" in capsys.readouterr().err
