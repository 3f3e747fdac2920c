"""What `check-config` checks beyond the file: can the bot reach, log in and find its rooms?

Two parts. `judge_room` is a pure decision: given what the homeserver said about the bot and
one configured room (`RoomSight`), is that fine for `consensus-bot run`? `preflight` does
the asking, through anything shaped like the `Gateway` (`PreflightGateway`), so tests can
hand it a fake one.

How the bot's standing in a room is learnt, and why:

- joined: `GET /joined_rooms`.
- invited: the `rooms.invite` section of a `/sync` without a token, which lists every pending
  invite of the account. `GET /rooms/{id}/state/m.room.member/{bot}` does not work here:
  Synapse answers 403 to a user who is only invited (unless the room is world-readable),
  because reading room state needs a current or past join.
- neither: the room summary (`GET /_matrix/client/v1/room_summary/{id}`, spec 1.15), which
  a homeserver shows for public rooms and rooms a user could join; its `join_rule` says
  whether `run`'s join will work without an invite (public, or restricted to a room the bot
  is in). Where the summary cannot be read, the room is taken as not joinable.

Only what will fail at start is a PROBLEM: the bot joins the main room and the Space at
start when it is invited (by anyone) or may join without an invite.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import aiohttp

from bot.config import Config
from bot.matrix.decode import decode_sync, invites_filter
from bot.matrix.gateway import Gateway, GatewayError


@dataclass(frozen=True, slots=True)
class Check:
    """One check and, when it failed, what the operator should do."""

    name: str
    ok: bool
    detail: str


class PreflightGateway(Protocol):
    """The part of `Gateway` that `preflight` uses."""

    async def connect(self, *, password: str | None, access_token: str | None) -> None: ...

    async def raw(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the Gateway's signature
    ) -> Any: ...

    async def sync(
        self, since: str | None, timeout_ms: int, sync_filter: dict[str, Any]
    ) -> Any: ...

    async def joined_rooms(self) -> list[str]: ...

    async def resolve_alias(self, alias: str) -> str: ...

    async def close(self) -> None: ...


# ------------------------------------------------------------------------- the decision

JOINABLE_WITHOUT_INVITE = frozenset({"public"})
RESTRICTED = frozenset({"restricted", "knock_restricted"})


@dataclass(frozen=True, slots=True)
class RoomSight:
    """What the homeserver said about the bot and one configured room.

    `room_id` is None when the configured alias does not resolve. `invited` is None when the
    pending invites could not be read (`invites_error` says why). `join_rule` and
    `allowed_room_ids` come from the room summary, read only when the bot is neither joined
    nor invited; `join_rule` is None when it could not be read.
    """

    room_id: str | None
    joined: bool = False
    invited: bool | None = False
    inviter: str | None = None
    invites_error: str | None = None
    join_rule: str | None = None
    allowed_room_ids: tuple[str, ...] = ()


def judge_room(
    key: str, room: str, sight: RoomSight, *, bot_user_id: str, joined_rooms: Iterable[str]
) -> Check:
    """Whether `run` will get the bot into `room` (configured at `key`), and if not, what to do.

    OK when the bot is in the room, invited to it (the bot joins at start), or may join it
    without an invite (a public room, or a restricted one whose allowed rooms include one the
    bot is in). A PROBLEM otherwise: a missing alias, or a room the bot cannot get into.
    """
    if sight.room_id is None:
        return Check(key, False, f"the alias {room} does not exist: check {key}.")
    if sight.joined:
        return Check(key, True, f"the bot is in {room}")
    if sight.invited:
        by = f" by {sight.inviter}" if sight.inviter else ""
        return Check(key, True, f"invited; the bot joins at start ({room}, invited{by})")
    if sight.join_rule in JOINABLE_WITHOUT_INVITE:
        return Check(key, True, f"not invited, but {room} is public; the bot joins at start")
    if sight.join_rule in RESTRICTED:
        via = sorted(set(sight.allowed_room_ids) & set(joined_rooms))
        if via:
            return Check(
                key,
                True,
                f"not invited, but {room} admits members of {via[0]}, where the bot is; "
                "the bot joins at start",
            )
    unknown = (
        f" (pending invites could not be read: {sight.invites_error})"
        if sight.invited is None
        else ""
    )
    if key == "group.space":
        todo = (
            f"invite {bot_user_id} to the Space from a chair's account and give it the power "
            "to add rooms (m.space.child); the bot joins at start"
        )
    else:
        todo = f"invite {bot_user_id} from a chair's account; the bot joins at start"
    return Check(key, False, f"the bot is not in {room} and not invited{unknown}: {todo}.")


# ------------------------------------------------------------------------- asking


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


async def _pending_invites(gateway: PreflightGateway, bot_user_id: str) -> dict[str, str | None]:
    """Room ID -> inviter of every pending invite of the bot."""
    raw = await gateway.sync(None, 0, invites_filter())
    batch = decode_sync(raw, bot_user_id, "", initial=True)
    return {invite.room_id: invite.inviter for invite in batch.invites}


def _server_of(room: str) -> str | None:
    """The server part of `!id:server` or `#alias:server`, if any (room v12 IDs have none)."""
    _, colon, server = room.partition(":")
    return server if colon and server else None


async def _summary(
    gateway: PreflightGateway, room_id: str, room: str
) -> tuple[str | None, tuple[str, ...]]:
    """The room's join rule and allowed rooms from its summary; (None, ()) when unreadable."""
    via = [s for s in {_server_of(room_id), _server_of(room)} if s]
    query = f"?{urlencode([('via', s) for s in sorted(via)])}" if via else ""
    path = f"/_matrix/client/v1/room_summary/{quote(room_id, safe='')}{query}"
    try:
        summary = await gateway.raw("GET", path)
    except GatewayError:
        return None, ()
    # The spec: "When not present, the room is assumed to be public."
    join_rule = summary.get("join_rule", "public")
    allowed = summary.get("allowed_room_ids")
    return (
        join_rule if isinstance(join_rule, str) else None,
        tuple(a for a in allowed if isinstance(a, str)) if isinstance(allowed, list) else (),
    )


