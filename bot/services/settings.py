"""What the services need to know, resolved from the config (and the server) at start."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Config, GroupEntry
from bot.domain.publish import PublishOptions
from bot.i18n.catalog import Language, Translator
from storage.keys import Keys


@dataclass(frozen=True, slots=True)
class Settings:
    """The resolved settings every service of one group reads (a bot serving several groups
    has one `Settings` per group: the bot-wide values are the same in each). Built by
    `from_config` only: every value comes from the `Config` (whose defaults are the only
    defaults), the keys from the key file and the rest from the server at start, so nothing
    here has a default of its own."""

    group_id: str  # the group's `id` ("main" for the single-group layout)
    # Every group the bot serves, (id, name) in the config's order: a direct chat with a
    # person of several groups asks which one a command is about.
    groups: tuple[tuple[str, str], ...]
    bot_user_id: str
    prefix: str
    main_room_id: str
    group_name: str
    chairs: frozenset[str]
    allowed_inviters: frozenset[str]
    self_apply: bool
    deadline_ms: int
    min_deadline_ms: int
    quorum: float
    marker_key: bytes  # HMAC key of the secret tokens in room markers
    bot_needs_power_entry: bool  # room versions before 12 do not privilege creators
    reminders_ms: tuple[int, ...]
    group_tz: str
    space_id: str | None
    server_name: str
    digest_cron: dict[str, str] | None
    hum_key: bytes  # HMAC key under which hums are stored
    hum_min: int  # fewest hums of eligible members before any loudness is reported
    appeal_window_ms: int | None
    contest_window_ms: int
    clock_skew_ms: int
    max_open_requests: int  # undecided requests one member may have filed
    applications_per_day: int  # applications by direct message per account and day
    retention_ms: int  # how long sent messages and processed IDs are kept
    encryption: str  # matrix.encryption: "required" | "on" | "off"
    undecryptable_notice_ms: int  # unreadable this long: tell the sender once
    # group.dm_rooms_per_server: direct chats the bot keeps with outsiders of one server
    # (one each at most); past it, new direct-chat invites from there are refused.
    dm_rooms_per_server: int
    publish_dir: str | None  # publish.dir: the public site, regenerated after decisions
    publish_room: str | None  # publish.room (resolved): where outcomes are announced
    publish: PublishOptions  # what the group chose to publish ([publish])
    # Request rooms joinable by the main room's members (group.request_rooms, and a room
    # version that can); None: invite-only rooms, every member invited.
    allow_room: str | None
    invite_servers: frozenset[str]  # group.invite_servers: their members are invited
    group_language: str  # group.language: what the rooms are told in
    translator: Translator  # every language's catalog (loaded by the composition root)

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        main_room_id: str,
        keys: Keys,
        space_id: str | None,
        bot_needs_power_entry: bool,
        publish_room: str | None = None,
        restricted_ok: bool = True,
        translator: Translator | None = None,
        group: GroupEntry | None = None,
    ) -> Settings:
        """The settings of a configured bot: `main_room_id`, `space_id` and `publish_room`
        as resolved on the server, `keys` from the key file, `bot_needs_power_entry` from the
        room version, `restricted_ok` from it too (whether it can do restricted joins);
        `translator` the loaded catalogs (None: English only, for tools and tests that do not
        read any other language); `group` the group these settings serve (None: the first)."""
        g = group or config.first
        m, p, d = config.matrix, g.process, g.digest
        return cls(
            group_id=g.id,
            groups=tuple((e.id, e.name) for e in config.entries),
            bot_user_id=m.user_id,
            prefix=m.command_prefix,
            main_room_id=main_room_id,
            group_name=g.name,
            chairs=frozenset(g.chairs),
            allowed_inviters=frozenset(m.allowed_inviters),
            self_apply=g.self_apply,
            deadline_ms=p.deadline_ms,
            min_deadline_ms=p.min_deadline_ms,
            quorum=p.quorum,
            marker_key=keys.markers,
            bot_needs_power_entry=bot_needs_power_entry,
            reminders_ms=p.reminders_ms,
            group_tz=g.timezone,
            space_id=space_id,
            server_name=m.user_id.split(":", 1)[1],
            digest_cron=d.cron.apscheduler_fields() if d.enabled and d.cron else None,
            hum_key=keys.hums,
            hum_min=p.hum_min,
            appeal_window_ms=p.appeal_window_ms,
            contest_window_ms=p.contest_window_ms,
            clock_skew_ms=p.clock_skew_ms,
            max_open_requests=p.max_open_requests,
            applications_per_day=p.applications_per_day,
            retention_ms=config.storage.retention_ms,
            encryption=m.encryption,
            undecryptable_notice_ms=m.undecryptable_notice_ms,
            dm_rooms_per_server=config.first.dm_rooms_per_server,
            publish_dir=None if config.publish.dir is None else str(config.publish.dir),
            publish_room=publish_room,
            publish=config.publish.options(),
            allow_room=main_room_id if g.request_rooms == "restricted" and restricted_ok else None,
            invite_servers=frozenset(g.invite_servers),
            group_language=g.language,
            translator=translator or Translator.source_only(),
        )

    @property
    def lang(self) -> Language:
        """The group's language: what every room message is said in."""
        return self.translator.get(self.group_language)

    def language(self, code: str | None) -> Language:
        """A person's language for their direct messages: the one they chose, else the
        group's."""
        return self.translator.get(code or self.group_language)

    @property
    def encrypts(self) -> bool:
        """Whether the bot creates encrypted rooms and reads encrypted events."""
        return self.encryption != "off"
