"""THE table of commands. Parsing, usage lines, `!cb help` and the README reference derive from it.

`TABLE` holds every entry; `COMMANDS` is its commands without the front words (`vote`), which
the parser turns into the command they name and which no handler ever sees.

Order matters: it is the order of `!cb help` within each section. Examples are written without
the prefix; the tests parse every one of them.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Mapping
from types import MappingProxyType

from bot.domain.lifecycle import Outcome
from bot.domain.objections import ObjectionState
from bot.domain.taxonomy import REGIONS, STAKEHOLDER_GROUPS
from bot.domain.text import N_
from commands.converters import (
    Applicant,
    Choice,
    DurationArg,
    PositiveInt,
    UserId,
    WhenArg,
    Word,
)
from commands.spec import (
    ANYWHERE,
    CommandSpec,
    Executor,
    Option,
    Place,
    Positional,
    Rest,
    Role,
    Section,
)

# ---- shared parameters -------------------------------------------------------------------

_REQUEST_NUMBER = PositiveInt(metavar="N", what=N_("request number"))

REQUEST_OPTION = Option(
    "request",
    _REQUEST_NUMBER,
    N_(
        "the request number, or #N as the first word; needed in a direct message, implied in a "
        "request's room"
    ),
    hash_word=True,
)
_REQUEST_POSITIONAL = Positional(
    "request",
    _REQUEST_NUMBER,
    N_("the request number; in a request's room it defaults to that request"),
    required=False,
)
_STAKEHOLDER = Option(
    "stakeholder",
    Choice(*STAKEHOLDER_GROUPS, metavar="GROUP"),
    N_("stakeholder group: %(choices)s"),
)
_REGION = Option("region", Choice(*REGIONS, metavar="REGION"), N_("region: %(choices)s"))
_ORG = Option("org", Word(metavar="ORG"), N_("organisation (quote it when it has spaces)"))
_NAME = Option("name", Word(metavar="NAME"), N_("the name to show (quote it when it has spaces)"))
_COUNTRY = Option(
    "country",
    Word(metavar="COUNTRY"),
    N_("country: a name or ISO 3166-1 code (the region follows from it)"),
)
_KIND = Option(
    "as", Choice("individual", "organisation"), N_("applying as an individual or an organisation")
)
_PUBLISH = Option(
    "publish",
    Choice("yes", "no"),
    N_(
        "may your name and organisation be published with the decision (no: the public page says "
        "'an individual/organisation from <country>')"
    ),
)
_REPRESENTATIVE = Option(
    "representative", Word(metavar="WHO"), N_("for an organisation: who represents it (quote it)")
)
_BACKGROUND = Option(
    "background",
    Word(metavar="TEXT"),
    N_(
        "the Internet resources and roles, with links: RFCs, RIR or registry roles, operator or "
        "policy work, publications (quote it)"
    ),
)
_EARLY = Option(
    "early",
    Word(metavar="RATIONALE"),
    N_("act before the minimum deadline has passed, and say why (quote it); it is recorded"),
)

# Said by every position command after its own sentence; `commands.help.details` translates
# the two parts apart, so the catalogs hold this text once.
POSITION_DETAILS = N_(
    "In a request's room this applies to that request; in a direct message to the bot add "
    "--request N, or start with #N (support #7 Good work). Your latest position is the one "
    "that counts, and you can also react to the ballot instead. Only members on the roster "
    "are counted."
)

# ---- the table ---------------------------------------------------------------------------

_VOTE_POSITIONS = ("support", "no-objection", "concern", "object", "abstain")

TABLE: tuple[CommandSpec, ...] = (
    # Taking a position
    CommandSpec(
        "support",
        N_("Support admitting the applicant."),
        (Rest("reason", N_("why, if you like")), REQUEST_OPTION),
        Role.MEMBER,
        frozenset({Place.REQUEST, Place.DM}),
        details=POSITION_DETAILS,
        examples=(
            "support",
            "support Strong track record in the region.",
            "support --request 7",
            "support #7 Strong track record in the region.",
        ),
        aliases=("yes", "agree", "+1", "approve", "lgtm"),
        section=Section.POSITIONS,
        private_answer=True,
        executor=Executor.POSITION,
    ),
    CommandSpec(
        "no-objection",
        N_("Say you do not object, without actively supporting."),
        (Rest("reason", N_("why, if you like")), REQUEST_OPTION),
        Role.MEMBER,
        frozenset({Place.REQUEST, Place.DM}),
        details=POSITION_DETAILS,
        examples=("no-objection", "no-objection --request 7 Fine by me."),
        # Two words too: with `no` an alias of object, "no objection" must not become one.
        aliases=("no objection", "no objections", "no concerns", "noobjection", "no_objection"),
        section=Section.POSITIONS,
        private_answer=True,
        executor=Executor.POSITION,
    ),
    CommandSpec(
        "concern",
        N_("Raise a concern that does not block consensus; say what worries you."),
        (Rest("reason", N_("what worries you")), REQUEST_OPTION),
        Role.MEMBER,
        frozenset({Place.REQUEST, Place.DM}),
        details=N_("A concern is heard and weighed but does not block.") + " " + POSITION_DETAILS,
        examples=("concern Not sure how much time they can give.",),
        section=Section.POSITIONS,
        private_answer=True,
        executor=Executor.POSITION,
    ),
    CommandSpec(
        "object",
        N_("Object to admitting the applicant, with your reason."),
        (Rest("reason", N_("why you object"), required=True), REQUEST_OPTION),
        Role.MEMBER,
        frozenset({Place.REQUEST, Place.DM}),
        details=N_(
            "Objecting blocks consensus until the chair disposes of your objection; say why, "
            "so that it can be addressed."
        )
        + " "
        + POSITION_DETAILS,
        examples=(
            "object They have not agreed to the participation principles.",
            'object --request 7 "No link to the group\'s work yet."',
            "object #7 No link to the group's work yet.",
        ),
        aliases=("no", "block", "-1", "nay"),
        section=Section.POSITIONS,
        private_answer=True,
        executor=Executor.POSITION,
    ),
    CommandSpec(
        "abstain",
        N_("Take part without taking a side."),
        (Rest("reason", N_("why, if you like")), REQUEST_OPTION),
        Role.MEMBER,
        frozenset({Place.REQUEST, Place.DM}),
        details=N_("You count as having taken part.") + " " + POSITION_DETAILS,
        examples=("abstain", "abstain Not enough information to judge."),
        aliases=("pass",),
        section=Section.POSITIONS,
        private_answer=True,
        executor=Executor.POSITION,
    ),
    CommandSpec(
        "vote",
        N_("There is no vote here: vote POSITION is taken as that position (vote yes as support)."),
        (
            Positional(
                "position",
                Choice(*_VOTE_POSITIONS, metavar="POSITION"),
                N_("%(choices)s, or another name of one (yes, no, +1, pass…)"),
            ),
            Rest("reason", N_("as for that position; object needs one")),
            REQUEST_OPTION,
        ),
        Role.MEMBER,
        frozenset({Place.REQUEST, Place.DM}),
        details=N_(
            "Rough consensus is not a vote: nobody counts hands, the chair weighs the positions "
            "and answers the objections. So vote POSITION is read as the position itself and "
            "you are told so; next time send the position on its own (support, object REASON…)."
        ),
        examples=("vote yes", "vote support Good fit.", "vote object --request 7 Not yet."),
        section=Section.POSITIONS,
        forwards=_VOTE_POSITIONS,
        hint=N_("There is no vote here: positions are %(choices)s (recorded as %(command)s)."),
    ),
    CommandSpec(
        "recuse",
        N_("Step aside from this request; you no longer count as eligible."),
        (Rest("reason", N_("why, if you like (e.g. a conflict of interest)")), REQUEST_OPTION),
        Role.MEMBER,
        frozenset({Place.REQUEST, Place.DM}),
        details=N_(
            "Use it for a conflict of interest: you are left out of the eligible count, so "
            "not taking part does not weigh on participation."
        )
        + " "
        + POSITION_DETAILS,
        examples=("recuse I work for the same organisation.",),
        section=Section.POSITIONS,
        private_answer=True,
        executor=Executor.POSITION,
    ),
    CommandSpec(
        "withdraw",
        N_("Retract your position on a request."),
        (REQUEST_OPTION,),
        Role.MEMBER,
        frozenset({Place.REQUEST, Place.DM}),
        details=N_(
            "Afterwards you count as not having taken part. Removing your reaction from the "
            "ballot does the same."
        ),
        examples=("withdraw", "withdraw --request 7", "withdraw #7"),
        aliases=("retract",),
        section=Section.POSITIONS,
        private_answer=True,
        executor=Executor.WITHDRAW,
    ),
    CommandSpec(
        "hum",
        N_("Hum for or against in private; the room only hears how loud each side is."),
        (
            Positional("side", Choice("for", "against"), N_("which side you hum for")),
            Positional(
                "strength",
                Choice("soft", "loud"),
                N_("how strongly (default: soft)"),
                required=False,
            ),
            Option(
                "request",
                _REQUEST_NUMBER,
                N_("the request number (or #N after the side)"),
                required=True,
                hash_word=True,
            ),
        ),
        Role.MEMBER,
        frozenset({Place.DM}),
        details=N_(
            "Send it to the bot in a direct message. Hums are never shown per person, only how "
            "loud each side is; your latest hum replaces an earlier one."
        ),
        examples=("hum for --request 7", "hum against loud --request 7", "hum for #7"),
        section=Section.POSITIONS,
        executor=Executor.HUM,
    ),
    # Filing a request
    CommandSpec(
        "request",
        N_("File a participation request for someone."),
        (
            Positional("applicant", Applicant(), N_("a Matrix user ID, or a quoted name")),
            Rest("statement", N_("who they are and why they want to take part"), required=True),
            _NAME,
            _KIND,
            _ORG,
            _REPRESENTATIVE,
            _COUNTRY,
            _STAKEHOLDER,
            _REGION,
            _BACKGROUND,
            Option("deadline", WhenArg(), N_("when the ballot closes (default: the group's)")),
        ),
        Role.MEMBER_OR_CHAIR,
        frozenset({Place.MAIN, Place.DM}),
        details=N_(
            "The bot opens a room for the request, invites the members and the chairs, and "
            "posts the request card and the ballot. WHEN is a duration from now (14d) or an "
            "ISO 8601 time (YYYY-MM-DDTHH:MMZ; UTC unless it has an offset), at most 365 days "
            "ahead."
        ),
        examples=(
            "request @dana:example.org --org 'Example University' --stakeholder academia "
            "--region europe Dana researches routing security and wants to help.",
            'request "Sam Example" --deadline 21d Sam has run the regional exchange for years.',
        ),
        section=Section.REQUESTS,
        executor=Executor.REQUEST,
    ),
    CommandSpec(
        "apply",
        N_("Ask to join the group yourself."),
        (
            Rest("statement", N_("who you are and why you want to take part"), required=True),
            _KIND,
            _ORG,
            _REPRESENTATIVE,
            _COUNTRY,
            _STAKEHOLDER,
            _REGION,
            _BACKGROUND,
            _NAME,
            _PUBLISH,
            Option(
                "language",
                Word(metavar="LANGUAGE"),
                N_(
                    "the language I write to you in: ar, zh_Hans, en, fr, ru, es (as with "
                    "the language command)"
                ),
            ),
        ),
        Role.ANYONE,
        frozenset({Place.DM}),
        details=N_(
            "Send it to the bot in a direct message, when the group allows applications. A "
            "chair looks at it first; the bot asks for what is missing (country, stakeholder "
            "group, background, your affirmation of the principles). Applying again while it "
            "waits updates it. The members see your statement and decide by rough consensus. "
            "With --language you choose the language of everything I tell you."
        ),
        examples=(
            "apply --org 'Example Networks' --stakeholder private-sector --region africa "
            "I operate an exchange point and want to contribute.",
            "apply --language fr --country Senegal Je gère un point d'échange à Dakar.",
        ),
        section=Section.REQUESTS,
        executor=Executor.APPLY,
    ),
    CommandSpec(
        "edit",
        N_("Correct or complete a request before its decision; the card is updated."),
        (
            Positional("request", _REQUEST_NUMBER, N_("the request number")),
            Rest("statement", N_("a new statement (optional)")),
            _NAME,
            _KIND,
            _ORG,
            _REPRESENTATIVE,
            _COUNTRY,
            _STAKEHOLDER,
            _REGION,
            _BACKGROUND,
        ),
        Role.ANYONE,
        ANYWHERE,
        details=N_(
            "A chair, until the decision; the filer or the applicant, until the ballot opens. "
            "The change is announced in the request room and kept in the record; members "
            "whose position predates it are told they may revise it."
        ),
        examples=("edit 4 --country Kenya --background 'AFRINIC member since 2012'",),
        section=Section.REQUESTS,
        executor=Executor.EDIT,
    ),
    CommandSpec(
        "affirm",
        N_("Affirm the six participation principles for your application."),
        (Positional("request", _REQUEST_NUMBER, N_("your request's number")),),
        Role.ANYONE,
        frozenset({Place.DM}),
        details=N_("Only the applicant; the request card then says the principles are affirmed."),
        examples=("affirm 4",),
        section=Section.REQUESTS,
        executor=Executor.AFFIRM,
    ),
    CommandSpec(
        "ask",
        N_("Ask the applicant a question; the bot relays it and posts the answer here."),
        (Rest("question", N_("your question"), required=True),),
        Role.MEMBER_OR_CHAIR,
        frozenset({Place.REQUEST}),
        details=N_("The applicant is never in the request room and never sees who positioned how."),
        examples=("ask Which RIR region do you operate in?",),
        section=Section.REQUESTS,
        executor=Executor.ASK,
    ),
    CommandSpec(
        "answer",
        N_("Answer a member's question about your request."),
        (
            Positional(
                "question",
                PositiveInt(what=N_("question number")),
                N_("the question's number"),
                metavar="QUESTION",
            ),
            Rest("answer", N_("your answer"), required=True),
        ),
        Role.ANYONE,
        frozenset({Place.DM}),
        details=N_("Only the applicant; the answer is posted in the request room as yours."),
        examples=("answer 2 We operate in the AFRINIC region, from Nairobi.",),
        section=Section.REQUESTS,
        executor=Executor.ANSWER,
    ),
    CommandSpec(
        "mine",
        N_("Tell me my current position on a request (by direct message)."),
        (_REQUEST_POSITIONAL,),
        Role.MEMBER,
        ANYWHERE,
        examples=("mine", "mine 4"),
        section=Section.POSITIONS,
        private_answer=True,
        executor=Executor.MINE,
    ),
    CommandSpec(
        "language",
        N_("Show or choose the language I write to you in by direct message."),
        (
            Positional(
                "language",
                Word(metavar="LANGUAGE"),
                N_(
                    "one of ar (العربية), zh_Hans (简体中文), en, fr, ru, es; without it, the one "
                    "you have"
                ),
                required=False,
            ),
        ),
        Role.ANYONE,
        ANYWHERE,
        details=N_(
            "The rooms speak the group's language (group.language); each person chooses their "
            "own for what the bot tells them in direct messages: reminders, hums, answers. "
            "Commands keep their English words in every language, and each language adds a "
            "few words of its own (listed under Also)."
        ),
        examples=("language", "language fr", "language zh_Hans"),
        executor=Executor.LANGUAGE,
    ),
    CommandSpec(
        "group",
        N_("Show or choose the group this direct chat is about (when I serve several)."),
        (
            Positional(
                "group",
                Word(metavar="GROUP"),
                N_("a group's id; without it, the groups I serve"),
                required=False,
            ),
        ),
        Role.ANYONE,
        frozenset({Place.DM}),
        details=N_(
            "One bot may serve several groups, each with its own members, chairs and "
            "requests (#N is counted in each group). In a group's rooms the group is known; "
            "in a direct chat I ask which group a command is about when you belong to several "
            "(or to none, to apply), and remember your answer for the chat."
        ),
        examples=("group", "group core"),
        executor=Executor.GROUP,
    ),
    # Information
    CommandSpec(
        "help",
        N_("Show the commands, or the details of one."),
        (Rest("command", N_("the command to explain"), metavar="COMMAND"),),
        Role.ANYONE,
        ANYWHERE,
        examples=("help", "help object", "help member add"),
        aliases=("?",),
        executor=Executor.HELP,
    ),
    CommandSpec(
        "status",
        N_("Show where a request stands: positions, objections and deadline."),
        (_REQUEST_POSITIONAL,),
        Role.ANYONE,
        ANYWHERE,
        details=N_(
            "Members and chairs see the positions; the applicant sees the stage and the dates "
            "of their own request only."
        ),
        examples=("status", "status 7", "status #7"),
        private_answer=True,
        executor=Executor.STATUS,
    ),
    CommandSpec(
        "list",
        N_("List the open requests."),
        (),
        Role.MEMBER_OR_CHAIR,
        ANYWHERE,
        examples=("list",),
        aliases=("requests",),
        executor=Executor.LIST,
    ),
    CommandSpec(
        "members",
        N_("List the members on the roster."),
        (),
        Role.MEMBER_OR_CHAIR,
        ANYWHERE,
        examples=("members",),
        aliases=("roster",),
        executor=Executor.MEMBERS,
    ),
    CommandSpec(
        "objections",
        N_("List the objections to a request and whether each has been disposed of."),
        (_REQUEST_POSITIONAL,),
        Role.MEMBER_OR_CHAIR,
        ANYWHERE,
        examples=("objections", "objections 7"),
        private_answer=True,
        executor=Executor.OBJECTIONS,
    ),
    CommandSpec(
        "export",
        N_("Upload the record of a request as a file."),
        (
            _REQUEST_POSITIONAL,
            Option("format", Choice("json", "csv", "md"), N_("file format (default: json)")),
        ),
        Role.MEMBER_OR_CHAIR,
        ANYWHERE,
        details=N_("The record lists every position and objection with its time and the outcome."),
        examples=("export", "export 7 --format csv"),
        private_answer=True,
        executor=Executor.EXPORT,
    ),
    # Chair tools
    CommandSpec(
        "dispose",
        N_("Dispose of an objection, with your rationale."),
        (
            Positional(
                "objection",
                PositiveInt(what=N_("objection number")),
                N_("the objection's number (see objections)"),
                metavar="OBJECTION",
            ),
            Positional(
                "disposition",
                Choice(*(s.value for s in ObjectionState if s is not ObjectionState.OPEN)),
                N_("how it was resolved"),
            ),
            Rest("rationale", N_("why"), required=True),
        ),
        Role.CHAIR,
        frozenset({Place.REQUEST}),
        details=N_(
            "accommodated: the request changed to meet it. addressed: it was answered but not "
            "accommodated, so the objector is 'in the rough'. duplicate: it repeats another "
            "objection. withdrawn: the objector took it back."
        ),
        examples=("dispose 3 addressed The applicant signed the principles on 2 May.",),
        section=Section.CHAIR,
        executor=Executor.DISPOSE,
    ),
    CommandSpec(
        "contest",
        N_("Contest the disposition of your objection: it is open again."),
        (
            Positional(
                "objection",
                PositiveInt(what=N_("objection number")),
                N_("your objection's number"),
                metavar="OBJECTION",
            ),
            Rest("reason", N_("why the disposition does not answer it"), required=True),
        ),
        Role.MEMBER,
        frozenset({Place.REQUEST, Place.DM}),
        details=N_(
            "Only the objector, within process.contest_window of the disposition and before "
            "the decision. The draft is updated and the chairs see it."
        ),
        examples=("contest 3 The answer ignores the conflict of interest I raised.",),
        section=Section.POSITIONS,
        executor=Executor.CONTEST,
    ),
    CommandSpec(
        "appeal",
        N_("Appeal a decision, with your reason; a chair answers it."),
        (
            Positional("request", _REQUEST_NUMBER, N_("the decided request's number")),
            Rest("reason", N_("why the decision should be looked at again"), required=True),
        ),
        Role.ANYONE,
        ANYWHERE,
        details=N_(
            "Members and the applicant, within process.appeal_window of the outcome. The "
            "chairs are told; an upheld appeal reopens the ballot."
        ),
        examples=("appeal 7 The draft ignored the objections from the Africa region.",),
        section=Section.POSITIONS,
        executor=Executor.APPEAL,
    ),
    CommandSpec(
        "appeal-answer",
        N_("Answer an appeal: upheld (the ballot reopens) or denied, with your rationale."),
        (
            Positional(
                "appeal",
                PositiveInt(what=N_("appeal number")),
                N_("the appeal's number"),
                metavar="APPEAL",
            ),
            Positional("answer", Choice("upheld", "denied"), N_("upheld or denied")),
            Rest("rationale", N_("why"), required=True),
        ),
        Role.CHAIR,
        ANYWHERE,
        examples=("appeal-answer 2 upheld The objections from Africa were not disposed of.",),
        section=Section.CHAIR,
        executor=Executor.APPEAL_ANSWER,
    ),
    CommandSpec(
        "deadline",
        N_("Set when the ballot closes."),
        (
            Positional("when", WhenArg(), N_("a duration from now (10d) or an ISO 8601 time")),
            _EARLY,
        ),
        Role.CHAIR,
        frozenset({Place.REQUEST}),
        details=N_("Not before the ballot has been open for process.min_deadline, unless --early."),
        examples=("deadline 10d", "deadline 2026-06-30T17:00Z"),
        section=Section.CHAIR,
        executor=Executor.DEADLINE,
    ),
    CommandSpec(
        "extend",
        N_("Push the deadline back."),
        (Positional("duration", DurationArg(), N_("how much longer, e.g. 3d")),),
        Role.CHAIR,
        frozenset({Place.REQUEST}),
        details=N_(
            "After a draft that found too few members taking part, it opens the ballot again "
            "for that long and reminds those who have not taken part at once."
        ),
        examples=("extend 3d",),
        section=Section.CHAIR,
        executor=Executor.EXTEND,
    ),
    CommandSpec(
        "close",
        N_("Close the ballot now and post the draft sense of the room."),
        (_EARLY,),
        Role.CHAIR,
        frozenset({Place.REQUEST}),
        details=N_("Not before the ballot has been open for process.min_deadline, unless --early."),
        examples=("close", "close --early 'The applicant withdrew; nothing to wait for.'"),
        section=Section.CHAIR,
        executor=Executor.CLOSE,
    ),
    CommandSpec(
        "confirm",
        N_("Confirm the draft sense of the room as the outcome, in your own words."),
        (Rest("rationale", N_("why the draft is the sense of the room")),),
        Role.CHAIR,
        frozenset({Place.REQUEST}),
        details=N_(
            "Only after the draft has been posted. A rationale is required when the draft is "
            "not a rough consensus to admit, or when it says those in the rough carry weight; "
            "a draft of insufficient participation is extended, not confirmed."
        ),
        examples=(
            "confirm",
            "confirm The objections about independence were answered by the charter's rule.",
        ),
        section=Section.CHAIR,
        executor=Executor.CONFIRM,
    ),
    CommandSpec(
        "decide",
        N_("Decide the outcome yourself, with a rationale."),
        (
            Positional("outcome", Choice(*(o.value for o in Outcome)), N_("the outcome")),
            _EARLY,
            Rest("rationale", N_("why"), required=True),
        ),
        Role.CHAIR,
        frozenset({Place.REQUEST}),
        details=N_(
            "Use it when the draft sense of the room is not the right outcome; say why. Not "
            "before the ballot has been open for process.min_deadline, unless --early."
        ),
        examples=("decide decline The objection about conflicts of interest stands.",),
        section=Section.CHAIR,
        executor=Executor.DECIDE,
    ),
    CommandSpec(
        "reopen",
        N_("Reopen a closed ballot for a while; positions so far stay."),
        (Positional("duration", DurationArg(), N_("how long it stays open, e.g. 48h")),),
        Role.CHAIR,
        frozenset({Place.REQUEST}),
        details=N_("Works after the ballot closed, whether drafted or decided."),
        examples=("reopen 48h",),
        section=Section.CHAIR,
        executor=Executor.REOPEN,
    ),
    CommandSpec(
        "remind",
        N_("Nudge the members who have not taken a position yet."),
        (),
        Role.CHAIR,
        frozenset({Place.REQUEST}),
        examples=("remind",),
        section=Section.CHAIR,
        executor=Executor.REMIND,
    ),
    CommandSpec(
        "triage",
        N_("List the applications waiting for a chair before any ballot opens."),
        (),
        Role.CHAIR,
        ANYWHERE,
        details=N_(
            "Applications sent by direct message wait here; members hear of them only "
            "once a chair accepts one."
        ),
        examples=("triage",),
        section=Section.CHAIR,
        executor=Executor.TRIAGE,
    ),
    CommandSpec(
        "accept",
        N_("Accept an application from triage: its room and ballot open now."),
        (Positional("request", _REQUEST_NUMBER, N_("the application's request number")),),
        Role.CHAIR,
        ANYWHERE,
        details=N_("The ballot gets the default deadline, counted from now."),
        examples=("accept 4",),
        section=Section.CHAIR,
        executor=Executor.ACCEPT,
    ),
    CommandSpec(
        "reject",
        N_("Turn down an application from triage, with a reason the applicant is told."),
        (
            Positional("request", _REQUEST_NUMBER, N_("the application's request number")),
            Rest("reason", N_("why"), required=True),
        ),
        Role.CHAIR,
        ANYWHERE,
        examples=("reject 4 We only admit people with a background in Internet resources.",),
        section=Section.CHAIR,
        executor=Executor.REJECT,
    ),
    CommandSpec(
        "cancel",
        N_("Cancel a request before its decision, with a reason."),
        (
            Positional("request", _REQUEST_NUMBER, N_("the request number")),
            Rest("reason", N_("why"), required=True),
        ),
        Role.MEMBER_OR_CHAIR,
        ANYWHERE,
        details=N_(
            "Its filer or a chair can; the room and the main room are told, reminders "
            "stop, and the record keeps it."
        ),
        examples=("cancel 4 Filed twice by mistake.",),
        section=Section.CHAIR,
        executor=Executor.CANCEL,
    ),
    CommandSpec(
        "digest",
        N_("Post the digest of open requests in the main room now."),
        (),
        Role.CHAIR,
        ANYWHERE,
        examples=("digest",),
        section=Section.CHAIR,
        executor=Executor.DIGEST,
    ),
    CommandSpec(
        "member add",
        N_("Add someone to the roster."),
        (Positional("user", UserId(), N_("their Matrix user ID")), _STAKEHOLDER, _REGION, _COUNTRY),
        Role.CHAIR,
        ANYWHERE,
        details=N_(
            "A new member needs a stakeholder group and a region (or a country, from which "
            "the region follows), so every breakdown counts them. The bot invites them into "
            "the main room and the rooms of ballots under way (they speak there; ballots "
            "already open keep the members they opened with)."
        ),
        examples=("member add @erin:example.org --stakeholder civil-society --region americas",),
        section=Section.CHAIR,
        executor=Executor.MEMBER_ADD,
    ),
    CommandSpec(
        "member remove",
        N_("Remove someone from the roster."),
        (Positional("user", UserId(), N_("their Matrix user ID")),),
        Role.CHAIR,
        ANYWHERE,
        details=N_(
            "Their positions stay on record but stop counting on ballots still open; "
            "closed and decided requests keep the count they had. The bot takes them out of "
            "the rooms of undecided requests (not a chair's), so they cannot read what it "
            "says there next."
        ),
        examples=("member remove @erin:example.org",),
        section=Section.CHAIR,
        executor=Executor.MEMBER_REMOVE,
    ),
)


def normalize_name(text: str) -> str:
    """How command words are compared: NFKC, invisible format characters dropped, lower-case."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(c for c in folded if unicodedata.category(c) != "Cf").lower()


