"""The chair's side of RFC 7282: what a disposition, a confirmation, an early close, a contest
and an appeal must carry before the bot accepts them.

Pure: standard library only. Every rule returns None when satisfied, or the sentence the
chair or member is told, as a `Phrase` (a catalog message and its values) that the edge says
in the reader's language.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from bot.domain.lifecycle import RequestState
from bot.domain.objections import Objection, ObjectionState
from bot.domain.positions import Position
from bot.domain.sense import MIN_GROUP_FOR_POSITIONS, Proposal, Sense, Voter
from bot.domain.text import N_, Phrase, Span, phrase

# "At least a sentence": a rationale must be this long and hold this many words of its own.
MIN_RATIONALE_CHARS = 30
MIN_RATIONALE_WORDS = 5
_WORD = re.compile(r"\w+", re.UNICODE)
# Words that say nothing on their own in a rationale (the state words and filler).
_EMPTY_WORDS = frozenset(
    {"addressed", "accommodated", "considered", "done", "ok", "okay", "fine", "yes", "no",
     "the", "a", "an", "it", "is", "was", "has", "been", "this", "that", "and", "of", "to"}
)  # fmt: skip


# What needs a rationale, for `rationale_problem` (the dispositions are named by their word).
EARLY = N_("acting before the minimum deadline")
DECISION = N_("a decision")
APPEAL_ANSWER = N_("an answer to an appeal")


def rationale_problem(text: str | None, what: Phrase | str) -> Phrase | None:
    """Why `text` is not a rationale of substance for `what` (a Phrase, or a message such as
    `DECISION`), or None when it is."""
    words = [w for w in _WORD.findall((text or "").lower()) if w not in _EMPTY_WORDS]
    if len((text or "").strip()) >= MIN_RATIONALE_CHARS and len(words) >= MIN_RATIONALE_WORDS:
        return None
    return phrase(
        N_(
            "%(what)s needs a rationale of substance: at least a sentence (%(chars)s "
            "characters, %(words)s words of its own) that says how the objection was "
            "answered — not just the word for the disposition"
        ),
        what=what if isinstance(what, Phrase) else Phrase(what),
        chars=MIN_RATIONALE_CHARS,
        words=MIN_RATIONALE_WORDS,
    )


def disposition_problem(state: ObjectionState, rationale: str | None) -> Phrase | None:
    """What an `accommodated` or `addressed` disposition lacks (others need no essay)."""
    if state in (ObjectionState.ADDRESSED, ObjectionState.ACCOMMODATED):
        # The disposition's own word, as typed in the command: not translated.
        return rationale_problem(rationale, phrase("`%(word)s`", word=state.value))
    return None


_DUPLICATE = re.compile(r"^\s*#?(\d+)\b\s*(.*)$", re.DOTALL)


def duplicate_target(rationale: str | None) -> tuple[int, str] | None:
    """`duplicate #3 …`: the objection it duplicates and the rest of the text."""
    found = _DUPLICATE.match(rationale or "")
    return None if found is None else (int(found.group(1)), found.group(2).strip())


def contest_problem(
    objection: Objection, state: RequestState, now: int, window_ms: int
) -> Phrase | None:
    """Why the objector cannot contest this objection's disposition now, or None."""
    if objection.state.is_open:
        return phrase(
            N_("objection #%(id)s is open: there is no disposition to contest"), id=objection.id
        )
    if state not in (RequestState.OPEN, RequestState.DRAFTED):
        return Phrase(N_("the request is no longer undecided: appeal the decision instead"))
    if objection.disposed_by == objection.member:
        return phrase(
            N_("you withdrew objection #%(id)s yourself: object again instead"), id=objection.id
        )
    disposed = objection.disposed_at or 0
    if now > disposed + window_ms:
        return phrase(
            N_(
                "objection #%(id)s was disposed of more than %(window)s ago: the time to "
                "contest it has passed"
            ),
            id=objection.id,
            window=Span(window_ms),
        )
    return None


