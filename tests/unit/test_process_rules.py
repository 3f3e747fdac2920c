"""Rough consensus you can defend: dispositions of substance, contest, a draft that says how
rough, confirm in the chair's words, insufficient participation, the minimum deadline,
reasons asked on every channel, and appeals."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.process import MIN_RATIONALE_CHARS, rationale_problem
from bot.matrix.events import PollResponse
from bot.services.export import export_record
from storage.repo import Repository
from tests.unit.test_engine import (
    ALICE,
    BOB,
    CAROL,
    CHAIR,
    DAVE,
    ERIN,
    MAIN,
    MALLORY,
    ROOM,
    World,
    make_world,
)

WHY = "The charter answers this: registry operators are explicitly welcome."
HOUR = 3_600_000


async def body(w: World, event_id: str) -> str:
    return str((await w.reply_to(event_id))["body"])


async def record(w: World) -> dict[str, Any]:
    async with w.db.transaction() as tx:
        return await export_record(Repository(tx), 1, group_name="G", quorum=0.5)


async def objecting(w: World, who: str = BOB) -> int:
    await w.apply(w.command(who, "!cb object No track record in Internet resources."))
    return int([o for o in await w.objections() if o.member == who][-1].id)


# ---- dispositions ------------------------------------------------------------------------


def test_a_rationale_needs_substance() -> None:
    assert rationale_problem("addressed", "x")
    assert rationale_problem("considered", "x")
    assert rationale_problem("ok ok ok ok ok ok ok ok", "x")
    assert rationale_problem("x" * (MIN_RATIONALE_CHARS - 1), "x")
    assert rationale_problem(WHY, "x") is None


async def test_a_disposition_of_substance_is_told_to_the_objector(opened: World) -> None:
    w = opened
    oid = await objecting(w)
    thin = w.command(CHAIR, f"!cb dispose {oid} addressed considered")
    await w.apply(thin)
    assert await w.acks(thin.event_id) == ["❌"]
    assert "rationale of substance" in await body(w, thin.event_id)
    good = w.command(CHAIR, f"!cb dispose {oid} addressed {WHY}")
    await w.apply(good)
    assert await w.acks(good.event_id) == ["✅"]
    assert (await w.reply_to(good.event_id))["m.mentions"] == {"user_ids": [BOB]}
    [dm] = [i for i in await w.messages() if i.room_id == f"dm:{BOB}"]
    assert "registry operators are explicitly welcome" in dm.payload["body"]
    assert f"!cb contest {oid} REASON" in dm.payload["body"]


async def test_a_duplicate_names_the_objection_it_duplicates(opened: World) -> None:
    w = opened
    first = await objecting(w, BOB)
    second = await objecting(w, CAROL)
    vague = w.command(CHAIR, f"!cb dispose {second} duplicate same thing")
    await w.apply(vague)
    assert "duplicate #N" in await body(w, vague.event_id)
    itself = w.command(CHAIR, f"!cb dispose {second} duplicate #{second}")
    await w.apply(itself)
    assert await w.acks(itself.event_id) == ["❌"]
    named = w.command(CHAIR, f"!cb dispose {second} duplicate #{first} Same point as Bob's.")
    await w.apply(named)
    assert await w.acks(named.event_id) == ["✅"]
    [o] = [o for o in await w.objections() if o.id == second]
    assert o.duplicate_of == first


# ---- contest -----------------------------------------------------------------------------


async def test_the_objector_contests_within_the_window_and_the_draft_is_edited(
    opened: World,
) -> None:
    w = opened
    oid = await objecting(w)
    await w.apply(w.reaction(ALICE, "👍"), w.reaction(CAROL, "👍"))
    await w.apply(w.command(CHAIR, "!cb close"))
    await w.apply(w.command(CHAIR, f"!cb dispose {oid} addressed {WHY}"))
    other = w.command(ALICE, f"!cb contest {oid} It is not answered.")
    await w.apply(other)
    assert "no objection" in await body(w, other.event_id)
    contest = w.command(BOB, f"!cb contest {oid} The charter does not say that at all.")
    await w.apply(contest)
    assert await w.acks(contest.event_id) == ["✅"]
    [o] = await w.objections()
    assert o.state.is_open
    # One draft per round, edited: the last edit proposes "no consensus yet" again.
    assert len(await w.messages("summary")) == 1
    edits = [i for i in await w.pending() if i.op == "edit"]
    assert edits[-1].payload["m.new_content"]["consensus_bot"]["proposed_outcome"] == (
        "no-consensus-yet"
    )
    # The history is in the record.
    kinds = [e["type"] for e in (await record(w))["entries"]]
    assert kinds.count("objection_disposed") == 1
    assert "objection_contested" in kinds


async def test_a_contest_after_the_window_or_the_decision_is_refused(opened: World) -> None:
    w = opened
    oid = await objecting(w)
    await w.apply(w.command(CHAIR, f"!cb dispose {oid} addressed {WHY}"))
    w.clock.advance(49 * HOUR)
    late = w.command(BOB, f"!cb contest {oid} I was away.")
    await w.apply(late)
    assert "time to contest it has passed" in await body(w, late.event_id)
    await w.apply(w.command(CHAIR, f"!cb decide admit {WHY}"))
    after = w.command(BOB, f"!cb contest {oid} Too late?")
    await w.apply(after)
    assert "appeal the decision instead" in await body(w, after.event_id)


# ---- the draft and confirm -----------------------------------------------------------------


async def test_a_draft_says_how_rough_and_confirm_needs_words_then(opened: World) -> None:
    w = opened
    await w.apply(w.reaction(ALICE, "👍"))
    objections = [await objecting(w, who) for who in (BOB, CAROL, DAVE)]
    for oid in objections:
        await w.apply(w.command(CHAIR, f"!cb dispose {oid} addressed {WHY}"))
    await w.apply(w.command(CHAIR, "!cb close"))
    [draft] = await w.messages("summary")
    text = draft.payload["body"]
    assert "Proposed: rough consensus to admit" in text
    assert "How rough: 3 in the rough, 1 in support" in text
    assert "Most participants are in the rough" in text
    bare = w.command(CHAIR, "!cb confirm")
    await w.apply(bare)
    assert "Most participants are in the rough" in await body(w, bare.event_id)
    worded = w.command(CHAIR, f"!cb confirm {WHY}")
    await w.apply(worded)
    assert await w.acks(worded.event_id) == ["✅"]
    [outcome, _, _] = await w.messages("outcome")  # request room, main room, applicant
    assert WHY in outcome.payload["body"]
    assert "may appeal until" in outcome.payload["body"]


async def test_insufficient_participation_is_extended_not_confirmed(opened: World) -> None:
    w = opened
    await w.apply(w.reaction(ALICE, "👍"))
    await w.apply(w.command(CHAIR, "!cb close"))
    [draft] = await w.messages("summary")
    assert "!cb extend 3d" in draft.payload["body"]
    confirm = w.command(CHAIR, "!cb confirm")
    await w.apply(confirm)
    assert "extend the ballot" in await body(w, confirm.event_id)
    extend = w.command(CHAIR, "!cb extend 2d")
    await w.apply(extend)
    assert await w.acks(extend.event_id) == ["✅"]
    assert (await w.request()).state.value == "open"
    assert len(await w.messages("reminder")) == 3  # bob, carol and dave, at once


async def test_the_minimum_deadline_holds_unless_the_chair_says_why(tmp_path: Path) -> None:
    w = await make_world(tmp_path / "bot.db", min_deadline_ms=72 * HOUR)
    try:
        await w.open_request()
        close = w.command(CHAIR, "!cb close")
        decide = w.command(CHAIR, f"!cb decide admit {WHY}")
        await w.apply(close, decide)
        assert await w.acks(close.event_id) == ["❌"]
        assert "--early RATIONALE" in await body(w, close.event_id)
        assert await w.acks(decide.event_id) == ["❌"]
        thin = w.command(CHAIR, "!cb close --early now")
        await w.apply(thin)
        assert "rationale of substance" in await body(w, thin.event_id)
        early = w.command(
            CHAIR, "!cb close --early 'The applicant withdrew their application today.'"
        )
        await w.apply(early)
        assert await w.acks(early.event_id) == ["✅"]
        [closed] = [e for e in (await record(w))["entries"] if e["type"] == "closed"]
        assert closed["early_rationale"].startswith("The applicant withdrew")
    finally:
        await w.db.close()


# ---- every channel asks for a reason ---------------------------------------------------


async def test_a_poll_objection_is_asked_for_its_reason_once(opened: World) -> None:
    w = opened
    async with w.db.transaction() as tx:
        await Repository(tx).update_request(1, poll_event_id="$poll1")
    for n in range(2):
        await w.apply(
            PollResponse(ROOM, f"$pr{n}", BOB, w.clock.now_ms() + n, "$poll1", ("object",))
        )
    [ask] = [i for i in await w.messages() if i.room_id == f"dm:{BOB}"]
    assert "please say why" in ask.payload["body"]
    assert "--request 1" in ask.payload["body"]
    await w.apply(w.command(CHAIR, "!cb close"))
    [draft] = await w.messages("summary")
    assert "Still without a reason: #1" in draft.payload["body"]


# ---- appeals -----------------------------------------------------------------------------


async def test_an_appeal_is_recorded_and_an_upheld_one_reopens(opened: World) -> None:
    w = opened
    await w.apply(w.reaction(ALICE, "👍"), w.reaction(BOB, "👍"), w.reaction(CAROL, "👌"))
    await w.apply(w.command(CHAIR, "!cb close"))
    await w.apply(w.command(CHAIR, "!cb confirm"))
    first = await record(w)
    outsider = w.command(MALLORY, "!cb appeal 1 I do not like it.", room="!m:x")
    await w.apply(outsider)
    assert "only members and the applicant" in await body(w, outsider.event_id)
    appeal = w.command(DAVE, "!cb appeal 1 Nobody from the Americas was heard.", room=MAIN)
    await w.apply(appeal)
    assert await w.acks(appeal.event_id) == ["✅"]
    notes = [i for i in await w.messages() if i.payload["consensus_bot"].get("event") == "appeal"]
    assert {i.room_id for i in notes} == {None, f"dm:{CHAIR}"}
    answer = w.command(CHAIR, f"!cb appeal-answer 1 upheld {WHY}", room=MAIN)
    await w.apply(answer)
    assert await w.acks(answer.event_id) == ["✅"]
    assert (await w.request()).state.value == "open"
    assert json.dumps(first)  # the first decision's record stays as it was
    # The next decision's record carries the appeal and its answer, chained to the first.
    await w.apply(w.command(CHAIR, f"!cb decide admit {WHY}"))
    second = await record(w)
    assert second["previous_head"] == first["head"]
    kinds = [e["type"] for e in second["entries"]]
    assert "appealed" in kinds
    assert "appeal_answered" in kinds


async def test_a_denied_appeal_joins_the_record_and_the_window_closes(opened: World) -> None:
    w = opened
    await w.apply(w.command(CHAIR, f"!cb decide decline {WHY}"))
    await w.apply(w.command(ERIN, "!cb appeal 1 My registry work was not considered.", room="!e:x"))
    await w.apply(w.command(CHAIR, f"!cb appeal-answer 1 denied {WHY}", room=MAIN))
    rec = await record(w)
    assert rec["segment"] == 2
    assert [e["state"] for e in rec["entries"] if e["type"] == "appeal_answered"] == ["denied"]
    w.clock.advance(15 * 24 * HOUR)
    late = w.command(ALICE, "!cb appeal 1 Second thoughts.", room=MAIN)
    await w.apply(late)
    assert "appeal window" in await body(w, late.event_id)


# ---- the property --------------------------------------------------------------------------

_DISPOSE = st.sampled_from(["addressed", "accommodated", "withdrawn"])
STEPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("react"),
            st.sampled_from([ALICE, BOB, CAROL, DAVE]),
            st.sampled_from(["👍", "👎", "🤔", "👌"]),
        ),
        st.tuples(st.just("dispose"), st.integers(1, 4), _DISPOSE, st.sampled_from(["ok", WHY])),
        st.tuples(st.just("contest"), st.sampled_from([BOB, CAROL, DAVE]), st.integers(1, 4)),
        st.tuples(st.just("close")),
        st.tuples(st.just("confirm"), st.sampled_from(["", WHY])),
        st.tuples(
            st.just("decide"), st.sampled_from(["admit", "decline"]), st.sampled_from(["ok", WHY])
        ),
    ),
    max_size=14,
)


async def run_steps(steps: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        w = await make_world(Path(tmp) / "bot.db")
        try:
            await w.open_request()
            for step in steps:
                w.clock.advance(60_000)
                kind = step[0]
                if kind == "react":
                    await w.apply(w.reaction(step[1], step[2]))
                elif kind == "dispose":
                    await w.apply(w.command(CHAIR, f"!cb dispose {step[1]} {step[2]} {step[3]}"))
                elif kind == "contest":
                    await w.apply(w.command(step[1], f"!cb contest {step[2]} Not answered at all."))
                elif kind == "close":
                    await w.apply(w.command(CHAIR, "!cb close"))
                elif kind == "confirm":
                    await w.apply(w.command(CHAIR, f"!cb confirm {step[1]}".strip()))
                else:
                    await w.apply(w.command(CHAIR, f"!cb decide {step[1]} {step[2]}"))
            rec = await record(w)
            for entry in rec["entries"]:
                if entry["type"] == "objection_disposed" and entry["state"] in (
                    "addressed",
                    "accommodated",
                ):
                    assert rationale_problem(entry["rationale"], "x") is None, entry
                if entry["type"] == "decided":
                    assert entry["rationale"]
            if rec["outcome"]["decision"] is not None:
                sense = rec["sense"]
                default = entry_default(rec)
                needs_words = sense["proposal"] != "rough-consensus-admit" or bool(
                    [e for e in rec["entries"] if e["type"] == "closed"] and _rough_warning(rec)
                )
                if needs_words:
                    assert not default, rec["outcome"]
        finally:
            await w.db.close()


def entry_default(rec: dict[str, Any]) -> bool:
    """True when the outcome carries only the bot's words, no chair's rationale."""
    return str(rec["outcome"]["rationale"]).startswith("confirmed the draft sense of the room")


def _rough_warning(rec: dict[str, Any]) -> bool:
    sense = rec["sense"]
    rough = len(sense["in_the_rough"])
    return rough > 0 and rough >= sense["counts"]["support"]


@settings(max_examples=40, deadline=None)
@given(STEPS)
def test_no_outcome_lacks_a_rationale_where_one_is_required(steps: list[tuple[Any, ...]]) -> None:
    asyncio.run(run_steps(steps))
