-- PostgreSQL version of storage/migrations/0007_held_sessions.sql (same number, same columns
-- and indexes). Differences: COLLATE "C" so text sorts byte-wise as in SQLite, strpos for
-- SQLite's instr.

-- Which Megolm session each held encrypted event waits for (its sender key and session ID),
-- and its sender's homeserver. A retry asks for the events of the sessions whose keys have
-- arrived, wherever they are in the table, so a flood of events nobody will ever give the bot
-- a key for cannot keep a member's readable event waiting; and holding is capped per room
-- and per homeserver beside the cap per sender. Rows held before this version have no session
-- ('': retried oldest first, as before).
ALTER TABLE held_events ADD COLUMN sender_key TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE held_events ADD COLUMN session_id TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE held_events ADD COLUMN server TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE held_events SET server = substr(sender, strpos(sender, ':') + 1);
CREATE INDEX held_events_by_session ON held_events(session_id, sender_key, room_id);
CREATE INDEX held_events_by_sender ON held_events(sender);
CREATE INDEX held_events_by_room ON held_events(room_id);
CREATE INDEX held_events_by_server ON held_events(server);
