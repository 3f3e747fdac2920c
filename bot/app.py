"""The one composition root: config → lock → database → gateway → services → loops."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from bot.config import DEFAULT_GROUP_ID, Config, GroupEntry
from bot.domain.errors import OperatorError
from bot.domain.lifecycle import RequestState
from bot.domain.ratelimit import RateLimiter
from bot.i18n.catalog import Translator
from bot.matrix.crosssign import CrossSigningError, StoredVault, ensure_cross_signed
from bot.matrix.crypto import CryptoError
from bot.matrix.gateway import Gateway, GatewayError
from bot.matrix.rooms import supports_restricted
from bot.services.ballots import Ballots
from bot.services.batches import Batches
from bot.services.calendar import Calendar
from bot.services.clock import Clock, SystemClock
from bot.services.deadlines import Timers
from bot.services.dms import DirectChats
from bot.services.groups import Groups, GroupServices
from bot.services.handlers import Handlers
from bot.services.hooks import SentHooks
from bot.services.invites import InvitePolicy
from bot.services.keyrows import DatabaseKeyRows
from bot.services.opening import RoomOpening
from bot.services.outbox import Doorbell, OutboxSender
from bot.services.publish import Publisher
from bot.services.reconcile import Reconciler
from bot.services.settings import Settings
from bot.services.syncer import Syncer
from storage.backend import Backend
from storage.factory import build_database, build_guard
from storage.keys import Keys, create_keys, key_path, load_keys
from storage.repo import Repository

log = logging.getLogger(__name__)
T = TypeVar("T")

LEGACY_HUM_KEY = "hum_key"  # where databases before the key file kept the hum key


def settle_heap() -> None:
    """Move what start-up built (modules, the nio client, config, caches) out of the
    garbage collector's sight (`gc.freeze`): a draft for 10,000 members allocates tens of
    thousands of short-lived tuples, and each full collection would otherwise walk the whole
    long-lived heap again — measured at half of a 10,000-member draft (`make bench`)."""
    gc.collect()
    gc.freeze()


class StartupError(OperatorError):
    """The bot cannot start; the message tells the operator what to do."""


class App:
    """Consensus Bot, wired. Construction does no I/O: `start()` connects, `run()` runs."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        sync_timeout_ms: int = 30_000,
        reset_cross_signing: bool = False,
    ) -> None:
        self.config = config
        self.reset_cross_signing = reset_cross_signing
        self.clock: Clock = clock or SystemClock()
        self.sync_timeout_ms = sync_timeout_ms
        # The backend is the config's choice; the guard makes this bot the only writer (a lock
        # file for SQLite; for PostgreSQL an advisory lock a standby waits for).
        self.db: Backend = build_database(config.storage, running_bot=True)
        self.guard = build_guard(config.storage, self.db)
        m = config.matrix
        self.gateway = Gateway(
            m.homeserver,
            m.user_id,
            m.device_id,
            crypto_store=m.crypto_store if m.encryption != "off" else None,
            crypto_rows=DatabaseKeyRows(self.db, self._key_secret),
        )
        self._loaded_keys: Keys | None = None
        self.timers = Timers(self.clock)
        self.doorbell = Doorbell()
        self.services: Services | None = None
        self.sender: OutboxSender | None = None
        self.syncer: Syncer | None = None
        self._stop = asyncio.Event()
        self._catch_up: asyncio.Task[None] | None = None
        self._open_ballots = 0

    async def start(self) -> Services:
        """Take the lock (a standby waits here), open the database, log in and build the
        services."""
        await self.guard.acquire()
        await self.db.open()
        m = self.config.matrix
        entries = self.config.entries
        password = m.password.get_secret_value() if m.password else None
        token = m.access_token.get_secret_value() if m.access_token else None
        try:
            await self._patiently(
                "logging in", lambda: self.gateway.connect(password=password, access_token=token)
            )
            if self.gateway.crypto is not None:
                await self._patiently("cross-signing the bot's device", self._cross_sign)
            main_rooms = [
                await self._patiently(
                    f"finding group {g.id}'s main room", partial(self._main_room_id, g)
                )
                for g in entries
            ]
            spaces = [
                await self._patiently(f"joining group {g.id}'s Space", partial(self._space, g))
                for g in entries
            ]
            publish_room = (
                await self._patiently("joining the public room", self._publish_room)
                if self.config.publish.room
                else None
            )
            room_version = await self._patiently(
                "reading the server's capabilities", self.gateway.default_room_version
            )
            for main_room_id in main_rooms if m.encryption == "required" else []:
                if not await self._patiently(
                    "reading the main room's encryption",
                    partial(self.gateway.encrypts, main_room_id),
                ):
                    raise StartupError(
                        f'matrix.encryption is "required" but the main room {main_room_id} is '
                        "not encrypted: switch encryption on in the room's settings, or set "
                        'matrix.encryption = "on"'
                    )
        except GatewayError as exc:
            raise StartupError(f"cannot reach or log in to {m.homeserver}: {exc}") from exc
        except (CryptoError, CrossSigningError) as exc:
            raise StartupError(str(exc)) from exc
        now = self.clock.now_ms()
        keys = await self._keys()
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            unknown = await repo.group_ids() - {g.id for g in entries}
            if unknown:
                raise StartupError(
                    f"the database holds group(s) {', '.join(sorted(unknown))} that the config "
                    "does not list: keep each group's id in [[groups]] (the single-group "
                    f'layout\'s group is "{DEFAULT_GROUP_ID}")'
                )
            for g in entries:
                for seed in g.members:
                    await repo.seed_member(g.id, seed.user_id, seed.stakeholder, seed.region, now)
        # Every language's catalog, read and compiled once here (I/O, at start).
        translator = Translator.load()
        every = [
            Settings.from_config(
                self.config,
                main_room_id=main_room_id,
                keys=keys,
                space_id=space_id,
                bot_needs_power_entry=not _creator_privileged(room_version),
                publish_room=publish_room,
                restricted_ok=supports_restricted(room_version),
                translator=translator,
                group=g,
            )
            for g, main_room_id, space_id in zip(entries, main_rooms, spaces, strict=True)
        ]
        if any(g.request_rooms == "restricted" for g in entries) and not supports_restricted(
            room_version
        ):
            log.warning(
                "request rooms: the server creates rooms of version %s, which cannot be "
                "joined through the main room; every member is invited instead",
                room_version,
            )
        services = build_services(
            every, self.db, self.clock, self.doorbell, gateway=self.gateway, timers=self.timers
        )
        self.sender = OutboxSender(self.db, self.gateway, services.hooks, self.clock, self.doorbell)
        self.syncer = Syncer(
            self.gateway,
            services.settings,
            services.batches,
            services.reconciler,
            services.dms,
            services.invites,
            self.sender.kick,
            timeout_ms=self.sync_timeout_ms,
            watchdog_s=m.sync_watchdog_ms / 1000,
            on_first_batch=self._after_first_sync,
        )
        self.services = services
        return services

    async def _key_secret(self) -> bytes:
        """The secret the end-to-end state is sealed under (derived keys; see keystore)."""
        return (await self._keys()).markers

    async def _keys(self) -> Keys:
        """The secret keys from the key file beside the database; created at the first start.

        A database from before the key file kept the hum key in `meta`: it moves to the file
        (written and synced first), then leaves the database. Hums stored without their key
        file would be double-counted under a new key, so that refuses to start.
        """
        if self._loaded_keys is not None:
            return self._loaded_keys
        path = self.config.storage.path
        async with self.db.transaction() as tx:
            repo = Repository(tx)
            legacy = await repo.get_meta(LEGACY_HUM_KEY)
            hums_stored = await repo.hums_stored()
        keys = load_keys(path)
        if keys is None:
            if hums_stored and legacy is None:
                raise StartupError(
                    f"the key file {key_path(path)} is missing but the database holds hums: "
                    "restore the key file from its backup (a new key would count hums twice)"
                )
            keys = create_keys(path, legacy)
        if legacy is not None:
            async with self.db.transaction() as tx:
                await Repository(tx).delete_meta(LEGACY_HUM_KEY)
        self._loaded_keys = keys
        return keys

    async def _patiently(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run a start-up call, waiting out outages and rate limits (not permanent errors)."""
        delay = 1.0
        while True:
            try:
                return await call()
            except GatewayError as exc:
                if not exc.transient:
                    raise
                wait = min(60.0, (exc.retry_after_ms or 0) / 1000 or delay) * random.uniform(1, 1.3)
                log.warning("%s: %s; trying again in %.1f s", what, exc, wait)
                await asyncio.sleep(wait)
                delay = min(60.0, delay * 2)
            except StartupError as exc:
                cause = exc.__cause__
                if not (isinstance(cause, GatewayError) and cause.transient):
                    raise
                log.warning("%s: %s; trying again in %.1f s", what, cause, delay)
                await asyncio.sleep(delay * random.uniform(1, 1.3))
                delay = min(60.0, delay * 2)

    async def _cross_sign(self) -> None:
        """Make the bot's device cross-signed (MSC4153: members' clients share room keys only
        with devices their owner signed); the identity's keys live in the database, sealed."""
        m = self.config.matrix
        crypto = self.gateway.crypto
        assert crypto is not None
        result = await ensure_cross_signed(
            self.gateway,
            password=m.password.get_secret_value() if m.password else None,
            vault=StoredVault(crypto, m.crypto_store / "cross-signing.json"),
            reset=self.reset_cross_signing,
        )
        log.info("cross-signing: %s", result.outcome.value)

    async def _main_room_id(self, group: GroupEntry) -> str:
        room = group.main_room
        return await self.gateway.resolve_alias(room) if room.startswith("#") else room

    async def _publish_room(self) -> str:
        """publish.room's ID, joined: outcomes are announced there (it must let the bot in)."""
        room = self.config.publish.room
        assert room is not None
        room_id = await self.gateway.resolve_alias(room) if room.startswith("#") else room
        if room_id not in await self.gateway.joined_rooms():
            try:
                await self.gateway.join(room_id)
            except GatewayError as exc:
                raise StartupError(
                    f"the bot cannot join the public room {room} ({exc}); invite it there"
                ) from exc
        return room_id

    async def _join_main_rooms(self) -> None:
        """Join each group's main room if needed. Only after the first sync stored a token,
        so that every command sent there after the join is seen (a fresh database skips the
        history of its first sync)."""
        assert self.services is not None
        joined = await self.gateway.joined_rooms()
        for group in self.services.groups:
            room_id = group.settings.main_room_id
            if room_id in joined:
                continue
            try:
                await self.gateway.join(room_id)
            except GatewayError as exc:
                room = self.config.entry(group.settings.group_id).main_room
                raise StartupError(
                    f"the bot is not in the main room {room} and cannot join it ({exc}); "
                    "invite it from a chair's account"
                ) from exc

    async def _space(self, group: GroupEntry) -> str | None:
        space = group.space
        if not space:
            return None
        space_id = await self.gateway.resolve_alias(space) if space.startswith("#") else space
        if space_id not in await self.gateway.joined_rooms():
            try:
                await self.gateway.join(space_id)
            except GatewayError as exc:
                raise StartupError(
                    f"the bot cannot join the Space {space} ({exc}); invite it and give it "
                    "the power to add rooms (m.space.child)"
                ) from exc
        return space_id

    def stop(self) -> None:
        """Ask `run()` to finish."""
        self._stop.set()

    async def run(self) -> None:
        """Run until `stop()` (or cancellation); always releases what it took."""
        try:
            # A standby waits in start() for the active bot's lock: a stop request ends that.
            starting = asyncio.create_task(self.start(), name="start")
            stopping = asyncio.create_task(self._stop.wait(), name="stop-while-starting")
            await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not starting.done():
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starting
                return
            starting.result()
            assert self.sender is not None
            assert self.syncer is not None
            self.timers.start()
            async with self.db.transaction() as tx:
                self._open_ballots = len(await Repository(tx).requests(None, [RequestState.OPEN]))
            settle_heap()
            tasks = [
                asyncio.create_task(self.sender.run(), name="outbox"),
                asyncio.create_task(self.syncer.run(), name="sync"),
                # Returns only by raising when this bot must stop writing (lost its lock).
                asyncio.create_task(self.guard.watch(), name="guard"),
            ]
            stopper = asyncio.create_task(self._stop.wait(), name="stop")
            done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
            for task in [*tasks, stopper]:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for task in done:
                if task is not stopper and not task.cancelled() and task.exception():
                    raise task.exception()  # type: ignore[misc]
        finally:
            if self._catch_up is not None:
                self._catch_up.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._catch_up
            await self.close()

    async def _after_first_sync(self) -> None:
        """The first sync is stored: join the main room, say we run, then catch up."""
        assert self.services is not None
        await self._patiently("joining the main rooms", self._join_main_rooms)
        log.info(
            "Consensus Bot running as %s; %d open ballots",
            self.services.settings.bot_user_id,
            self._open_ballots,
        )
        self._catch_up = asyncio.create_task(self._reconcile_at_start(), name="catch-up")

    async def _reconcile_at_start(self) -> None:
        """Catch up on what happened while the bot was down, then start the timers.

        Deadlines are restored only now, after the first sync and the reconciliation: an
        overdue deadline must not close a ballot before the positions sent in time are in.
        """
        services = self.services
        assert services is not None
        assert self.sender is not None
        try:
            fixed = await services.reconciler.reconcile()
            if fixed:
                log.info("reconciled %d reactions missed while down", fixed)
                self.sender.kick()
        except GatewayError as exc:
            log.warning("start-up reconciliation postponed: %s", exc)
        for group in services.groups:
            await group.calendar.restore(housekeeping=group is services.groups.first)
        if services.publisher is not None:
            # The site follows the database from the start (a decision while the bot was
            # stopped, a restored backup, a changed [publish] section).
            await services.publisher.refresh()
        try:
            for group in services.groups:
                await group.calendar.catch_up_digest()
            zones = await services.dms.refresh_timezones()
            if zones:
                log.info("%d members have a time zone in their profile", zones)
        except GatewayError as exc:
            log.warning("start-up catch-up postponed: %s", exc)

    async def close(self) -> None:
        """Stop timers, close the gateway and database, release the lock."""
        self.timers.stop()
        await self.gateway.close()
        await self.db.close()
        await self.guard.release()