def too_early(now: int, opened_at: int | None, min_deadline_ms: int) -> int:
    """How long until the ballot has been open `min_deadline_ms` (0 when it has)."""
    if opened_at is None:
        return 0
    return max(0, opened_at + min_deadline_ms - now)


def early_refusal(wait_ms: int, command: str, prefix: str) -> Phrase:
    """The refusal of an early close, deadline or decision, with the way around it."""
    return phrase(
        N_(
            "the ballot has not been open for the minimum time yet (%(wait)s to go), so every "
            "region can take part. If this cannot wait, say why: %(command)s"
        ),
        wait=Span(wait_ms),
        command=f"{prefix} {command} --early RATIONALE",
    )


@dataclass(frozen=True, slots=True)
class RoughShape:
    """How rough the rough consensus is: who is in the rough, by group and region."""

    in_the_rough: int
    support: int
    by_stakeholder: tuple[tuple[str, int | None], ...]  # None: group too small to show
    by_region: tuple[tuple[str, int | None], ...]
    warning: str | None  # the marked line (a catalog message), when the rationale must carry weight


def _grouped(
    members: Collection[str], voters: Sequence[Voter], key: str
) -> tuple[tuple[str, int | None], ...]:
    sizes = Counter(getattr(v, key) for v in voters)
    rough = Counter(getattr(v, key) for v in voters if v.user_id in members)
    return tuple(
        (name, n if sizes[name] >= MIN_GROUP_FOR_POSITIONS else None)
        for name, n in sorted(rough.items())
    )


def rough_shape(sense: Sense, voters: Sequence[Voter]) -> RoughShape:
    """The shape of the room behind a rough consensus (RFC 7282 §6: not a headcount, but
    the chair must be able to say why those in the rough are answered)."""
    rough = set(sense.in_the_rough)
    support = sense.counts.get(Position.SUPPORT, 0)
    by_stakeholder = _grouped(rough, voters, "stakeholder")
    by_region = _grouped(rough, voters, "region")
    warning = None
    if rough and len(rough) >= support:
        warning = (
            N_(
                "Most participants are in the rough: the chair's rationale must say why their "
                "objections are answered"
            )
            if 2 * len(rough) > sense.participated
            else N_(
                "As many are in the rough as support admitting, or more: the chair's rationale "
                "must say why their objections are answered"
            )
        )
    elif len(rough) >= 2:
        mostly = {
            "stakeholder": N_(
                "Those in the rough come mostly from one stakeholder group: the chair's "
                "rationale must say why their objections are answered"
            ),
            "region": N_(
                "Those in the rough come mostly from one region: the chair's rationale must "
                "say why their objections are answered"
            ),
        }
        for key, sentence in mostly.items():
            _, most = Counter(getattr(v, key) for v in voters if v.user_id in rough).most_common(1)[
                0
            ]
            if 2 * most > len(rough):
                warning = sentence
                break
    return RoughShape(len(rough), support, by_stakeholder, by_region, warning)


def confirm_problem(sense: Sense, shape: RoughShape, rationale: str | None) -> Phrase | None:
    """Why `confirm` cannot adopt this draft as it is, or None.

    Open objections block; insufficient participation is a reason to extend, not a verdict;
    a draft that is not a rough consensus to admit, or one whose rough is heavy, needs the
    chair's own rationale.
    """
    if sense.proposal is Proposal.NO_CONSENSUS_YET:
        return Phrase(N_("objections are still open: dispose of each, or decide with a rationale"))
    if sense.proposal is Proposal.INSUFFICIENT_PARTICIPATION:
        return Phrase(
            N_(
                "too few members took part to judge consensus: extend the ballot "
                "(extend DURATION, which reminds those who have not taken part), or decide "
                "with a rationale"
            )
        )
    if sense.proposal is not Proposal.ROUGH_CONSENSUS_ADMIT or shape.warning:
        why = (
            Phrase(shape.warning)
            if shape.warning
            else phrase(
                N_("the draft proposes %(proposal)s"), proposal=Phrase(sense.proposal.label)
            )
        )
        return rationale_problem(rationale, phrase(N_("confirming this draft (%(why)s)"), why=why))
    return None
