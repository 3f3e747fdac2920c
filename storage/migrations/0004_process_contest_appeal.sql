-- Version 4: rough consensus you can defend.

-- The current draft of a ballot round, edited in place when it changes; and the chair's
-- rationale for acting before process.min_deadline had passed.
ALTER TABLE requests ADD COLUMN draft_event_id TEXT;
ALTER TABLE requests ADD COLUMN early_rationale TEXT;
-- The live tally of a ballot: one pinned message, edited as positions change.
ALTER TABLE requests ADD COLUMN tally_event_id TEXT;

-- An objection asked for its reason once (whatever channel raised it), and the objection a
-- `duplicate` disposition points to.
ALTER TABLE objections ADD COLUMN reason_asked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE objections ADD COLUMN duplicate_of INTEGER;

-- Every step of an objection's life, in order: raised, reason, disposed, contested.
CREATE TABLE objection_events (
    id           INTEGER PRIMARY KEY,
    objection_id INTEGER NOT NULL REFERENCES objections(id),
    kind         TEXT NOT NULL,        -- raised | reason | disposed | contested
    by           TEXT NOT NULL,
    state        TEXT,                 -- the disposition, for `disposed`
    text         TEXT,                 -- the reason, rationale or contest
    at           INTEGER NOT NULL
) STRICT;
CREATE INDEX objection_events_objection ON objection_events(objection_id, id);

-- Appeals of a decision, each answered by a chair.
CREATE TABLE appeals (
    id          INTEGER PRIMARY KEY,
    request_id  INTEGER NOT NULL REFERENCES requests(id),
    segment     INTEGER NOT NULL,      -- the decision (record segment) appealed
    member      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    state       TEXT NOT NULL DEFAULT 'open',   -- open | upheld | denied
    answered_by TEXT,
    rationale   TEXT,
    answered_at INTEGER
) STRICT;
CREATE INDEX appeals_request ON appeals(request_id, id);