# Each language may add its own words for the commonest commands: the parser accepts them
# in every room (a word means one command whatever the reader's language) and the help lists
# them with the command's other aliases. The English names stay the commands' names.
LANGUAGE_ALIASES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "fr": {
            "soutien": "support",
            "objecter": "object",
            "préoccupation": "concern",
            "abstention": "abstain",
            "récusation": "recuse",
            "aide": "help",
            "langue": "language",
            "statut": "status",
        },
        "es": {
            "apoyo": "support",
            "objetar": "object",
            "preocupación": "concern",
            "abstención": "abstain",
            "recusación": "recuse",
            "ayuda": "help",
            "idioma": "language",
            "estado": "status",
        },
        "ru": {
            "поддержка": "support",
            "возразить": "object",
            "озабоченность": "concern",
            "воздержаться": "abstain",
            "самоотвод": "recuse",
            "помощь": "help",
            "язык": "language",
            "статус": "status",
        },
        "ar": {
            "تأييد": "support",
            "اعتراض": "object",
            "قلق": "concern",
            "امتناع": "abstain",
            "تنحي": "recuse",
            "مساعدة": "help",
            "لغة": "language",
            "حالة": "status",
        },
        "zh_Hans": {
            "支持": "support",
            "反对": "object",
            "关切": "concern",
            "弃权": "abstain",
            "回避": "recuse",
            "帮助": "help",
            "语言": "language",
            "状态": "status",
        },
    }
)


