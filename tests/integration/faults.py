"""The crash harness: a burst of member actions while the bot is killed and restarted.

Ground truth comes from the homeserver, not from the bot: the ballot's live reactions
(the relations endpoint leaves redacted ones out) plus the members' commands read back
from the room's timeline. The bot's stored current positions must equal the positions
the domain rules give for that truth, and every position event the members sent must be
recorded exactly once.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

from bot.devtools.sim_member import SimMember, bot_message, reaction_to
from bot.domain.counting import Ballot, Redaction, count
from bot.domain.ledger import PositionInput, Source
from bot.domain.positions import LEGEND, position_for_reaction
from bot.domain.sense import Voter
from commands.parser import ParsedCommand, parse
from tests.integration.harness import BotProcess, Group, query

POSITION_COMMANDS = ("support", "no-objection", "concern", "abstain", "object", "withdraw")
EMOJI = [e for e, _ in LEGEND] + ["✅", "✋", "🎉"]  # 🎉 is no position: must be ignored


@dataclass
class BurstStats:
    """What the burst did, for the report line."""

    actions: int = 0
    kills: int = 0
    sent_position_events: set[str] = field(default_factory=set)
    commands: set[str] = field(default_factory=set)
    redacted: set[str] = field(default_factory=set)
    takeovers: list[float] = field(default_factory=list)  # seconds from kill to new active

    @property
    def live_position_events(self) -> set[str]:
        """Position events that still stand (a reaction redacted before the bot saw it is
        rightly never recorded: the server strips its content)."""
        return self.sent_position_events - self.redacted


async def open_request(group: Group) -> tuple[str, str]:
    """File a request, have every member join its room; returns (room, ballot event)."""
    chair = group.chair
    filing = await chair.say(
        group.main_room, f"!cb request {group.applicant.user_id} --deadline 14d Crash test."
    )
    await chair.wait_for(reaction_to(filing, "✅"), room_id=group.main_room, timeout=30)
    first = next(iter(group.members.values()))
    room = await first.wait_invite()
    for member in group.members.values():
        await member.wait_invite(lambda r: r == room)
        await member.join(room)
    ballot = await first.wait_for(bot_message("ballot"), room_id=room, timeout=30)
    return room, str(ballot["event_id"])


async def member_burst(
    member: SimMember, room: str, ballot: str, n: int, rng: random.Random, stats: BurstStats
) -> None:
    """`n` random actions: react, retract a reaction, or a position command."""
    live: dict[str, str] = {}  # key -> reaction event ID
    for _ in range(n):
        await asyncio.sleep(rng.uniform(0.0, 0.08))
        roll = rng.random()
        if roll < 0.45:
            key = rng.choice(EMOJI)
            if key in live:
                continue
            event_id = await member.react(room, ballot, key)
            if event_id:
                live[key] = event_id
                if position_for_reaction(key):
                    stats.sent_position_events.add(event_id)
        elif roll < 0.7 and live:
            key = rng.choice(sorted(live))
            event_id = live.pop(key)
            await member.redact(room, event_id)
            stats.redacted.add(event_id)
        else:
            name = rng.choice(POSITION_COMMANDS)
            reason = "" if name == "withdraw" else f" reason {rng.randint(1, 999)}"
            event_id = await member.say(room, f"!cb {name}{reason}")
            stats.sent_position_events.add(event_id)
            stats.commands.add(event_id)
        stats.actions += 1


async def killer(
    group: Group, kills: int, span: float, rng: random.Random, stats: BurstStats
) -> None:
    """Kill the bot with SIGKILL `kills` times at random moments within `span` seconds."""
    moments = sorted(rng.uniform(0.5, span) for _ in range(kills))
    start = asyncio.get_running_loop().time()
    for moment in moments:
        await asyncio.sleep(max(0.0, start + moment - asyncio.get_running_loop().time()))
        group.bot.kill()
        stats.kills += 1
        await asyncio.sleep(rng.uniform(0.1, 1.0))
        group.bot.start()
        await group.bot.wait_ready(timeout=30)


TAKEOVER_LOG = "active: this bot holds the lock"
STANDBY_LOG = "standby: another bot holds the lock"


async def wait_for_log(bot: BotProcess, text: str, timeout: float) -> float:
    """Wait until this run of the bot logged `text`; returns how long that took."""
    start = time.monotonic()
    while text not in bot.log_text(since_start=True):
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"no {text!r} within {timeout} s:\n{bot.log_text()[-3000:]}")
        if bot.proc is not None and bot.proc.poll() is not None:
            raise RuntimeError(f"bot exited with {bot.proc.returncode}:\n{bot.log_text()[-3000:]}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def failover_killer(
    bots: list[BotProcess],
    kills: int,
    span: float,
    rng: random.Random,
    stats: BurstStats,
    failover_timeout: float,
) -> None:
    """SIGKILL the active bot `kills` times within `span` seconds; each time the standby must
    take the lock within `failover_timeout`, and the killed one comes back as the standby."""
    moments = sorted(rng.uniform(0.5, span) for _ in range(kills))
    start = asyncio.get_running_loop().time()
    active, standby = bots
    for moment in moments:
        await asyncio.sleep(max(0.0, start + moment - asyncio.get_running_loop().time()))
        active.kill()
        stats.kills += 1
        took = await wait_for_log(standby, TAKEOVER_LOG, failover_timeout)
        stats.takeovers.append(took)
        await standby.wait_ready(timeout=30)
        active.start()
        await wait_for_log(active, STANDBY_LOG, 30)
        active, standby = standby, active


async def ground_truth(
    observer: SimMember, room: str, ballot: str, members: set[str]
) -> dict[str, str]:
    """Current positions per member computed from what the homeserver holds."""
    inputs: list[PositionInput] = []
    for ev in await observer.gateway.reactions(room, ballot):
        key = ev.get("content", {}).get("m.relates_to", {}).get("key", "")
        position = position_for_reaction(key)
        if position is not None and ev["sender"] in members:
            inputs.append(
                PositionInput(
                    ev["event_id"], ev["sender"], position, ev["origin_server_ts"], Source.REACTION
                )
            )
    for ev in await room_timeline(observer, room):
        body = ev.get("content", {}).get("body", "")
        if ev.get("type") != "m.room.message" or ev.get("sender") not in members:
            continue
        parsed = parse(body, "!cb", 0)
        if isinstance(parsed, ParsedCommand) and parsed.spec.name in POSITION_COMMANDS:
            position = (
                None if parsed.spec.name == "withdraw" else position_for_name(parsed.spec.name)
            )
            inputs.append(
                PositionInput(
                    ev["event_id"], ev["sender"], position, ev["origin_server_ts"], Source.COMMAND
                )
            )
    voters = [Voter(m, "", "") for m in sorted(members)]
    tally = count(Ballot(room, None), voters, {}, inputs, [])
    return {m: str(i.position) for m, i in tally.current.items()}


def position_for_name(name: str) -> Any:
    from bot.domain.positions import Position

    return Position(name)


async def room_timeline(observer: SimMember, room: str) -> list[dict[str, Any]]:
    """Every event of a room, oldest first (paged back through /messages)."""
    raw = await observer.gateway.sync(
        None, 0, {"room": {"rooms": [room], "timeline": {"limit": 1}}}
    )
    token = raw["rooms"]["join"][room]["timeline"].get("prev_batch")
    events = list(raw["rooms"]["join"][room]["timeline"]["events"])
    if observer.gateway.crypto is not None:  # the later pages are decrypted by `messages`
        events = observer.gateway.crypto.plain_events(room, events)
    while token:
        page, token = await observer.gateway.messages(room, token)
        events.extend(page)
    events.sort(key=lambda e: (e.get("origin_server_ts", 0), e.get("event_id", "")))
    return events


async def bot_positions(group: Group) -> tuple[dict[str, str], set[str], int]:
    """(current positions, recorded input event IDs, input rows) from the bot's database."""
    req = (await query(group, "SELECT room_id, closed_at FROM requests WHERE id = 1"))[0]
    voters = [
        Voter(r["user_id"], r["stakeholder"], r["region"])
        for r in await query(group, "SELECT * FROM eligible WHERE request_id = 1")
    ]
    rows = await query(group, "SELECT * FROM position_inputs WHERE request_id = 1")
    inputs = [
        PositionInput(
            r["event_id"],
            r["member"],
            None if r["position"] is None else position_for_name(r["position"]),
            r["ts"],
            Source(r["source"]),
            r["reason"],
            r["room_id"],
            r["recorded_at"],
        )
        for r in rows
    ]
    redactions = [
        Redaction(r["event_id"], r["redacts"], r["room_id"], r["sender"], r["ts"], r["recorded_at"])
        for r in await query(group, "SELECT * FROM redactions")
    ]
    # The bot's view, through the one counting rule (as the draft and the record see it).
    tally = count(Ballot(req["room_id"], req["closed_at"]), voters, {}, inputs, redactions)
    current = {m: str(i.position) for m, i in tally.current.items()}
    ids = [i.event_id for i in inputs]
    return current, set(ids), len(ids)


