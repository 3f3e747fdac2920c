"""Real-layer test harness: a group of real Matrix users and the bot run as in production."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from bot.devtools.sim_member import SimMember
from bot.devtools.synapse import LocalSynapse, RegisteredUser

DEFAULT_MEMBERS: tuple[tuple[str, str, str], ...] = (
    ("alice", "academia", "europe"),
    ("bob", "civil-society", "africa"),
    ("carol", "technical-community", "asia-pacific"),
    ("dave", "private-sector", "americas"),
)


class BotProcess:
    """`python -m bot run --config …` in a subprocess, with its log in a file."""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    def start(self) -> None:
        """Start the bot (its output is appended to the log file)."""
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--config", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
        log.close()

    def log_text(self, *, since_start: bool = False) -> str:
        """The bot's log (only this run's part with `since_start`)."""
        if not self.log_path.exists():
            return ""
        data = self.log_path.read_bytes()
        return (
            data[self._log_offset :].decode(errors="replace")
            if since_start
            else data.decode(errors="replace")
        )

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until the bot logs that it runs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "Consensus Bot running" in self.log_text(since_start=True):
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"bot exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}"
                )
            await asyncio.sleep(0.1)
        raise TimeoutError(f"bot not ready within {timeout} s:\n{self.log_text()[-3000:]}")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: a crash at an arbitrary moment."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Group:
    """A collaboration group on a real homeserver, its config file and the bot process."""

    synapse: LocalSynapse
    workdir: Path
    bot_user: RegisteredUser
    chair: SimMember
    members: dict[str, SimMember]
    applicant: SimMember
    main_room: str
    config_path: Path
    db_path: Path
    bot: BotProcess
    clients: list[SimMember] = field(default_factory=list)
    dsn: str | None = None  # the PostgreSQL database, when the group's bot uses one

    async def close(self) -> None:
        """Stop the bot and close every client."""
        self.bot.stop()
        for client in self.clients:
            await client.close()


def config_toml(
    synapse: LocalSynapse,
    bot_user: RegisteredUser,
    main_room: str,
    chair: str,
    members: list[tuple[str, str, str]],
    db_path: Path,
    *,
    deadline: str = "14d",
    min_deadline: str = "1s",
    quorum: float = 0.5,
    reminders: tuple[str, ...] = (),
    digest: str = "",
    watchdog: str = "5m",
    hum_min: int = 5,
    encryption: str = "off",
    dsn: str | None = None,
    failover_timeout: str = "10s",
    group_extra: str = "",
    request_rooms: str = "invite",
) -> str:
    """A complete config file for a test group (unencrypted unless `encryption` says; on
    PostgreSQL when `dsn` is given, the key file staying beside `db_path` then).
    `group_extra`: more `[group]` lines, e.g. `dm_rooms_per_server = 3`. `request_rooms`:
    invite-only rooms unless a test asks for "restricted" (the default of the config, issue
    25): the scenarios written before it have members wait for an invite."""
    backend = (
        f'backend = "postgresql"\ndsn = "{dsn}"\nfailover_timeout = "{failover_timeout}"\n'
        if dsn
        else ""
    )
    seeds = "".join(
        f'\n[[group.members]]\nuser_id = "{u}"\nstakeholder = "{s}"\nregion = "{r}"\n'
        for u, s, r in members
    )
    return f"""
[matrix]
homeserver = "{synapse.base_url}"
user_id = "{bot_user.user_id}"
access_token = "{bot_user.access_token}"
device_id = "{bot_user.device_id}"
sync_watchdog = "{watchdog}"
encryption = "{encryption}"
crypto_store = "{db_path.parent / "crypto"}"

[storage]
path = "{db_path}"
{backend}
[group]
name = "Test Collaboration Group"
main_room = "{main_room}"
chairs = ["{chair}"]
request_rooms = "{request_rooms}"
{group_extra}
{seeds}
[process]
deadline = "{deadline}"
min_deadline = "{min_deadline}"
reminders = [{", ".join(f'"{r}"' for r in reminders)}]
quorum = {quorum}
hum_min = {hum_min}