def language_aliases(spec: CommandSpec) -> list[tuple[str, str]]:
    """The (language, word) pairs that also name `spec`, for the help."""
    return [
        (code, word)
        for code, words in LANGUAGE_ALIASES.items()
        for word, command in words.items()
        if command == spec.name
    ]


COMMANDS: tuple[CommandSpec, ...] = tuple(s for s in TABLE if not s.forwards)
"""The commands a handler runs: the table without its front words (`vote`)."""


def _check_executors() -> None:
    """Every command names what runs it, a front word nothing, and every key is used: the
    binding is total before the services bind a handler to each key."""
    for spec in TABLE:
        if (spec.executor is None) != bool(spec.forwards):
            raise ValueError(f"{spec.name}: a command needs an executor, a front word none")
    unused = set(Executor) - {spec.executor for spec in COMMANDS}
    if unused:
        raise ValueError(f"executors no command uses: {sorted(e.name for e in unused)}")


_check_executors()


def _index() -> dict[str, CommandSpec]:
    index: dict[str, CommandSpec] = {}
    for spec in TABLE:
        for key in (spec.name, *spec.aliases):
            if key in index:
                raise ValueError(f"command name {key!r} is declared twice")
            index[key] = spec
    names = {s.name: s for s in TABLE}
    for words in LANGUAGE_ALIASES.values():
        for word, command in words.items():
            key = normalize_name(word)
            if command not in names:
                raise ValueError(f"language alias {word!r} for no command {command!r}")
            if key in index and index[key] is not names[command]:
                raise ValueError(f"command name {key!r} is declared twice")
            index[key] = names[command]
    for spec in TABLE:
        for target in spec.forwards:
            if target not in index or index[target].name != target or index[target].forwards:
                raise ValueError(f"{spec.name} forwards to {target!r}, which is no command")
    return index


