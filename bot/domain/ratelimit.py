"""Token buckets per sender: how many commands the bot takes from whom, and when to say no.

Pure and stdlib-only: time is integer milliseconds passed in by the caller (no clock, no
I/O), so every answer follows from the inputs alone and tests need no sleeping.

A bucket holds at most `burst` tokens and gains one every `refill_ms`; each admitted command
takes one. This is the continuous token bucket, counted in whole tokens: the part of a token
already earned carries over, except when the bucket is full (a full bucket earns nothing).
So in any window of length L at most `burst + L // refill_ms` commands are admitted.

Two tiers: members are generous (a chair's busy hour must never hit it), outsiders strict
(anyone on any server can write to a room the bot is in, or open a DM).

Refusing is itself a message, so a refused sender is told once: the first refusal says
`REFUSE` (answer it), the following ones `REFUSE_SILENTLY` (say nothing, not even a
reaction) until a token has come back.

`RateLimiter` keeps one bucket per key (the sender's MXID, say) in a bounded table. A bucket
that has refilled to the brim holds no information (a new key starts full), so such idle keys
are evicted first; when the table is still over its bound, the least recently seen key goes,
which can only forgive that key early, never refuse anyone.

What this does not bound: many senders. A homeserver's admin can mint any number of user
IDs, each with its own outsider burst; the caller may add a second check keyed by the
sender's server (`bot.domain.mxid.server_of`) with a tier of its own.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from enum import StrEnum
from itertools import islice


@dataclass(frozen=True, slots=True)
class Tier:
    """A bucket's shape: at most `burst` tokens, one more every `refill_ms` milliseconds."""

    burst: int
    refill_ms: int

    def __post_init__(self) -> None:
        if self.burst < 1 or self.refill_ms < 1:
            raise ValueError("a tier needs burst >= 1 and refill_ms >= 1")


# Members: 20 commands at once, then one every 3 s.
MEMBER_TIER = Tier(burst=20, refill_ms=3_000)
# Outsiders (not on the roster): 3 at once, then one a minute.
OUTSIDER_TIER = Tier(burst=3, refill_ms=60_000)
# Reactions on ballots, per sender (a bucket of its own): a ballot needs one reaction and a
# change of mind a few. Past it a reaction still counts, but the bot answers nothing to it.
REACTION_TIER = Tier(burst=10, refill_ms=3_000)
# How fast a person can answer the bot, message after message (read the question, type or
# paste the answer): a bucket that refills at least this fast never tells them to wait.
HUMAN_PACE_MS = 2_000
# Someone whose application is under way answers the bot's intake questions (apply, affirm,
# answer, status) one after another: never told to slow down at a human pace; a script
# sending faster is refused after a short burst, and then silently.
APPLICANT_TIER = Tier(burst=6, refill_ms=HUMAN_PACE_MS)
# Direct chats the bot keeps with outsiders of one homeserver, by default
# (`group.dm_rooms_per_server`): a server can mint any number of users, each of whom could
# otherwise make the bot join rooms without end.
DM_ROOMS_PER_SERVER = 100
# How many keys a RateLimiter remembers at most.
MAX_KEYS = 10_000
# How many of the least recently seen keys eviction looks at for an idle one.
_EVICTION_SCAN = 16


class Verdict(StrEnum):
    """What to do with one command."""

    ADMIT = "admit"
    REFUSE = "refuse"  # the first refusal since the last admission: tell the sender, once
    REFUSE_SILENTLY = "refuse_silently"  # already told: no reply, no reaction