@dataclass(frozen=True, slots=True)
class Services:
    """The services, wired: one per job (see ARCHITECTURE.md)."""

    settings: Settings  # the bot-wide values (the first group's settings hold them)
    db: Backend
    groups: Groups  # each group's settings, ballots, calendar and handlers
    publisher: Publisher | None
    batches: Batches  # sync batches and held encrypted events
    reconciler: Reconciler  # gaps and downtime, from the relations endpoint
    openings: dict[str, RoomOpening]  # each group's requests' rooms, created to open ballot
    dms: DirectChats  # direct chats and members' time zones
    invites: InvitePolicy  # which invites are accepted
    hooks: SentHooks  # the outbox sender's hooks, handed to the services above


def build_services(
    settings: Settings | Sequence[Settings],
    db: Backend,
    clock: Clock,
    doorbell: Doorbell,
    *,
    gateway: Gateway | None = None,
    timers: Timers | None = None,
) -> Services:
    """Wire the services, fully and in dependency order: for each group (one `Settings`
    each) its ballots, calendar and handlers; then the jobs over them all.

    The one place that does (the app, the tests and the benchmarks all call it); nothing is
    patched on afterwards. Without a gateway or timers it runs without a homeserver or a
    scheduler (tests fire timers by hand).
    """
    every = [settings] if isinstance(settings, Settings) else list(settings)
    limiter = RateLimiter()  # one per bot: a person's flood is theirs, in any group
    per_group = []
    for group in every:
        ballots = Ballots(group)
        calendar = Calendar(group, db, clock, ballots, doorbell, timers)
        handlers = Handlers(group, ballots, calendar, limiter)
        per_group.append(GroupServices(group, ballots, calendar, handlers))
    groups = Groups(per_group)
    first = groups.first.settings
    publisher = Publisher(db, clock, [g.settings for g in groups]) if first.publish_dir else None
    batches = Batches(groups, db, clock, doorbell, publisher)
    reconciler = Reconciler(first, db, batches, gateway)
    openings = {
        g.group_id: RoomOpening(g.settings, db, g.ballots, reconciler, gateway) for g in groups
    }
    dms = DirectChats(groups, db, clock, gateway)
    return Services(
        settings=first,
        db=db,
        groups=groups,
        publisher=publisher,
        batches=batches,
        reconciler=reconciler,
        openings=openings,
        dms=dms,
        invites=InvitePolicy(first, db, groups),
        hooks=SentHooks(groups, db, openings, dms, doorbell, publisher),
    )


def _creator_privileged(room_version: str) -> bool:
    """Room versions 12 and later give creators unlimited power without a users entry."""
    try:
        return int(room_version.split(".")[0]) >= 12
    except ValueError:
        return False