TABLE_BY_NAME: Mapping[str, CommandSpec] = MappingProxyType(_index())
"""Every entry of the table, front words included, under its name and each of its aliases."""

COMMANDS_BY_NAME: Mapping[str, CommandSpec] = MappingProxyType(
    {name: spec for name, spec in TABLE_BY_NAME.items() if not spec.forwards}
)
"""Every command under its name and each of its aliases (front words such as `vote` not)."""

COMMAND_GROUPS: Mapping[str, tuple[CommandSpec, ...]] = MappingProxyType(
    {
        first: tuple(s for s in COMMANDS if s.name.split()[0] == first)
        for first in {s.name.split()[0] for s in COMMANDS if " " in s.name}
    }
)
"""First words of multi-word commands (`member`) and the commands they begin."""


def find_command(name: str) -> CommandSpec | None:
    """The entry called `name` (or an alias of it), compared like the parser does; front
    words such as `vote` included, for the help."""
    return TABLE_BY_NAME.get(" ".join(normalize_name(w) for w in name.split()))


def closest(word: str, candidates: list[str], cutoff: float = 0.6) -> str | None:
    """The candidate most like `word` (difflib's ratio, at least `cutoff`); on a tie the
    earlier one, so that a command's own name wins over an alias just as close."""
    matcher = difflib.SequenceMatcher()
    matcher.set_seq2(word)
    best: str | None = None
    best_score = cutoff
    for candidate in candidates:
        matcher.set_seq1(candidate)
        if matcher.real_quick_ratio() < best_score or matcher.quick_ratio() < best_score:
            continue
        score = matcher.ratio()
        if score > best_score or (best is None and score >= best_score):
            best, best_score = candidate, score
    return best


def suggest_command(first: str, second: str = "") -> str | None:
    """What a mistyped first (and second) word probably meant, as the words to type: a
    command's name (`support`, `member add`) or one of its aliases (`agree` for `agre`);
    None when nothing is close. `find_command` tells which command an alias is."""
    first = normalize_name(first)[:40]
    second = normalize_name(second)
    names = [s.name for s in TABLE]
    aliases = [alias for s in TABLE for alias in s.aliases]
    match = closest(first, [*names, *aliases, *COMMAND_GROUPS])
    if match is None:
        return None
    if match in COMMAND_GROUPS:
        full = f"{match} {second}"
        return COMMANDS_BY_NAME[full].name if full in COMMANDS_BY_NAME else match
    return match


def describe_suggestion(suggestion: str) -> str:
    """`agree (support)` for an alias, the name alone for a command's own name or a group."""
    spec = find_command(suggestion)
    if spec is None or spec.name == suggestion:
        return suggestion
    return f"{suggestion} ({spec.name})"