@dataclass(frozen=True, slots=True)
class Bucket:
    """The state of one key's bucket, as of `at_ms`.

    `tokens` are whole tokens; time already earned toward the next one is `now - at_ms`
    (while the bucket is not full, `at_ms` advances in steps of `refill_ms`). `told`: the
    key was refused and told so, and has not been admitted since.
    """

    tokens: int
    at_ms: int
    told: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict, and when the next token comes (0 when there is one now)."""

    verdict: Verdict
    retry_after_ms: int

    @property
    def admitted(self) -> bool:
        """True for ADMIT."""
        return self.verdict is Verdict.ADMIT


def full(tier: Tier, now_ms: int) -> Bucket:
    """A fresh bucket: what a key the limiter has never seen (or forgot) has."""
    return Bucket(tier.burst, now_ms)


def refill(bucket: Bucket, tier: Tier, now_ms: int) -> Bucket:
    """The bucket at `now_ms`: the tokens earned since `at_ms` added, at most `burst`.

    A clock that went backwards earns nothing (and does not move `at_ms` back).
    Tokens above `burst` (a key that moved to a smaller tier) are cut to `burst`.
    """
    elapsed = max(0, now_ms - bucket.at_ms)
    earned = elapsed // tier.refill_ms
    tokens = bucket.tokens + earned
    if tokens >= tier.burst:
        return Bucket(tier.burst, max(now_ms, bucket.at_ms), told=False)
    told = bucket.told and tokens == 0
    return Bucket(tokens, bucket.at_ms + earned * tier.refill_ms, told)


def take(bucket: Bucket | None, tier: Tier, now_ms: int) -> tuple[Bucket, Decision]:
    """Try to take one token at `now_ms`; the new bucket and the decision. Pure."""
    current = full(tier, now_ms) if bucket is None else refill(bucket, tier, now_ms)
    if current.tokens > 0:
        return replace(current, tokens=current.tokens - 1, told=False), Decision(Verdict.ADMIT, 0)
    wait = current.at_ms + tier.refill_ms - max(now_ms, current.at_ms)
    if current.told:
        return current, Decision(Verdict.REFUSE_SILENTLY, wait)
    return replace(current, told=True), Decision(Verdict.REFUSE, wait)


def is_idle(bucket: Bucket, tier: Tier, now_ms: int) -> bool:
    """Whether the bucket has refilled to the brim by `now_ms` (forgetting it changes
    nothing: an unknown key starts full)."""
    return refill(bucket, tier, now_ms).tokens >= tier.burst


class RateLimiter:
    """One bucket per key, at most `max_keys` keys. Deterministic: no clock, no I/O; the
    only state is the table, and each answer depends only on it and the arguments.

    Each key remembers the tier it was last checked with, for eviction; pass the tier that
    applies now on every call (a member who was an outsider gets the member tier at once).
    """

    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[Bucket, Tier]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def __contains__(self, key: object) -> bool:
        return key in self._buckets

    def check(self, key: str, tier: Tier, now_ms: int) -> Decision:
        """Take a token from `key`'s bucket at `now_ms`: admit, refuse (tell once), or
        refuse silently."""
        entry = self._buckets.get(key)
        bucket, decision = take(entry[0] if entry else None, tier, now_ms)
        self._buckets[key] = (bucket, tier)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self.max_keys:
            self._evict(now_ms)
        return decision

    def peek(self, key: str, tier: Tier, now_ms: int) -> Bucket:
        """`key`'s bucket as of `now_ms`, without taking a token or touching the table."""
        entry = self._buckets.get(key)
        return full(tier, now_ms) if entry is None else refill(entry[0], tier, now_ms)

    def prune(self, now_ms: int) -> int:
        """Forget every idle key; returns how many. O(keys): call it now and then."""
        idle = [k for k, (b, t) in self._buckets.items() if is_idle(b, t, now_ms)]
        for key in idle:
            del self._buckets[key]
        return len(idle)

    def _evict(self, now_ms: int) -> None:
        # Among the least recently seen few, forget an idle key (which costs nothing); when
        # none of them is idle, forget the least recently seen all the same (that can only
        # give it a fresh burst early). Bounded work per call; `prune` sweeps the rest.
        while len(self._buckets) > self.max_keys:
            victim = next(iter(self._buckets))
            for key, (bucket, tier) in islice(self._buckets.items(), _EVICTION_SCAN):
                if is_idle(bucket, tier, now_ms):
                    victim = key
                    break
            del self._buckets[victim]
