-- PostgreSQL version of storage/migrations/0006_held_encrypted_events.sql (same number, same
-- tables and columns). Differences: BIGINT for SQLite's 64-bit INTEGER, COLLATE "C" so text
-- sorts byte-wise as in SQLite.

-- Encrypted events the bot could not read yet (their room key had not reached its device):
-- kept with the time they were received, and applied under that time when the key comes, so
-- a late key neither loses a position nor makes it late. `notified_at`: when the sender was
-- told that the message could not be read (once).
CREATE TABLE held_events (
    event_id     TEXT COLLATE "C" PRIMARY KEY,
    room_id      TEXT COLLATE "C" NOT NULL,
    sender       TEXT COLLATE "C" NOT NULL,
    ts           BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    raw          TEXT COLLATE "C" NOT NULL,
    notified_at  BIGINT
);
CREATE INDEX held_events_by_receipt ON held_events(received_at);
