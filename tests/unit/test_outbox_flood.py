"""A flood of reactions against the outbox (issue 21, item 2).

Reactions cost at most one pending tidy-up per member and ballot and are never redacted
twice; reactions past their sender's limit count but are not answered; the outbox sends
urgent items (outcomes, drafts, acknowledgements) before bulk ones (tidy-ups, tallies,
reminders, digests), four to one, and a later edit of a message replaces an earlier one
still waiting. The same against Synapse's default rate limits: tests/integration/
test_rate_limits.py (`flood`)."""

from __future__ import annotations

from typing import Any

from bot.domain.positions import Position
from bot.domain.ratelimit import REACTION_TIER
from bot.matrix import render
from bot.services.outbox import (
    DRAFT,
    TALLY,
    URGENT_PER_BULK,
    Doorbell,
    Outbox,
    OutboxSender,
    pick,
    urgent,
)
from bot.services.plans import AfterCommit
from storage.repo import OutboxItem, Repository
from tests.unit.test_engine import ALICE, BOB, ROOM, World

KEYS = ("👍", "🤔", "👎")


class _Recorder:
    """Just enough of a gateway to send anything: remembers what went out, in order."""

    user_id = "@bot:x"

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []  # (op, what): a kind, a reaction key, a target

    async def encrypts(self, room_id: str) -> bool:
        return False

    async def send_message(
        self, room_id: str, content: dict[str, Any], txn_id: str, event_type: str = ""
    ) -> str:
        new = content.get("m.new_content", content)
        self.sent.append(("edit" if "m.new_content" in content else "message", _kind(new)))
        return f"$m{len(self.sent)}"

    async def send_reaction(self, room_id: str, target: str, key: str, txn_id: str) -> str:
        self.sent.append(("reaction", key))
        return f"$r{len(self.sent)}"

    async def redact(self, room_id: str, target: str, txn_id: str, reason: str = "") -> str:
        self.sent.append(("redact", target))
        return f"$x{len(self.sent)}"

    async def put_state(
        self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = ""
    ) -> None:
        self.sent.append(("state", event_type))

    def redacted(self) -> list[str]:
        return [str(what) for op, what in self.sent if op == "redact"]


def _kind(content: dict[str, Any]) -> str:
    meta = content.get("consensus_bot")
    return str(meta.get("kind")) if isinstance(meta, dict) else ""


def _sender(w: World, gateway: _Recorder) -> OutboxSender:
    return OutboxSender(w.db, gateway, w.services.hooks, w.clock, Doorbell())  # type: ignore[arg-type]


async def _tidy_ups(w: World) -> list[OutboxItem]:
    return [i for i in await w.pending() if i.op == "redact"]


async def _clear(w: World) -> None:
    """Forget what the opening queued: the tests look at what comes after."""
    async with w.db.transaction() as tx:
        await tx.execute("UPDATE outbox SET state = 'sent' WHERE state = 'pending'")


