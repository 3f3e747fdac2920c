-- Version 2: direct chats, anonymous hums, native polls, reminders, time zones, nudges.

ALTER TABLE requests ADD COLUMN poll_event_id TEXT;
ALTER TABLE requests ADD COLUMN nudged_at INTEGER;   -- last time the chairs were nudged
ALTER TABLE members ADD COLUMN tz TEXT;              -- IANA zone from the m.tz profile field

-- The bot's direct chat with each user, created on first need and reused.
CREATE TABLE dm_rooms (
    user_id    TEXT PRIMARY KEY,
    room_id    TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
) STRICT;

-- Hums are anonymous: `hummer` is an HMAC of the member under a key kept in meta, so no
-- message, summary or export can say who hummed what. The latest hum of a member wins.
CREATE TABLE hums (
    request_id INTEGER NOT NULL REFERENCES requests(id),
    hummer     TEXT NOT NULL,
    side       TEXT NOT NULL,      -- for | against
    strength   TEXT NOT NULL,      -- soft | loud
    PRIMARY KEY (request_id, hummer)
) STRICT, WITHOUT ROWID;

-- One row per reminder sent: (request, slot, member) makes every reminder idempotent.
CREATE TABLE reminders_sent (
    request_id INTEGER NOT NULL REFERENCES requests(id),
    slot       TEXT NOT NULL,      -- e.g. '172800000@1796126400000' (offset@deadline)
    member     TEXT NOT NULL,
    sent_at    INTEGER NOT NULL,
    PRIMARY KEY (request_id, slot, member)
) STRICT, WITHOUT ROWID;
