"""What `check-config` checks beyond the file: can the bot reach, log in and find its rooms?"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from bot.config import Config
from bot.matrix.gateway import Gateway, GatewayError


@dataclass(frozen=True, slots=True)
class Check:
    """One check and, when it failed, what the operator should do."""

    name: str
    ok: bool
    detail: str


async def _versions(homeserver: str) -> str | None:
    """None when the homeserver answers, else why not."""
    url = homeserver.rstrip("/") + "/_matrix/client/versions"
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp,
        ):
            if resp.status != 200:
                return f"it answered HTTP {resp.status}"
            await resp.json(content_type=None)
            return None
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return type(exc).__name__


async def preflight(config: Config) -> list[Check]:
    """Run the reachability checks in order; later checks are skipped after a failure."""
    m, g = config.matrix, config.group
    checks: list[Check] = []
    problem = await _versions(m.homeserver)
    if problem:
        checks.append(
            Check(
                "homeserver",
                False,
                f"{m.homeserver} does not answer as a Matrix homeserver ({problem}): check "
                "matrix.homeserver and that the server is running and reachable from here.",
            )
        )
        return checks
    checks.append(Check("homeserver", True, f"{m.homeserver} answers"))
    gateway = Gateway(m.homeserver, m.user_id, m.device_id)
    try:
        password = m.password.get_secret_value() if m.password else None
        token = m.access_token.get_secret_value() if m.access_token else None
        try:
            await gateway.connect(password=password, access_token=token)
            who = await gateway.raw("GET", "/_matrix/client/v3/account/whoami")
        except GatewayError as exc:
            what = "access token" if token else "password"
            checks.append(
                Check(
                    "login",
                    False,
                    f"{m.user_id} cannot log in ({exc}): check the {what} (and that the "
                    "account exists on this homeserver).",
                )
            )
            return checks
        if who.get("user_id") != m.user_id:
            checks.append(
                Check(
                    "login",
                    False,
                    f"the access token belongs to {who.get('user_id')}, not {m.user_id}: set "
                    "matrix.user_id to the bot's account or use the bot's token.",
                )
            )
            return checks
        checks.append(Check("login", True, f"logged in as {m.user_id}"))
        joined = set(await gateway.joined_rooms())
        for key, room in (("group.main_room", g.main_room), ("group.space", g.space)):
            if not room:
                continue
            try:
                room_id = await gateway.resolve_alias(room) if room.startswith("#") else room
            except GatewayError:
                checks.append(Check(key, False, f"the alias {room} does not exist: check {key}."))
                continue
            if room_id in joined:
                checks.append(Check(key, True, f"the bot is in {room}"))
            else:
                checks.append(
                    Check(
                        key,
                        False,
                        f"the bot is not in {room}: invite {m.user_id} from a chair's account "
                        "(the bot accepts invites from chairs and joins at start).",
                    )
                )
        return checks
    finally:
        await gateway.close()