async def converge(
    group: Group, room: str, ballot: str, timeout: float = 90.0
) -> tuple[dict[str, str], dict[str, str]]:
    """Wait until the bot's positions equal the ground truth (or time out); returns both."""
    observer = next(iter(group.members.values()))
    members = {m.user_id for m in group.members.values()}
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if observer.gateway.crypto is not None:
            # The observer reads the members' encrypted commands only with the room keys
            # they sent it (to-device, through its own sync).
            await observer.sync(0)
        truth = await ground_truth(observer, room, ballot, members)
        current, _, _ = await bot_positions(group)
        if current == truth or asyncio.get_running_loop().time() > deadline:
            return current, truth
        await asyncio.sleep(0.5)


async def bot_messages_by_kind(observer: SimMember, room: str, bot_user: str) -> dict[str, int]:
    """How many messages of each `consensus_bot` kind the bot sent to a room."""
    counts: dict[str, int] = {}
    for ev in await room_timeline(observer, room):
        kind = ev.get("content", {}).get("consensus_bot", {}).get("kind")
        if ev.get("sender") == bot_user and ev.get("type") == "m.room.message" and kind:
            counts[kind] = counts.get(kind, 0) + 1
    return counts


async def replies_per_command(observer: SimMember, room: str, bot_user: str) -> dict[str, int]:
    """How many bot replies each command got (it must be at most one)."""
    counts: dict[str, int] = {}
    for ev in await room_timeline(observer, room):
        target = (
            ev.get("content", {}).get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id")
        )
        if ev.get("sender") == bot_user and target:
            counts[target] = counts.get(target, 0) + 1
    return counts
