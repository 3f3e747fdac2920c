-- PostgreSQL version of storage/migrations/0002_dms_hums_polls_reminders.sql (same number, same tables and columns).
-- Differences: BIGINT for SQLite's 64-bit INTEGER, identity columns for rowid keys,
-- COLLATE "C" so text sorts byte-wise as in SQLite, no STRICT / WITHOUT ROWID.

-- Version 2: direct chats, anonymous hums, native polls, reminders, time zones, nudges.

ALTER TABLE requests ADD COLUMN poll_event_id TEXT COLLATE "C";
ALTER TABLE requests ADD COLUMN nudged_at BIGINT;   -- last time the chairs were nudged
ALTER TABLE members ADD COLUMN tz TEXT COLLATE "C";              -- IANA zone from the m.tz profile field

-- The bot's direct chat with each user, created on first need and reused.
CREATE TABLE dm_rooms (
    user_id    TEXT COLLATE "C" PRIMARY KEY,
    room_id    TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- Hums are anonymous: `hummer` is an HMAC of the member under a key kept in meta, so no
-- message, summary or export can say who hummed what. The latest hum of a member wins.
CREATE TABLE hums (
    request_id BIGINT NOT NULL REFERENCES requests(id),
    hummer     TEXT COLLATE "C" NOT NULL,
    side       TEXT COLLATE "C" NOT NULL,      -- for | against
    strength   TEXT COLLATE "C" NOT NULL,      -- soft | loud
    PRIMARY KEY (request_id, hummer)
);

-- One row per reminder sent: (request, slot, member) makes every reminder idempotent.
CREATE TABLE reminders_sent (
    request_id BIGINT NOT NULL REFERENCES requests(id),
    slot       TEXT COLLATE "C" NOT NULL,      -- e.g. '172800000@1796126400000' (offset@deadline)
    member     TEXT COLLATE "C" NOT NULL,
    sent_at    BIGINT NOT NULL,
    PRIMARY KEY (request_id, slot, member)
);