async def _room_checks(gateway: PreflightGateway, config: Config) -> list[Check]:
    m = config.matrix
    # Each group's rooms, named by their key path as the file has them.
    tables = (
        [("group", config.group)]
        if config.group is not None
        else [(f"groups[{i}]", g) for i, g in enumerate(config.groups)]
    )
    rooms = [
        (key, room)
        for table, g in tables
        for key, room in ((f"{table}.main_room", g.main_room), (f"{table}.space", g.space))
        if room
    ]
    joined = set(await gateway.joined_rooms())
    resolved: dict[str, str | None] = {}
    for key, room in rooms:
        try:
            resolved[key] = await gateway.resolve_alias(room) if room.startswith("#") else room
        except GatewayError:
            resolved[key] = None
    invites: dict[str, str | None] = {}
    invites_error: str | None = None
    if any(rid is not None and rid not in joined for rid in resolved.values()):
        try:
            invites = await _pending_invites(gateway, m.user_id)
        except GatewayError as exc:
            invites_error = str(exc)
    checks: list[Check] = []
    for key, room in rooms:
        room_id = resolved[key]
        if room_id is None:
            sight = RoomSight(None)
        elif room_id in joined:
            sight = RoomSight(room_id, joined=True)
        elif room_id in invites:
            sight = RoomSight(room_id, invited=True, inviter=invites[room_id])
        else:
            join_rule, allowed = await _summary(gateway, room_id, room)
            sight = RoomSight(
                room_id,
                invited=None if invites_error else False,
                invites_error=invites_error,
                join_rule=join_rule,
                allowed_room_ids=allowed,
            )
        checks.append(judge_room(key, room, sight, bot_user_id=m.user_id, joined_rooms=joined))
    return checks


async def preflight(
    config: Config,
    *,
    gateway: PreflightGateway | None = None,
    versions: Callable[[str], Awaitable[str | None]] | None = None,
) -> list[Check]:
    """Run the reachability checks in order; later checks are skipped after a failure.

    `gateway` and `versions` default to the real ones; tests pass fakes.
    """
    m = config.matrix
    checks: list[Check] = []
    problem = await (versions or _versions)(m.homeserver)
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
    gw: PreflightGateway = gateway or Gateway(m.homeserver, m.user_id, m.device_id)
    try:
        password = m.password.get_secret_value() if m.password else None
        token = m.access_token.get_secret_value() if m.access_token else None
        try:
            await gw.connect(password=password, access_token=token)
            who = await gw.raw("GET", "/_matrix/client/v3/account/whoami")
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
        try:
            checks += await _room_checks(gw, config)
        except GatewayError as exc:
            checks.append(
                Check(
                    "rooms", False, f"the homeserver did not say which rooms the bot is in ({exc})."
                )
            )
        return checks
    finally:
        await gw.close()
