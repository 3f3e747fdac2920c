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

import html
import json
import logging
from collections.abc import Iterable, Sequence

from bot.domain.mxid import server_of
from bot.domain.request import Request
from bot.domain.text import N_, Np_
from bot.i18n.catalog import Language
from bot.matrix import render
from bot.services.outbox import STRAGGLER, Outbox, dm
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


async def tell_applicant(
    out: Outbox, req: Request, text: str, event: str, lang: Language | None = None
) -> None:
    """A direct message to the request's applicant (who is never in the request's room),
    `text` said in `lang`, their language."""
    applicant = req.applicant.user_id
    assert applicant is not None
    await out.message(
        render.notice("reply", req.id, text, (applicant,), lang, event=event),
        room_id=dm(applicant),
        request_id=req.id,
    )


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
    # Stragglers of a restricted room wait behind what others wait for; in an invite-only
    # room the invites are what everyone waits for.
    purpose = STRAGGLER if seen.get("join_rule") == "restricted" else None
    for user_id in missing:
        await out.invite(user_id, request_id=item.request_id, purpose=purpose)
    roster = {m.user_id for m in await repo.active_members(settings.group_id)}
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


# --- notices for many ------------------------------------------------------------------

# Bytes of user IDs one event's `m.mentions` may carry: the homeserver refuses events over
# 64 KiB, and the body and HTML need their share. About 1,000 typical IDs per message.
MENTION_BYTES = 36_000


def mention_chunks(users: Sequence[str], budget: int = MENTION_BYTES) -> list[list[str]]:
    """`users` split into runs whose IDs fit one event's `m.mentions` (one run for a few
    hundred members)."""
    chunks: list[list[str]] = [[]]
    used = 0
    for user in users:
        size = len(user.encode()) + 4  # quotes, comma, space
        if chunks[-1] and used + size > budget:
            chunks.append([])
            used = 0
        chunks[-1].append(user)
        used += size
    return [c for c in chunks if c]


def _pill(user_id: str) -> str:
    # A matrix.to link to a user is what Element shows as a pill (with the display name).
    href = html.escape(f"https://matrix.to/#/{user_id}", quote=True)
    return f'<a href="{href}">{html.escape(user_id)}</a>'


def named(users: Sequence[str], lang: Language) -> tuple[str, str]:
    """(plain, HTML) list of the first MAX_NAMED users, then how many more."""
    shown = list(users[:MAX_NAMED])
    more = len(users) - len(shown)
    plain = ", ".join(shown)
    pills = ", ".join(_pill(u) for u in shown)
    if more:
        plain = lang._("%(names)s and %(n)s more", names=plain, n=lang.number(more))
        pills = lang.markup("%(names)s and %(n)s more", names=pills, n=lang.number(more))
    return plain, pills


_REMINDER = Np_(
    "⏰ The ballot of %(title)s closes %(when)s (in %(left)s) and %(n)s member has not taken a "
    "position yet: %(names)s.",
    "⏰ The ballot of %(title)s closes %(when)s (in %(left)s) and %(n)s members have not taken "
    "a position yet: %(names)s.",
)
_HOW = N_(
    "React to the ballot in %(room)s, or tell me by direct message: %(command)s (or "
    "no-objection, concern, object REASON, abstain, recuse)."
)


def group_reminders(
    req: Request,
    members: Sequence[str],
    when: str,
    left: str,
    prefix: str,
    link: str,
    lang: Language,
) -> list[render.Message]:
    """One reminder for many members (one per ~1,000), in the group's language: it names the
    first few, mentions all (`m.mentions`), and says how to take a position."""
    messages = []
    command = f"{prefix} support --request {req.number}"
    its_room = lang._("its room")
    for chunk in mention_chunks(sorted(members)):
        plain, pills = named(chunk, lang)
        title = render.title(req, lang)
        said = lang.ngettext(
            *_REMINDER,
            len(chunk),
            title=render.inline(title),
            when=when,
            left=left,
            names=plain,
        )
        how = lang._(_HOW, room=its_room, command=command)
        body = f"{said} {how} {link}".strip()
        n = len(chunk)
        said_html = lang.markup_plural(
            *_REMINDER,
            n,
            title=f"<b>{render.esc(title)}</b>",
            when=html.escape(when),
            left=html.escape(left),
            names=pills,
        )
        room = f'<a href="{html.escape(link, quote=True)}">{html.escape(its_room)}</a>'
        how_html = lang.markup(
            _HOW,
            room=room if link else html.escape(its_room),
            command=f"<code>{html.escape(command)}</code>",
        )
        html_ = render.rtl_html(lang, f"<p>{said_html} {how_html}</p>")
        data = {"members": n, "to": "room"}
        messages.append(render.Message("reminder", req.id, body, html_, data, tuple(chunk)))
    return messages


async def remind_in_room(
    repo: Repository,
    out: Outbox,
    settings: Settings,
    req: Request,
    members: Sequence[str],
    slot: str,
    when: str,
    left: str,
    now: int,
) -> int:
    """Queue the reminder for `members` as one message in the main room, where every member
    is (instead of a direct message each: 0.2 messages a second under default limits), and
    note each as reminded for `slot`. Returns how many were reminded."""
    if not members:
        return 0
    link = f"https://matrix.to/#/{req.room_id}?via={settings.server_name}" if req.room_id else ""
    reminders = group_reminders(req, members, when, left, settings.prefix, link, settings.lang)
    for msg in reminders:
        await out.message(msg, room_id=settings.main_room_id, request_id=req.id)
    for member in members:
        await repo.mark_reminded(req.id, slot, member, now)
    return len(members)
