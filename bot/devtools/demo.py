"""`consensus-bot demo`: one participation request, from filing to outcome, on a local homeserver.

The demo starts a throwaway Synapse on 127.0.0.1 (`bot.devtools.synapse.LocalSynapse`), registers
the bot, a chair, six members spread over stakeholder groups and regions, and an applicant,
and runs the bot in this process exactly as `consensus-bot run` would (`App(load_config(…))`),
with its log in a file. Simulated members (`bot.devtools.sim_member.SimMember`, real Matrix
clients) then play one request through: filing, the request room, positions (a concern and an
objection among them), the chair's disposition of the objection, the deadline, the draft
sense of the room, the chair's confirmation and the outcome. Each step is printed as it
happens, followed by a summary. The story is read back from the `consensus_bot` block of the
bot's messages, so the demo also checks that the bot did what the story expects.

Everything the demo starts is stopped before it returns; `--keep-running` instead prints how
to log in with any Matrix client and waits for Ctrl-C first.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import itertools
import json
import logging
import math
import shutil
import signal
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar
from urllib.parse import quote

from bot.app import App
from bot.config import ConfigError, load_config
from bot.devtools.sim_member import Event, SimMember, bot_message, reaction_to
from bot.devtools.synapse import LocalSynapse, RegisteredUser
from bot.matrix.gateway import Gateway, GatewayError

__all__ = ["run_demo"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long the demo's ballot stays open (the `--deadline` of the filing).
DEADLINE_SECONDS = 20
#: How long any single step may take before the demo gives up.
STEP_TIMEOUT = 30.0
#: Exit status after Ctrl-C, as a shell reports SIGINT.
EXIT_INTERRUPTED = 130

PREFIX = "!cb"
GROUP_NAME = "Demo Collaboration Group"
BOT_LOCALPART = "consensus"
CHAIR_LOCALPART = "chair"


@dataclass(frozen=True, slots=True)
class Persona:
    """A simulated person: Matrix localpart, display name, stakeholder group and region."""

    localpart: str
    name: str
    stakeholder: str = ""
    region: str = ""

    @property
    def where(self) -> str:
        """'(stakeholder, region)' for the progress lines."""
        return f"({self.stakeholder}, {self.region})"


MEMBERS: tuple[Persona, ...] = (
    Persona("alice", "Alice", "academia", "europe"),
    Persona("kwame", "Kwame", "civil-society", "africa"),
    Persona("mei", "Mei", "technical-community", "asia-pacific"),
    Persona("diego", "Diego", "private-sector", "americas"),
    Persona("layla", "Layla", "government", "arab-states"),
    Persona("ivan", "Ivan", "technical-community", "cis"),
)
APPLICANT = Persona("erin", "Erin Example", "academia", "europe")
APPLICANT_ORG = "Example Networks"
STATEMENT = (
    "Erin runs the regional network operators' forum and wants to help the group with "
    "routing security."
)
CONCERN = "The statement says little about how Erin would take part between meetings."
OBJECTION = "Example Networks sells routing products; I fear a conflict of interest."
DISPOSITION = (
    "Erin participates in a personal capacity and will declare interests, as the principles "
    "require."
)

#: The positions the story takes, as the draft must count them.
EXPECTED_COUNTS = {
    "support": 3,
    "no-objection": 1,
    "concern": 1,
    "object": 1,
    "abstain": 0,
    "recuse": 0,
}


class DemoError(Exception):
    """The story did not go as expected; the message says what was happening."""


# --------------------------------------------------------------------------- output


class Progress:
    """Prints the story: one line per step with the seconds since the demo started."""

    def __init__(self, out: TextIO, started: float) -> None:
        self.out = out
        self.started = started
        self.doing = "starting"
        self.width = max(60, min(shutil.get_terminal_size((100, 24)).columns, 110))
        self._status_shown = False

    @property
    def elapsed(self) -> float:
        """Seconds since the demo started."""
        return time.monotonic() - self.started

    @property
    def interactive(self) -> bool:
        """Whether stdout is a terminal (then a waiting line may update in place)."""
        isatty = getattr(self.out, "isatty", None)
        return bool(isatty and isatty())

    def say(self, text: str = "") -> None:
        """A line without a time stamp (headings, the summary)."""
        self._clear_status()
        print(text, file=self.out, flush=True)

    def step(self, text: str) -> None:
        """One step of the story, stamped with the elapsed time."""
        self._clear_status()
        lines = textwrap.wrap(
            f"[{self.elapsed:5.1f}s] {text}",
            self.width,
            subsequent_indent=" " * 9,
            break_on_hyphens=False,
            break_long_words=False,
        )
        print("\n".join(lines), file=self.out, flush=True)

    def quote(self, text: str) -> None:
        """A bot message (or a command's answer), indented under the step that led to it."""
        self._clear_status()
        indent = " " * 11
        for line in text.splitlines() or [""]:
            wrapped = textwrap.wrap(
                line,
                self.width,
                initial_indent=indent,
                subsequent_indent=indent + "  ",
                break_on_hyphens=False,
            )
            print("\n".join(wrapped) if wrapped else "", file=self.out, flush=True)

    def status(self, text: str) -> None:
        """A transient line that updates in place (terminals only)."""
        if not self.interactive:
            return
        self.out.write("\r\x1b[K" + text)
        self.out.flush()
        self._status_shown = True

    def _clear_status(self) -> None:
        if self._status_shown:
            self.out.write("\r\x1b[K")
            self.out.flush()
            self._status_shown = False


def _first_line(body: str) -> str:
    return body.strip().splitlines()[0] if body.strip() else ""


def _body(event: Event) -> str:
    body = event.get("content", {}).get("body", "")
    return body if isinstance(body, str) else ""


def _meta(event: Event) -> dict[str, Any]:
    meta = event.get("content", {}).get("consensus_bot", {})
    return meta if isinstance(meta, dict) else {}


def _reply_to(event_id: str) -> Callable[[Event], bool]:
    """A matcher for the bot's reply to one event (a command, or a reaction)."""

    def match(ev: Event) -> bool:
        content = ev.get("content", {})
        return bool(
            content.get("consensus_bot", {}).get("kind") == "reply"
            and content.get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == event_id
        )

    return match


def _joined(user_id: str) -> Callable[[Event], bool]:
    """A matcher for `user_id` joining a room."""

    def match(ev: Event) -> bool:
        return (
            ev.get("type") == "m.room.member"
            and ev.get("state_key") == user_id
            and ev.get("content", {}).get("membership") == "join"
        )

    return match


# --------------------------------------------------------------------------- set-up


def _config_toml(
    synapse: LocalSynapse,
    bot: RegisteredUser,
    main_room: str,
    chair: str,
    members: list[tuple[str, Persona]],
    db_path: Path,
    site: Path,
    language: str = "en",
) -> str:
    """The bot's configuration for the demo group (strings quoted as JSON, which TOML reads);
    `language` is the group's (`group.language`)."""

    def s(value: str) -> str:
        return json.dumps(value)

    seeds = "".join(
        f"\n[[group.members]]\nuser_id = {s(uid)}\n"
        f"stakeholder = {s(p.stakeholder)}\nregion = {s(p.region)}\n"
        for uid, p in members
    )
    return f"""# Written by `consensus-bot demo` for its throwaway homeserver.
[matrix]
homeserver = {s(synapse.base_url)}
user_id = {s(bot.user_id)}
access_token = {s(bot.access_token)}
device_id = {s(bot.device_id)}
command_prefix = {s(PREFIX)}
encryption = "on"
crypto_store = {s(str(db_path.parent / "crypto"))}

[storage]
path = {s(str(db_path))}

[group]
name = {s(GROUP_NAME)}
main_room = {s(main_room)}
chairs = [{s(chair)}]
language = {s(language)}
self_apply = true
request_rooms = "invite"  # a handful of members: the demo shows the invites arrive
{seeds}
[process]
deadline = "2m"        # short, so that requests filed while you look around close soon
min_deadline = "5s"
reminders = []
quorum = 0.5

[digest]
schedule = ""

[publish]
dir = {s(str(site))}  # the public site, regenerated by the bot after each decision
"""


@contextlib.contextmanager
def _bot_logging(path: Path) -> Iterator[None]:
    """Send the bot's log to `path` (not the terminal) for the duration of the block."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    nio = logging.getLogger("nio")
    saved = (root.level, nio.level)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    nio.setLevel(logging.WARNING)  # nio logs every request at INFO
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(saved[0])
        nio.setLevel(saved[1])


@dataclass
class _Cast:
    """Everyone on the demo homeserver."""

    bot: RegisteredUser
    chair: RegisteredUser
    members: dict[str, RegisteredUser]
    applicant: RegisteredUser


def _register(synapse: LocalSynapse) -> _Cast:
    """Create the accounts (idempotent: a re-used work directory logs them in again)."""
    bot = synapse.register(BOT_LOCALPART)
    synapse.exempt_from_rate_limits(bot.user_id)
    chair = synapse.register(CHAIR_LOCALPART)
    members = {p.localpart: synapse.register(p.localpart) for p in MEMBERS}
    applicant = synapse.register(APPLICANT.localpart)
    return _Cast(bot, chair, members, applicant)


# --------------------------------------------------------------------------- the story


@dataclass
class _Outcome:
    """What the story found out, for the final summary."""

    request: int = 0
    room: str = ""
    objection: int = 0
    disposition: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    outcome: dict[str, Any] = field(default_factory=dict)
    outcome_body: str = ""


class _Story:
    """The demo's scenario, played by simulated clients against the bot running in-process."""

    def __init__(
        self,
        synapse: LocalSynapse,
        cast: _Cast,
        workdir: Path,
        progress: Progress,
        language: str = "en",
    ) -> None:
        self.language = language  # the group's language: what the bot says in the rooms
        self.synapse = synapse
        self.cast = cast
        self.workdir = workdir
        self.p = progress
        # The public site outlives the work directory (a temporary one is removed at the end).
        self.site = workdir.parent.parent / f"{workdir.parent.name}-site"
        url = synapse.base_url

        def client(user: RegisteredUser) -> SimMember:
            # Every simulated person is an encrypting client: the demo runs end-to-end
            # encrypted, as a group whose main room Element created would.
            store = workdir / "people" / user.user_id.split(":")[0].lstrip("@")
            return SimMember(
                url, user.user_id, user.access_token, user.device_id, crypto_store=store
            )

        self.chair = client(cast.chair)
        self.members = {name: client(u) for name, u in cast.members.items()}
        self.applicant = client(cast.applicant)
        self.clients = [self.chair, *self.members.values(), self.applicant]
        self.app: App | None = None
        self.bot_task: asyncio.Task[None] | None = None
        self.main_room = ""
        self.ballot = ""
        self.result = _Outcome()

    # ----------------------------------------------------------------- helpers

    def name(self, user_id: str) -> str:
        """A short name for a user ID of the demo ('@alice:localhost' -> 'alice')."""
        localpart = user_id[1:].split(":", 1)[0]
        return localpart if user_id.startswith("@") else user_id

    async def guard(self, doing: str, aw: Awaitable[T]) -> T:
        """Await `aw`, failing fast (with what was happening) if the bot stops meanwhile."""
        self.p.doing = doing
        task: asyncio.Future[T] = asyncio.ensure_future(aw)
        waiting: set[asyncio.Future[Any]] = {task}
        if self.bot_task is not None:
            waiting.add(self.bot_task)
        try:
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():  # the bot stopped, or the demo is cancelled (Ctrl-C)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if task in done:
            return task.result()
        assert self.bot_task is not None
        error = None if self.bot_task.cancelled() else self.bot_task.exception()
        if error is not None:
            log.error("the bot stopped while the demo was %s", doing, exc_info=error)
        raise DemoError(f"the bot stopped unexpectedly ({error or 'no error given'})")

    async def wait(
        self,
        who: SimMember,
        doing: str,
        match: Callable[[Event], bool],
        room_id: str,
        timeout: float = STEP_TIMEOUT,  # noqa: ASYNC109 - a deadline for the whole wait
    ) -> Event:
        """Wait, as `who`, for an event in `room_id`."""
        return await self.guard(doing, who.wait_for(match, room_id=room_id, timeout=timeout))

    async def command(
        self,
        who: SimMember,
        room_id: str,
        text: str,
        *,
        answered: bool = False,
        persona: Persona | None = None,
    ) -> Event | None:
        """Send a command, print it and wait for the ✅ (and the answer when `answered`)."""
        where = f" {persona.where}" if persona else ""
        self.p.step(f"{self.name(who.user_id)}{where}: {text}")
        event_id = await self.guard(f"sending {text!r}", who.say(room_id, text))
        ack = await self.wait(
            who,
            f"waiting for the bot to acknowledge {text!r}",
            lambda ev: reaction_to(event_id, "✅")(ev) or reaction_to(event_id, "❌")(ev),
            room_id,
        )
        refused = ack["content"]["m.relates_to"]["key"] == "❌"
        if not (answered or refused):
            return None
        reply = await self.wait(
            who, f"waiting for the answer to {text!r}", _reply_to(event_id), room_id
        )
        if refused:
            raise DemoError(f"the bot refused {text!r}: {_body(reply)}")
        return reply

    async def react(
        self, who: SimMember, persona: Persona, ballot: str, key: str, label: str
    ) -> str:
        """A member reacts to the ballot."""
        self.p.step(f"{persona.localpart} {persona.where} reacts {key} {label}")
        return await self.guard(
            f"reacting {key} as {persona.localpart}", who.react(self.result.room, ballot, key)
        )

    # ----------------------------------------------------------------- the acts

    async def setup(self, config_path: Path, db_path: Path) -> None:
        """Connect the clients, make the main room, write the config and start the bot."""
        p, cast = self.p, self.cast
        self.p.doing = "connecting the simulated clients"
        await asyncio.gather(*(c.connect() for c in self.clients))
        await self._set_display_names()
        self.p.doing = "creating the main room"
        member_ids = [u.user_id for u in cast.members.values()]
        self.main_room = await self.chair.create_room(
            GROUP_NAME, [cast.bot.user_id, *member_ids], encrypted=True
        )
        self.p.doing = "joining the main room"
        await asyncio.gather(*(m.join(self.main_room) for m in self.members.values()))
        p.step(
            f"chair creates the group's encrypted main room, invites the bot and "
            f"{len(self.members)} members; the members join"
        )
        seeds = [(cast.members[m.localpart].user_id, m) for m in MEMBERS]
        toml = _config_toml(
            self.synapse,
            cast.bot,
            self.main_room,
            cast.chair.user_id,
            seeds,
            db_path,
            self.site,
            self.language,
        )
        await asyncio.to_thread(config_path.write_text, toml, encoding="utf-8")
        try:
            config = load_config(config_path)
        except ConfigError as exc:
            problems = "; ".join(f"{i.path}: {i.message}" for i in exc.issues)
            raise DemoError(f"the demo's own configuration is invalid: {problems}") from exc
        self.app = App(config)
        self.bot_task = asyncio.create_task(self.app.run(), name="consensus-bot")
        await self.wait(
            self.chair,
            "waiting for the bot to start and join the main room",
            _joined(cast.bot.user_id),
            self.main_room,
        )
        # The first sync of a fresh database skips the rooms' history (the bot does not act on
        # old commands), so nobody speaks to the bot before that sync is done.
        await self.guard("waiting for the bot's first sync", self._first_sync())
        p.step(f"bot is running as {cast.bot.user_id} and has joined the main room")

    async def _first_sync(self) -> None:
        """Return once the bot has applied its first sync batch."""
        deadline = time.monotonic() + STEP_TIMEOUT
        while self.app is None or self.app.syncer is None or self.app.syncer.batches < 1:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the bot did not sync within {STEP_TIMEOUT:.0f} s")
            await asyncio.sleep(0.05)

    async def _set_display_names(self) -> None:
        """Friendly names for anyone who looks around with a Matrix client."""
        names = {CHAIR_LOCALPART: "Chair", APPLICANT.localpart: APPLICANT.name}
        names.update({p.localpart: p.name for p in MEMBERS})
        for client in self.clients:
            name = names.get(self.name(client.user_id))
            if name:
                await _set_display_name(client.gateway, name)
        bot = Gateway(self.synapse.base_url, self.cast.bot.user_id, self.cast.bot.device_id)
        try:
            await bot.connect(password=None, access_token=self.cast.bot.access_token)
            await _set_display_name(bot, "Consensus Bot")
        finally:
            await bot.close()

    async def file(self) -> None:
        """The chair files the request in the main room; the bot opens its room."""
        p, chair, r = self.p, self.chair, self.result
        a = APPLICANT
        p.step(
            f"chair files a participation request for {a.name} {a.where}, "
            f"deadline in {DEADLINE_SECONDS}s"
        )
        text = (
            f"{PREFIX} request {self.cast.applicant.user_id} --name '{a.name}' "
            f"--org '{APPLICANT_ORG}' --stakeholder {a.stakeholder} --region {a.region} "
            f"--deadline {DEADLINE_SECONDS}s {STATEMENT}"
        )
        filing = await self.guard("filing the request", chair.say(self.main_room, text))
        answer = await self.wait(
            chair, "waiting for the bot to file the request", _reply_to(filing), self.main_room
        )
        number = _meta(answer).get("filed")
        if not isinstance(number, int):
            raise DemoError(f"the bot did not file the request: {_body(answer)}")
        r.request = number
        p.step(f"bot files it as request #{number}")

        first = self.members[MEMBERS[0].localpart]
        r.room = await self.guard(
            "waiting for the invitation to the request room",
            first.wait_invite(lambda room: room != self.main_room, timeout=STEP_TIMEOUT),
        )
        p.step(
            f"bot opens a room for request #{number} and invites the {len(self.members)} members "
            "and the chair"
        )

        async def join(client: SimMember) -> None:
            await client.wait_invite(lambda room: room == r.room, timeout=STEP_TIMEOUT)
            await client.join(r.room)

        await self.guard(
            "joining the request room", asyncio.gather(*(join(c) for c in self.members.values()))
        )
        await self.guard("joining the request room", join(chair))
        p.step("the members and the chair join the request room")

        card = await self.wait(
            first, "waiting for the request card", bot_message("request_card", number), r.room
        )
        ballot = await self.wait(
            first, "waiting for the ballot", bot_message("ballot", number), r.room
        )
        # The live tally follows the ballot (no reactions are seeded: counters are real).
        await self.wait(first, "waiting for the live tally", bot_message("tally", 1), r.room)
        p.step("bot posts the request card and the ballot:")
        p.quote(_first_line(_body(card)))
        p.quote(_first_line(_body(ballot)))
        self.ballot = str(ballot["event_id"])

    async def positions(self) -> None:
        """Members take positions: support, no objection, a concern, an objection."""
        p, r, m = self.p, self.result, self.members
        alice, kwame, mei, diego, layla, ivan = MEMBERS
        for persona in (alice, kwame, mei):
            await self.react(m[persona.localpart], persona, self.ballot, "👍", "support")
            await asyncio.sleep(0.3)
        await self.react(m[diego.localpart], diego, self.ballot, "👌", "no objection")
        await asyncio.sleep(0.3)

        await self.command(m[layla.localpart], r.room, f"{PREFIX} concern {CONCERN}", persona=layla)

        client = m[ivan.localpart]
        reaction = await self.react(client, ivan, self.ballot, "👎", "object (without a reason)")
        asked = await self.wait(
            client, "waiting for the bot to ask for a reason", _reply_to(reaction), r.room
        )
        p.step("bot asks ivan for a reason:")
        p.quote(_body(asked))
        answer = await self.command(
            client, r.room, f"{PREFIX} object {OBJECTION}", answered=True, persona=ivan
        )
        assert answer is not None
        p.quote(_body(answer))
        mine = [
            o
            for o in _meta(answer).get("objections", [])
            if o.get("member") == client.user_id and o.get("state") == "open"
        ]
        if not mine:
            raise DemoError(f"the bot recorded no open objection for ivan: {_body(answer)}")
        r.objection = int(mine[-1]["id"])

    async def dispose(self) -> None:
        """The chair lists the objections and disposes of ivan's as addressed."""
        p, r, chair = self.p, self.result, self.chair
        listing = await self.command(chair, r.room, f"{PREFIX} objections", answered=True)
        assert listing is not None
        p.quote(_body(listing))
        answer = await self.command(
            chair, r.room, f"{PREFIX} dispose {r.objection} addressed {DISPOSITION}", answered=True
        )
        assert answer is not None
        p.quote(_body(answer))
        states = {o.get("id"): o.get("state") for o in _meta(answer).get("objections", [])}
        r.disposition = str(states.get(r.objection, ""))
        if r.disposition != "addressed":
            raise DemoError(f"objection #{r.objection} was not recorded as addressed")

    async def deadline(self, filed_at: float) -> None:
        """Wait for the deadline and read the draft sense of the room."""
        p, r = self.p, self.result
        due = filed_at + DEADLINE_SECONDS
        left = max(0, round(due - time.monotonic()))
        p.step(f"waiting for the deadline (about {left}s) …")
        ticker = asyncio.create_task(self._countdown(due))
        try:
            draft = await self.wait(
                self.chair,
                "waiting for the draft sense of the room after the deadline",
                bot_message("summary", r.request, final=True),
                r.room,
                timeout=DEADLINE_SECONDS + STEP_TIMEOUT,
            )
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        r.summary = _meta(draft)
        p.step("deadline reached: bot posts the draft sense of the room for the chair:")
        p.quote(_body(draft))
        counts = r.summary.get("counts")
        if counts != EXPECTED_COUNTS:
            raise DemoError(f"the bot counted {counts}, the demo expected {EXPECTED_COUNTS}")
        if r.summary.get("proposed_outcome") != "rough-consensus-admit":
            raise DemoError(f"unexpected draft: {r.summary.get('proposed_outcome')}")

    async def _countdown(self, due: float) -> None:
        """A spinner with the seconds left, updated in place (terminals only)."""
        if not self.p.interactive:
            return
        for frame in itertools.cycle("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"):
            left = due - time.monotonic()
            text = f"{math.ceil(left):3d}s left" if left > 0 else "any moment now"
            self.p.status(f"          {frame} {text}")
            await asyncio.sleep(0.25)

    async def confirm(self) -> None:
        """The chair confirms; the outcome is announced and the applicant invited."""
        p, r = self.p, self.result
        await self.command(self.chair, r.room, f"{PREFIX} confirm")
        announced = await self.wait(
            self.chair,
            "waiting for the outcome in the main room",
            bot_message("outcome", r.request),
            self.main_room,
        )
        r.outcome = _meta(announced)
        r.outcome_body = _body(announced)
        p.step("bot announces the outcome in the request room and the main room:")
        p.quote(r.outcome_body)
        if r.outcome.get("outcome") != "admit":
            raise DemoError(f"unexpected outcome: {r.outcome.get('outcome')}")
        await self.guard(
            "waiting for the applicant's invitation to the main room",
            self.applicant.wait_invite(lambda room: room == self.main_room, timeout=STEP_TIMEOUT),
        )
        p.step(f"{APPLICANT.localpart} joins the roster and is invited to the main room")
        # The applicant's side: never in the request room, told by direct message.
        dm = await self.guard(
            "waiting for the bot's direct message to the applicant",
            self.applicant.wait_invite(lambda room: room != self.main_room, timeout=STEP_TIMEOUT),
        )
        await self.applicant.join(dm)
        told = await self.wait(
            self.applicant,
            "waiting for the outcome sent to the applicant",
            bot_message("outcome", r.request),
            dm,
        )
        p.step(
            f"{APPLICANT.localpart} is told by direct message: the outcome, the chair's "
            "rationale and how to appeal (never anyone's position):"
        )
        p.quote(_first_line(_body(told)))

    async def published(self) -> Path:
        """The bot publishes the decision on the public site (publish.dir) by itself."""
        page = self.site / "decisions" / str(self.result.request) / "index.html"
        deadline = time.monotonic() + STEP_TIMEOUT
        while not await asyncio.to_thread(page.exists):
            if time.monotonic() > deadline:
                raise DemoError(f"the bot did not publish the decision's page {page}")
            await asyncio.sleep(0.2)
        self.p.step(
            "bot publishes the decision on the public site: outcome, rationale, participation "
            "by group (small groups suppressed) and the frozen record with its head"
        )
        return page

    def print_summary(self) -> None:
        """The closing summary block."""
        p, r = self.p, self.result
        s, o = r.summary, r.outcome
        counts = s.get("counts", {})
        rough = [self.name(u) for u in s.get("in_the_rough", [])]
        absent = [self.name(u) for u in s.get("did_not_take_part", [])]
        rows = [
            ("Request", f"#{r.request} {APPLICANT.name}, {APPLICANT_ORG} {APPLICANT.where}"),
            (
                "Outcome",
                f"{o.get('outcome')}: the chair ({o.get('decided_by')}) confirmed the draft",
            ),
            ("Positions", ", ".join(f"{k} {counts.get(k, 0)}" for k in EXPECTED_COUNTS)),
            (
                "Participation",
                f"{s.get('participated')} of {s.get('eligible')} eligible members"
                + (f" (did not take part: {', '.join(absent)})" if absent else ""),
            ),
            ("Concern", f"layla: {CONCERN}"),
            ("Objection", f"#{r.objection} by ivan: {r.disposition} by the chair"),
            ("In the rough", ", ".join(rough) or "nobody"),
        ]
        p.say()
        p.say("Summary")
        for key, value in rows:
            p.say(f"  {key + ':':<15}{value}")

    # ----------------------------------------------------------------- teardown

    async def look_around(self) -> None:
        """`--keep-running`: tell how to log in, then wait for Ctrl-C."""
        p = self.p
        cast, url = self.cast, self.synapse.base_url
        p.say()
        p.say("The homeserver and the bot keep running. Look around with any Matrix client")
        p.say("(Element: Sign in > Edit the homeserver):")
        p.say(f"  homeserver  {url}")
        p.say(f"  chair       {cast.chair.user_id:<22} password {cast.chair.password}")
        for persona in MEMBERS:
            user = cast.members[persona.localpart]
            p.say(f"  member      {user.user_id:<22} password {user.password}")
        p.say(f"  applicant   {cast.applicant.user_id:<22} password {cast.applicant.password}")
        p.say(f"In a room, `{PREFIX} help` lists the commands. Bot log: {self.workdir / 'bot.log'}")
        p.say("Press Ctrl-C to stop everything.")
        await asyncio.gather(*(c.close() for c in self.clients))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        handled: list[signal.Signals] = []
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
                    handled.append(sig)
        try:
            await self.guard("running until Ctrl-C", stop.wait())
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)

    async def close(self) -> None:
        """Stop the bot and close every client (idempotent, never raises)."""
        if self.app is not None:
            self.app.stop()
        if self.bot_task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.bot_task), 15)
            except (TimeoutError, asyncio.CancelledError):
                self.bot_task.cancel()
                with contextlib.suppress(BaseException):
                    await self.bot_task
            except Exception:  # noqa: S110 - a failing bot was already reported by `guard`
                pass
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.close()


