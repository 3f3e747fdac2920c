"""Token buckets per sender (pure): the admission bound, telling once, bounded memory."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.mxid import server_of
from bot.domain.ratelimit import (
    MEMBER_TIER,
    OUTSIDER_TIER,
    Bucket,
    RateLimiter,
    Tier,
    Verdict,
    full,
    is_idle,
    refill,
    take,
)

T0 = 1_800_000_000_000
tiers = st.builds(
    Tier,
    burst=st.integers(min_value=1, max_value=25),
    refill_ms=st.integers(min_value=1, max_value=120_000),
)
gaps = st.lists(st.integers(min_value=0, max_value=90_000), min_size=1, max_size=120)


def run(tier: Tier, gaps_ms: list[int]) -> list[tuple[int, Verdict]]:
    """One key asking at T0 + the running sum of the gaps; (time, verdict) per ask."""
    limiter = RateLimiter()
    now = T0
    out = []
    for gap in gaps_ms:
        now += gap
        out.append((now, limiter.check("@k:x", tier, now).verdict))
    return out


# ---- the tiers ----------------------------------------------------------------------------


def test_the_tiers() -> None:
    assert (MEMBER_TIER.burst, MEMBER_TIER.refill_ms) == (20, 3_000)
    assert (OUTSIDER_TIER.burst, OUTSIDER_TIER.refill_ms) == (3, 60_000)
    with pytest.raises(ValueError, match="burst"):
        Tier(0, 1)
    with pytest.raises(ValueError, match="refill_ms"):
        Tier(1, 0)


def test_an_outsider_gets_three_then_one_a_minute() -> None:
    limiter = RateLimiter()
    verdicts = [limiter.check("@o:x", OUTSIDER_TIER, T0 + i).verdict for i in range(6)]
    assert verdicts == [Verdict.ADMIT] * 3 + [Verdict.REFUSE] + [Verdict.REFUSE_SILENTLY] * 2
    refused = limiter.check("@o:x", OUTSIDER_TIER, T0 + 30_000)
    assert refused.verdict is Verdict.REFUSE_SILENTLY
    assert refused.retry_after_ms == 30_000
    assert limiter.check("@o:x", OUTSIDER_TIER, T0 + 60_000).admitted
    # Told again on the first refusal after that admission.
    assert limiter.check("@o:x", OUTSIDER_TIER, T0 + 60_001).verdict is Verdict.REFUSE


def test_a_member_gets_twenty_then_one_every_three_seconds() -> None:
    limiter = RateLimiter()
    admitted = sum(limiter.check("@m:x", MEMBER_TIER, T0).admitted for _ in range(25))
    assert admitted == 20
    assert limiter.check("@m:x", MEMBER_TIER, T0 + 2_999).verdict is Verdict.REFUSE_SILENTLY
    assert limiter.check("@m:x", MEMBER_TIER, T0 + 3_000).admitted


def test_keys_are_independent() -> None:
    limiter = RateLimiter()
    for _ in range(3):
        limiter.check("@a:x", OUTSIDER_TIER, T0)
    assert limiter.check("@a:x", OUTSIDER_TIER, T0).verdict is Verdict.REFUSE
    assert limiter.check("@b:x", OUTSIDER_TIER, T0).admitted


def test_earned_time_carries_over_but_a_full_bucket_earns_nothing() -> None:
    tier = Tier(burst=2, refill_ms=10)
    bucket, _ = take(None, tier, 0)  # 1 left
    bucket, _ = take(bucket, tier, 0)  # 0 left
    assert refill(bucket, tier, 15) == Bucket(1, 10)  # 5 ms toward the next token kept
    assert refill(bucket, tier, 1_000) == Bucket(2, 1_000)  # full: nothing banked
    assert take(refill(bucket, tier, 1_000), tier, 1_000)[0] == Bucket(1, 1_000)


def test_a_clock_that_goes_back_earns_nothing() -> None:
    tier = Tier(burst=1, refill_ms=10)
    bucket, first = take(None, tier, 1_000)
    assert first.admitted
    later, refused = take(bucket, tier, 500)  # the caller's clock stepped back
    assert refused.verdict is Verdict.REFUSE
    assert refused.retry_after_ms == 10
    assert later.at_ms == 1_000
    assert not take(later, tier, 1_009)[1].admitted
    assert take(later, tier, 1_010)[1].admitted


def test_server_of() -> None:
    assert server_of("@a:example.org") == "example.org"
    assert server_of("@a:[::1]:8448") == "[::1]:8448"
    assert server_of("nonsense") == ""


# ---- the properties -----------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(tiers, gaps)
def test_never_more_than_burst_plus_elapsed_times_rate_in_any_window(
    tier: Tier, gaps_ms: list[int]
) -> None:
    admitted = [t for t, verdict in run(tier, gaps_ms) if verdict is Verdict.ADMIT]
    for i, j in itertools.combinations_with_replacement(range(len(admitted)), 2):
        window = admitted[j] - admitted[i]
        assert j - i + 1 <= tier.burst + window // tier.refill_ms, (i, j, admitted)


@settings(max_examples=300, deadline=None)
@given(tiers, gaps)
def test_told_once_then_silent_until_a_token_returns(tier: Tier, gaps_ms: list[int]) -> None:
    told = False  # told since the last admission
    bucket: Bucket | None = None
    now = T0
    for gap in gaps_ms:
        now += gap
        had_a_token = bucket is None or refill(bucket, tier, now).tokens > 0
        bucket, decision = take(bucket, tier, now)
        if had_a_token:
            assert decision.verdict is Verdict.ADMIT
            assert decision.retry_after_ms == 0
            told = False
        else:
            assert decision.verdict is (Verdict.REFUSE_SILENTLY if told else Verdict.REFUSE)
            assert 0 < decision.retry_after_ms <= tier.refill_ms
            told = True


@settings(max_examples=200, deadline=None)
@given(tiers, gaps)
def test_an_unlimited_table_and_a_tiny_one_agree_for_one_key(
    tier: Tier, gaps_ms: list[int]
) -> None:
    big = run(tier, gaps_ms)
    limiter = RateLimiter(max_keys=1)
    now = T0
    small = []
    for gap in gaps_ms:
        now += gap
        small.append((now, limiter.check("@k:x", tier, now).verdict))
    assert small == big


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=40),  # which sender
            st.booleans(),  # member?
            st.integers(min_value=0, max_value=20_000),  # gap
        ),
        max_size=200,
    ),
    st.integers(min_value=1, max_value=12),
)
def test_memory_is_bounded_and_forgetting_never_refuses_more(
    asks: list[tuple[int, bool, int]], max_keys: int
) -> None:
    bounded = RateLimiter(max_keys=max_keys)
    unbounded = RateLimiter(max_keys=10**9)
    seen: set[str] = set()
    forgotten: set[str] = set()
    now = T0
    for sender, member, gap in asks:
        now += gap
        tier = MEMBER_TIER if member else OUTSIDER_TIER
        key = f"@u{sender}:x"
        a = bounded.check(key, tier, now)
        b = unbounded.check(key, tier, now)
        assert len(bounded) <= max_keys
        if key in forgotten:
            # Forgotten keys start full again: never refused where the full table admits.
            assert a.admitted or not b.admitted
        else:
            assert a == b
        seen.add(key)
        forgotten |= {k for k in seen if k not in bounded}


def test_idle_keys_are_forgotten_first() -> None:
    limiter = RateLimiter(max_keys=2)
    limiter.check("@idle:x", OUTSIDER_TIER, T0)  # will have refilled by T0 + 60 s
    limiter.check("@busy:x", OUTSIDER_TIER, T0 + 59_000)
    limiter.check("@busy:x", OUTSIDER_TIER, T0 + 59_000)
    limiter.check("@new:x", OUTSIDER_TIER, T0 + 60_000)
    assert "@idle:x" not in limiter
    assert "@busy:x" in limiter
    assert "@new:x" in limiter


def test_busy_keys_go_least_recently_seen_first_when_none_is_idle() -> None:
    limiter = RateLimiter(max_keys=2)
    for key in ("@a:x", "@b:x", "@c:x"):
        limiter.check(key, OUTSIDER_TIER, T0)
    assert list(limiter._buckets) == ["@b:x", "@c:x"]


def test_prune_forgets_every_idle_key() -> None:
    limiter = RateLimiter()
    for i in range(50):
        limiter.check(f"@u{i}:x", MEMBER_TIER, T0 + i * 1_000)
    # @u47, @u48 and @u49 spent a token less than 3 s ago.
    assert limiter.prune(T0 + 49_000) == 47
    assert len(limiter) == 3
    assert limiter.prune(T0 + 60_000) == 3
    assert len(limiter) == 0


def test_peek_and_is_idle() -> None:
    limiter = RateLimiter()
    assert limiter.peek("@x:x", OUTSIDER_TIER, T0) == full(OUTSIDER_TIER, T0)
    limiter.check("@x:x", OUTSIDER_TIER, T0)
    bucket = limiter.peek("@x:x", OUTSIDER_TIER, T0)
    assert bucket.tokens == 2
    assert not is_idle(bucket, OUTSIDER_TIER, T0 + 59_999)
    assert is_idle(bucket, OUTSIDER_TIER, T0 + 60_000)
    assert len(limiter) == 1
    with pytest.raises(ValueError, match="max_keys"):
        RateLimiter(max_keys=0)