async def test_a_flood_of_reactions_queues_one_tidy_up_per_member(opened: World) -> None:
    w = opened
    await _clear(w)
    flood = [w.reaction(ALICE, KEYS[n % 3]) for n in range(200)]
    for start in range(0, 200, 10):  # twenty sync batches, nothing sent in between
        await w.apply(*flood[start : start + 10])
        await w.apply(w.reaction(BOB, KEYS[start // 10 % 3]))
        tidy = await _tidy_ups(w)
        assert len([i for i in tidy if i.purpose == f"tidy:{ALICE}"]) == 1
        assert len([i for i in tidy if i.purpose == f"tidy:{BOB}"]) <= 1
    assert (await w.positions())[ALICE] is Position.CONCERN  # the 200th: 🤔 (n = 199)
    gateway = _Recorder()
    await _sender(w, gateway).drain()
    redacted = gateway.redacted()
    assert len(redacted) == len(set(redacted))  # never the same reaction twice
    mine = {r.event_id for r in flood}
    # Every superseded reaction went, one tidy-up after another; the current one stays.
    assert {r for r in redacted if r in mine} == mine - {flood[-1].event_id}
    assert await _tidy_ups(w) == []
    assert (await w.positions())[ALICE] is Position.CONCERN


async def test_a_flood_of_toggles_is_never_redacted_twice(opened: World) -> None:
    """Toggling (add, remove, add, …) leaves the bot nothing to tidy; a reaction its author
    removed while its tidy-up waited is not redacted again."""
    w = opened
    await _clear(w)
    for _ in range(40):
        added = w.reaction(ALICE, "👍")
        await w.apply(added)
        await w.apply(w.redaction(ALICE, added.event_id))
    assert await _tidy_ups(w) == []
    # A change of mind; the old reaction removed by its author after the tidy-up was queued.
    old = w.reaction(ALICE, "👍")
    await w.apply(old)
    await w.apply(w.reaction(ALICE, "👎"))
    [queued] = await _tidy_ups(w)
    assert queued.target == old.event_id
    await w.apply(w.redaction(ALICE, old.event_id))
    gateway = _Recorder()
    await _sender(w, gateway).drain()
    assert gateway.redacted() == []
    assert await _tidy_ups(w) == []
    assert (await w.positions())[ALICE] is Position.OBJECT


async def test_a_flood_of_reactions_past_the_limit_counts_but_is_not_answered(
    opened: World,
) -> None:
    """Each 👎 after a 👍 opens a new objection, and each would ask for its reason: past
    the sender's reaction allowance the positions still count, unanswered."""
    w = opened
    await _clear(w)
    for n in range(60):
        await w.apply(w.reaction(ALICE, "👎" if n % 2 == 0 else "👍"))
    asks = [i for i in await w.messages("reply") if "please say why" in i.payload["body"]]
    assert 1 <= len(asks) <= REACTION_TIER.burst
    assert (await w.positions())[ALICE] is Position.SUPPORT  # the last one, all the same
    await w.apply(w.reaction(ALICE, "👎"))
    assert (await w.positions())[ALICE] is Position.OBJECT


async def test_a_flood_of_bulk_items_does_not_hold_back_the_draft(opened: World) -> None:
    w = opened
    await _clear(w)
    now = w.clock.now_ms()
    async with w.db.transaction() as tx:
        await Repository(tx).update_request(1, tally_event_id="$tally1")
        out = Outbox(Repository(tx), now, AfterCommit())
        for n in range(30):  # queued first: a backlog of tidy-ups and tally edits
            await out.redact(f"$old{n}", request_id=1, reason="superseded")
            tally = render.Message("tally", 1, "tally", "tally")
            await out.edit(tally, TALLY, request_id=1)
        draft = render.Message("summary", 1, "draft", "draft")
        await out.message(draft, request_id=1, purpose=DRAFT)
        for n in range(8):  # then acknowledgements of commands
            await out.react("✅", f"$cmd{n}", room_id=ROOM)
    gateway = _Recorder()
    await _sender(w, gateway).drain()
    ops = [op for op, _ in gateway.sent]
    assert gateway.sent[0] == ("message", "summary")  # first, though queued after 60 others
    # Urgent first, four to one while both wait (a superseded edit is dropped, not sent).
    four = ["reaction"] * 4
    assert ops[:10] == ["message", *four[:3], "redact", *four, "redact"]
    # A later edit of the tally replaced every earlier one still waiting: one edit went.
    assert ops.count("edit") == 1
    assert ops.count("redact") == 30


def _item(n: int, op: str, *, request_id: int | None = 1, **extra: Any) -> OutboxItem:
    payload: dict[str, Any] = extra.pop("payload", {})
    return OutboxItem(n, f"t{n}", op, request_id, extra.get("room_id"), None, None, payload, 0)


def test_flood_priorities_are_round_robin_and_keep_dependencies() -> None:
    ballot = {"consensus_bot": {"kind": "ballot"}}
    tally = {"consensus_bot": {"kind": "tally"}}
    reminder = {"consensus_bot": {"kind": "reminder"}}
    assert urgent(_item(1, "message", payload=ballot))
    assert not urgent(_item(2, "message", payload=tally))
    assert not urgent(_item(3, "message", payload=reminder))
    assert not urgent(_item(4, "redact"))
    # Round robin: URGENT_PER_BULK urgent items, then the oldest bulk one.
    items = [_item(1, "redact", request_id=2), _item(2, "message", payload=ballot)]
    assert pick(items, 0).id == 2
    assert pick(items, URGENT_PER_BULK).id == 1
    # A bulk item never overtakes an earlier urgent one of its request (a room, a ballot).
    room = _item(1, "create_room", request_id=3)
    items = [room, _item(2, "message", request_id=3, payload=tally)]
    assert pick(items, URGENT_PER_BULK) is room
    # Nothing urgent waits: bulk goes at once.
    assert pick([_item(5, "redact")], 0).id == 5