async def _set_display_name(gateway: Gateway, name: str) -> None:
    path = f"/_matrix/client/v3/profile/{quote(gateway.user_id, safe='')}/displayname"
    with contextlib.suppress(GatewayError):
        await gateway.raw("PUT", path, {"displayname": name})


async def _play(story: _Story, config_path: Path, db_path: Path, keep_running: bool) -> None:
    """Set up, tell the story, print the summary; always stop the bot and the clients."""
    try:
        await story.setup(config_path, db_path)
        filed_at = time.monotonic()
        await story.file()
        await story.positions()
        await story.dispose()
        await story.deadline(filed_at)
        await story.confirm()
        page = await story.published()
        story.p.step("the story is complete" + ("" if keep_running else "; stopping the bot"))
        story.print_summary()
        story.p.say(f"  {'Published:':<15}{page}")
        if keep_running:
            await story.look_around()
    finally:
        await story.close()


# --------------------------------------------------------------------------- entry point


def run_demo(keep_running: bool = False, workdir: Path | None = None, language: str = "en") -> int:
    """Run the demo; returns the exit status (0 when the story ran to its end).

    `language` is the group's language (one of the six UN languages, `bot.i18n`): the bot
    says everything in the rooms in it; the narration stays English.

    `workdir` holds the homeserver (`synapse/`) and the bot's config, database and log
    (`bot/`, recreated on each run). Without it a temporary directory is used and removed
    at the end, unless the demo fails (to keep the logs) or `keep_running` is set.
    Returns 1 when the story fails (after printing why and where the logs are) and 130 after
    Ctrl-C; the homeserver is stopped in every case.
    """
    started = time.monotonic()
    out = sys.stdout
    if isinstance(out, io.TextIOWrapper):  # emoji on a terminal that cannot show them
        with contextlib.suppress(ValueError):
            out.reconfigure(errors="replace")
    progress = Progress(out, started)
    if importlib.util.find_spec("synapse") is None:
        print(
            "consensus-bot demo needs Synapse, the Matrix homeserver: run `make demo`, or "
            "`pip install -e '.[demo]'` in this virtualenv.",
            file=sys.stderr,
        )
        return 1

    temporary = workdir is None
    root = Path(tempfile.mkdtemp(prefix="consensus-demo-")) if workdir is None else workdir
    root = root.absolute()
    bot_dir = root / "bot"
    bot_log = bot_dir / "bot.log"
    synapse = LocalSynapse(root / "synapse")
    succeeded = interrupted = False

    progress.say("Consensus Bot demo: one participation request from filing to outcome,")
    progress.say("played by simulated members against a real bot and homeserver.")
    progress.say(
        f"Starting a throwaway homeserver on 127.0.0.1:{synapse.port} … "
        "(Synapse takes a few seconds)"
    )
    try:
        progress.doing = f"preparing the work directory {root}"
        shutil.rmtree(bot_dir, ignore_errors=True)  # a fresh bot (and database) on each run
        bot_dir.mkdir(parents=True)
        with _bot_logging(bot_log):
            progress.doing = "starting Synapse"
            synapse.start()
            progress.step(f"homeserver is up at {synapse.base_url}")
            progress.doing = "registering the accounts"
            cast = _register(synapse)
            progress.step(
                f"registered the bot, a chair, {len(cast.members)} members in "
                f"{len({p.stakeholder for p in MEMBERS})} stakeholder groups and "
                f"{len({p.region for p in MEMBERS})} regions, and the applicant"
            )
            story = _Story(synapse, cast, bot_dir, progress, language)
            asyncio.run(
                _play(story, bot_dir / "config.toml", bot_dir / "consensus.db", keep_running)
            )
        succeeded = True
        return 0
    except KeyboardInterrupt:
        interrupted = True
        progress.say()
        progress.say("Interrupted: stopping the bot and the homeserver.")
        return EXIT_INTERRUPTED
    except Exception as exc:  # every failure ends the demo with its story
        progress.say()
        progress.say(f"The demo failed while {progress.doing}:")
        for line in (str(exc) or type(exc).__name__).splitlines()[:30]:
            progress.say(f"  {line}")
        progress.say("Logs:")
        progress.say(f"  bot      {bot_log}")
        progress.say(f"  Synapse  {synapse.log_path}")
        progress.say(f"           {synapse.stdout_log_path}")
        return 1
    finally:
        synapse.stop()
        if succeeded:
            progress.say()
            progress.say(
                f"Stopped the bot and the homeserver after {progress.elapsed:.0f} s; "
                "nothing is left running."
            )
            if not keep_running:
                progress.say(
                    "To look around with a Matrix client afterwards, run: "
                    "consensus-bot demo --keep-running"
                )
        if temporary and (interrupted or (succeeded and not keep_running)):
            shutil.rmtree(root, ignore_errors=True)
        elif temporary and succeeded:
            progress.say(f"The demo's files are kept in {root}")
