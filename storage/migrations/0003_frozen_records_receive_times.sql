-- Version 3: the record is the decision.
-- Inputs remember the room they were received in (a retraction counts only there), and
-- redactions when the bot received them (lateness is judged on the bot's clock).
ALTER TABLE position_inputs ADD COLUMN room_id TEXT NOT NULL DEFAULT '';
UPDATE position_inputs SET room_id = coalesce(
    (SELECT r.room_id FROM requests r WHERE r.id = position_inputs.request_id), '')
WHERE source != 'command';
ALTER TABLE redactions ADD COLUMN recorded_at INTEGER;
UPDATE redactions SET recorded_at = ts;

-- When a member left the roster: a removal counts for ballots still open at that moment and
-- never reaches back into a ballot that had already closed. Old inactive rows: long ago.
ALTER TABLE members ADD COLUMN removed_at INTEGER;
UPDATE members SET removed_at = 0 WHERE active = 0;

-- The current position is derived by one rule (bot/domain/counting.py) from the inputs;
-- a stored copy could only disagree with it.
DROP TABLE current_positions;

-- The decision record, built once when the chair decides and never changed afterwards.
-- A reopen starts a new segment whose chain begins at the previous segment's head.
CREATE TABLE records (
    request_id INTEGER NOT NULL REFERENCES requests(id),
    segment    INTEGER NOT NULL,
    head       TEXT NOT NULL,
    body       TEXT NOT NULL,      -- the canonical JSON export, byte for byte
    frozen_at  INTEGER NOT NULL,
    PRIMARY KEY (request_id, segment)
) STRICT;

-- Files of unchanging content (a frozen record in one format), uploaded once and referred to
-- by every later export instead of being uploaded and stored again.
CREATE TABLE uploads (
    key        TEXT PRIMARY KEY,     -- e.g. '<record head>.md'
    uri        TEXT NOT NULL,        -- mxc://
    created_at INTEGER NOT NULL
) STRICT;

-- A member may have several direct chats with the bot (one they opened, one the bot opened):
-- each counts as theirs; the newest is where the bot writes to them.
CREATE TABLE dm_rooms_v3 (
    room_id    TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
INSERT INTO dm_rooms_v3(room_id, user_id, created_at)
    SELECT room_id, user_id, created_at FROM dm_rooms;
DROP TABLE dm_rooms;
ALTER TABLE dm_rooms_v3 RENAME TO dm_rooms;
CREATE INDEX dm_rooms_user ON dm_rooms(user_id, created_at);
