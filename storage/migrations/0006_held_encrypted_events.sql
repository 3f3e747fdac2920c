-- Encrypted events the bot could not read yet (their room key had not reached its device):
-- kept with the time they were received, and applied under that time when the key comes, so
-- a late key neither loses a position nor makes it late. `notified_at`: when the sender was
-- told that the message could not be read (once).
CREATE TABLE held_events (
    event_id     TEXT PRIMARY KEY,
    room_id      TEXT NOT NULL,
    sender       TEXT NOT NULL,
    ts           INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    raw          TEXT NOT NULL,
    notified_at  INTEGER
);
CREATE INDEX held_events_by_receipt ON held_events(received_at);
