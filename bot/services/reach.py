"""How the bot reaches a large group under a homeserver's default rate limits (issue 25).

Synapse's defaults let one sender invite about 0.3 users a second after a burst of 10 and
send 0.2 messages a second after a burst of 10: inviting 500 members to a room takes about
half an hour, and 500 reminders by direct message about 40 minutes. So:

- A request's room is `restricted` to the members of the main room (which the bot keeps in
  step with the roster: invited on `member add`, kicked on `member remove`). Members join it
  themselves from the announcement's link, without an invite. Invites go only to those who
  cannot: members of servers configured as unable to (`group.invite_servers`), roster
  members not joined to the main room when the room opens, and everyone when the room came
  out invite-only (a room version or server that refused the restricted rule).
- A notice meant for many (a reminder) is one message in the main room, where every member
  is, with `m.mentions` naming the people it is for; direct messages stay for what is
  personal (hum acknowledgements, an objector told of a disposition).

Everything here runs inside the caller's transaction and only queues outbox rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence

from bot.domain.mxid import server_of
from bot.services.outbox import Outbox
from bot.services.settings import Settings
from storage.repo import OutboxItem, Repository

log = logging.getLogger(__name__)

MAX_NAMED = 40  # names spelt out in a notice's body; the rest are counted (m.mentions has all)
LOGGED = 20  # user IDs written to one log line at most


def must_invite(user_id: str, settings: Settings) -> bool:
    """Whether this user is invited even to a restricted room (their server is configured
    as unable to join one)."""
    return server_of(user_id) in settings.invite_servers


def _some(users: Sequence[str]) -> str:
    shown = ", ".join(users[:LOGGED])
    return shown + (f" and {len(users) - LOGGED} more" if len(users) > LOGGED else "")


async def invite_to_restricted(
    out: Outbox,
    settings: Settings,
    request_id: int,
    people: Iterable[str],
    invited: frozenset[str],
    allow_room: str,
) -> None:
    """Queue the invites a restricted request room needs: members of `invite_servers` now,
    then one read of who is in `allow_room` (see `on_absent`) for everyone else."""
    everyone = sorted(set(people) - {settings.bot_user_id})
    direct = [u for u in everyone if must_invite(u, settings)]
    if direct:
        log.info(
            "request %d: inviting %d member(s) of servers configured as unable to join "
            "restricted rooms (group.invite_servers): %s",
            request_id,
            len(direct),
            _some(direct),
        )
    for user_id in direct:
        if user_id not in invited:
            await out.invite(user_id, request_id=request_id)
    rest = [u for u in everyone if u not in direct]
    if rest:
        await out.invite_absent(rest, allow_room, request_id=request_id)


async def on_absent(
    repo: Repository, out: Outbox, settings: Settings, item: OutboxItem, result: str
) -> None:
    """The homeserver said who is joined to the allow room (and the request room's join
    rule): invite the members who cannot join by themselves, and say who and why."""
    assert item.request_id is not None
    seen = json.loads(result)
    joined = set(seen.get("joined", []))
    users: list[str] = list(item.payload.get("users", []))
    if seen.get("join_rule") != "restricted":
        missing, why = users, f"the room is {seen.get('join_rule') or 'invite-only'}"
    else:
        missing = [u for u in users if u not in joined]
        why = "not joined to the main room, so they cannot join it by themselves"
    if missing:
        log.info(
            "request %d: inviting %d member(s), %s: %s",
            item.request_id,
            len(missing),
            why,
            _some(missing),
        )
    for user_id in missing:
        await out.invite(user_id, request_id=item.request_id)
    roster = {m.user_id for m in await repo.active_members()}
    strangers = sorted(joined - roster - set(settings.chairs) - {settings.bot_user_id})
    if strangers and seen.get("join_rule") == "restricted":
        # They count for nothing (only the roster does), but they can read the request room.
        log.warning(
            "request %d: %d user(s) in the main room are not on the roster and can join "
            "request rooms (remove them from the main room, or add them): %s",
            item.request_id,
            len(strangers),
            _some(strangers),
        )


async def on_absent_failed(out: Outbox, item: OutboxItem) -> None:
    """Who is in the allow room could not be read: invite them all (slow, but nobody is
    left out)."""
    assert item.request_id is not None
    users = list(item.payload.get("users", []))
    log.warning(
        "request %d: could not read the main room's members; inviting all %d members",
        item.request_id,
        len(users),
    )
    for user_id in users:
        await out.invite(user_id, request_id=item.request_id)
