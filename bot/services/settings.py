"""What the services need to know, resolved from the config (and the server) at start."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.counting import DEFAULT_SKEW_MS
from bot.domain.ratelimit import DM_ROOMS_PER_SERVER


@dataclass(frozen=True, slots=True)
class Settings:
    """The resolved settings every service reads; built once by the composition root."""

    bot_user_id: str
    prefix: str
    main_room_id: str
    group_name: str
    chairs: frozenset[str]
    allowed_inviters: frozenset[str] = frozenset()
    self_apply: bool = True
    deadline_ms: int = 14 * 86_400_000
    min_deadline_ms: int = 72 * 3_600_000
    quorum: float = 0.5
    marker_key: bytes = b"dev"  # HMAC key of the secret tokens in room markers
    bot_needs_power_entry: bool = False  # room versions before 12 do not privilege creators
    reminders_ms: tuple[int, ...] = ()
    group_tz: str = "UTC"
    space_id: str | None = None
    server_name: str = ""
    digest_cron: dict[str, str] | None = None
    hum_key: bytes = b"dev"  # HMAC key under which hums are stored
    hum_min: int = 5  # fewest hums of eligible members before any loudness is reported
    appeal_window_ms: int | None = 14 * 86_400_000
    publish_dir: str | None = None  # publish.dir: the public site, regenerated after decisions
    publish_room: str | None = None  # publish.room: where outcomes are announced publicly
    publish_names_beside_objections: bool = False
    contest_window_ms: int = 48 * 3_600_000
    clock_skew_ms: int = DEFAULT_SKEW_MS
    max_open_requests: int = 3  # undecided requests one member may have filed
    applications_per_day: int = 1  # applications by direct message per account and day
    retention_ms: int = 30 * 86_400_000  # how long sent messages and processed IDs are kept
    encryption: str = "off"  # matrix.encryption: "required" | "on" | "off"
    undecryptable_notice_ms: int = 10 * 60_000  # unreadable this long: tell the sender once
    # group.dm_rooms_per_server: direct chats the bot keeps with outsiders of one server
    # (one each at most); past it, new direct-chat invites from there are refused.
    dm_rooms_per_server: int = DM_ROOMS_PER_SERVER

    @property
    def encrypts(self) -> bool:
        """Whether the bot creates encrypted rooms and reads encrypted events."""
        return self.encryption != "off"