[digest]
schedule = "{digest}"
"""


async def make_group(
    synapse: LocalSynapse,
    workdir: Path,
    tag: str,
    *,
    members: tuple[tuple[str, str, str], ...] = DEFAULT_MEMBERS,
    deadline: str = "14d",
    reminders: tuple[str, ...] = (),
    digest: str = "",
    rate_limit_bot: bool = False,
    watchdog: str = "5m",
    hum_min: int = 5,
    encryption: str = "off",
    dsn: str | None = None,
    failover_timeout: str = "10s",
    group_extra: str = "",
    request_rooms: str = "invite",
) -> Group:
    """Register a bot, a chair, members and an applicant; the chair makes the main room.

    With `encryption` other than "off", every person is an encrypting client with its own
    crypto store and the main room is created encrypted."""

    def register(name: str) -> RegisteredUser:
        return synapse.register(f"{tag}-{name}")

    bot_user = register("bot")
    users = {name: register(name) for name, _, _ in members}
    chair_user = register("chair")
    applicant_user = register("erin")
    # The people are never the bottleneck under test; the bot is, when `rate_limit_bot`.
    for user in [chair_user, applicant_user, *users.values()]:
        synapse.exempt_from_rate_limits(user.user_id)
    if not rate_limit_bot:
        synapse.exempt_from_rate_limits(bot_user.user_id)

    encrypted = encryption != "off"

    def client(user: RegisteredUser) -> SimMember:
        store = workdir / "people" / user.user_id.split(":")[0].lstrip("@") if encrypted else None
        return SimMember(
            synapse.base_url, user.user_id, user.access_token, user.device_id, crypto_store=store
        )

    chair = client(chair_user)
    sims = {name: client(u) for name, u in users.items()}
    applicant = client(applicant_user)
    clients = [chair, *sims.values(), applicant]
    await asyncio.gather(*(c.connect() for c in clients))
    # createRoom takes at most 10 invitees by default: invite one by one.
    main_room = await chair.create_room("Main room", [], encrypted=encrypted)
    for user in [bot_user, *users.values()]:
        await chair.gateway.invite(main_room, user.user_id)
    await asyncio.gather(*(s.join(main_room) for s in sims.values()))
    db_path = workdir / "consensus.db"
    config_path = workdir / "config.toml"
    config_path.write_text(
        config_toml(
            synapse,
            bot_user,
            main_room,
            chair_user.user_id,
            [(users[n].user_id, s, r) for n, s, r in members],
            db_path,
            deadline=deadline,
            reminders=reminders,
            digest=digest,
            watchdog=watchdog,
            hum_min=hum_min,
            encryption=encryption,
            dsn=dsn,
            failover_timeout=failover_timeout,
            group_extra=group_extra,
            request_rooms=request_rooms,
        )
    )
    bot = BotProcess(config_path, workdir / "bot.log")
    return Group(
        synapse,
        workdir,
        bot_user,
        chair,
        sims,
        applicant,
        main_room,
        config_path,
        db_path,
        bot,
        clients,
        dsn,
    )


async def query(group: Group, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Rows of the bot's database, whichever backend it uses (`?` placeholders)."""
    if group.dsn is None:
        with sqlite3.connect(group.db_path, timeout=30) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute(sql, params).fetchall()]
    from storage.postgres import to_pg

    conn = await asyncpg.connect(group.dsn)
    try:
        return [dict(r) for r in await conn.fetch(to_pg(sql), *params)]
    finally:
        await conn.close()


async def dm_with_bot(member: SimMember, group: Group) -> str:
    """A direct chat of `member` with the group's bot, once the bot has joined it."""
    room = await member.open_dm(group.bot_user.user_id)
    await member.wait_for(
        lambda ev: (
            ev.get("type") == "m.room.member"
            and ev.get("state_key") == group.bot_user.user_id
            and ev.get("content", {}).get("membership") == "join"
        ),
        room_id=room,
    )
    return room


@asynccontextmanager
async def running_group(
    synapse: LocalSynapse, workdir: Path, tag: str, **options: Any
) -> AsyncIterator[Group]:
    """A group (`make_group`'s options) with its bot started and ready; everything stopped
    afterwards."""
    group = await make_group(synapse, workdir, tag, **options)
    group.bot.start()
    await group.bot.wait_ready()
    try:
        yield group
    finally:
        await group.close()
