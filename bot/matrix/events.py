"""Plain inbound values decoded from a sync response; the services never see nio types."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ReactionAdded:
    """An `m.reaction` annotating `relates_to` with `key`."""

    room_id: str
    event_id: str
    sender: str
    ts: int
    relates_to: str
    key: str


@dataclass(frozen=True, slots=True)
class Redacted:
    """An `m.room.redaction` of `redacts`."""

    room_id: str
    event_id: str
    sender: str
    ts: int
    redacts: str


@dataclass(frozen=True, slots=True)
class CommandText:
    """A text message addressed to the bot (it starts with the command prefix)."""

    room_id: str
    event_id: str
    sender: str
    ts: int
    body: str


@dataclass(frozen=True, slots=True)
class EncryptionEnabled:
    """Someone switched on encryption in a room."""

    room_id: str
    event_id: str
    sender: str
    ts: int


@dataclass(frozen=True, slots=True)
class PollResponse:
    """A response to a poll (MSC3381, unstable or stable names); no answers = withdrawn."""

    room_id: str
    event_id: str
    sender: str
    ts: int
    poll_id: str
    answers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EncryptedMessage:
    """An encrypted event the bot cannot read (yet: its key has not arrived, or encryption
    is off). `raw` is the event's JSON, kept to decrypt it later; `sender_key` and
    `session_id` name the Megolm session whose key it waits for ("" when absent)."""

    room_id: str
    event_id: str
    sender: str
    ts: int
    raw: str = ""
    sender_key: str = ""
    session_id: str = ""


InboundEvent = (
    ReactionAdded | Redacted | CommandText | EncryptionEnabled | PollResponse | EncryptedMessage
)


@dataclass(frozen=True, slots=True)
class Invite:
    """The bot was invited to a room."""

    room_id: str
    inviter: str | None
    is_direct: bool


@dataclass(frozen=True, slots=True)
class LeftRoom:
    """The bot is no longer in a room: it left, was kicked or was banned."""

    room_id: str
    membership: str  # leave | ban
    by: str | None
    reason: str | None


@dataclass(slots=True)
class SyncBatch:
    """Everything the bot acts on from one sync response."""

    next_batch: str
    events: list[InboundEvent] = field(default_factory=list)
    invites: list[Invite] = field(default_factory=list)
    left: list[LeftRoom] = field(default_factory=list)
    limited_rooms: set[str] = field(default_factory=set)
    prev_batch: dict[str, str] = field(default_factory=dict)  # per limited room: where the gap ends
    joined_rooms: set[str] = field(default_factory=set)
    # Held encrypted events this batch applies after all (decrypted) or drops (refused), and
    # the time they were received: they are judged now, when their key came, and only a
    # position on a ballot still open then is recorded under that receipt time.
    released: list[str] = field(default_factory=list)
    received_at: int | None = None
    skipped: int = 0  # malformed or foreign events passed over
    undecodable: list[str] = field(default_factory=list)  # log refs of events set aside
