-- Consensus Bot schema, version 1. Timestamps are integer milliseconds UTC.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- The roster. Authorisation is by Matrix user ID against this table, never by display name.
CREATE TABLE members (
    user_id     TEXT PRIMARY KEY,
    stakeholder TEXT NOT NULL,
    region      TEXT NOT NULL,
    active      INTEGER NOT NULL DEFAULT 1,
    added_at    INTEGER NOT NULL,
    added_by    TEXT NOT NULL          -- 'config', a chair's MXID, or 'admission:#N'
) STRICT;

CREATE TABLE requests (
    id              INTEGER PRIMARY KEY,
    applicant       TEXT NOT NULL,      -- a Matrix user ID or a name
    name            TEXT,
    org             TEXT,
    stakeholder     TEXT,
    region          TEXT,
    statement       TEXT NOT NULL,
    filed_by        TEXT NOT NULL,
    filed_event_id  TEXT NOT NULL UNIQUE,  -- makes filing idempotent
    self_applied    INTEGER NOT NULL DEFAULT 0,
    state           TEXT NOT NULL,
    room_id         TEXT UNIQUE,
    ballot_event_id TEXT UNIQUE,
    deadline_at     INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    opened_at       INTEGER,
    closed_at       INTEGER,
    proposal        TEXT,               -- the draft's proposed outcome when drafted
    outcome         TEXT,
    decided_by      TEXT,
    rationale       TEXT,
    decided_at      INTEGER
) STRICT;
CREATE INDEX requests_state ON requests(state);

-- Members eligible on a request, snapshotted when the ballot opens.
CREATE TABLE eligible (
    request_id  INTEGER NOT NULL REFERENCES requests(id),
    user_id     TEXT NOT NULL,
    stakeholder TEXT NOT NULL,
    region      TEXT NOT NULL,
    PRIMARY KEY (request_id, user_id)
) STRICT, WITHOUT ROWID;

-- Append-only history of every position input; the event ID makes applying idempotent.
CREATE TABLE position_inputs (
    id          INTEGER PRIMARY KEY,
    request_id  INTEGER NOT NULL REFERENCES requests(id),
    member      TEXT NOT NULL,
    event_id    TEXT NOT NULL UNIQUE,
    source      TEXT NOT NULL,          -- reaction | command | poll
    position    TEXT,                   -- NULL: withdrawn
    reason      TEXT,
    ts          INTEGER NOT NULL,       -- origin_server_ts
    recorded_at INTEGER NOT NULL
) STRICT;
CREATE INDEX position_inputs_member ON position_inputs(request_id, member);

-- Redactions seen, kept even when their target is unknown yet (it may arrive later).
CREATE TABLE redactions (
    event_id    TEXT PRIMARY KEY,
    redacts     TEXT NOT NULL,
    room_id     TEXT NOT NULL,
    sender      TEXT NOT NULL,
    ts          INTEGER NOT NULL
) STRICT;
CREATE INDEX redactions_redacts ON redactions(redacts);

-- The current position per member: derived from position_inputs, kept for cheap reads.
CREATE TABLE current_positions (
    request_id  INTEGER NOT NULL REFERENCES requests(id),
    member      TEXT NOT NULL,
    position    TEXT NOT NULL,
    reason      TEXT,
    event_id    TEXT NOT NULL,
    ts          INTEGER NOT NULL,
    PRIMARY KEY (request_id, member)
) STRICT, WITHOUT ROWID;

CREATE TABLE objections (
    id          INTEGER PRIMARY KEY,
    request_id  INTEGER NOT NULL REFERENCES requests(id),
    member      TEXT NOT NULL,
    event_id    TEXT NOT NULL,          -- the input that raised it
    reason      TEXT,
    state       TEXT NOT NULL,
    rationale   TEXT,
    disposed_by TEXT,
    created_at  INTEGER NOT NULL,
    disposed_at INTEGER
) STRICT;
CREATE INDEX objections_request ON objections(request_id, member);

-- Everything the bot sends is written here first, in the transaction that decided it, and
-- sent afterwards with its txn_id so a resend after a crash is dropped by the homeserver.
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY,
    txn_id      TEXT NOT NULL UNIQUE,
    op          TEXT NOT NULL,          -- message | reaction | create_room | invite | join | leave
    request_id  INTEGER REFERENCES requests(id),
    room_id     TEXT,                   -- NULL: the request's room, resolved when sent
    target      TEXT,                   -- event to relate to; 'ballot' = the request's ballot
    purpose     TEXT,                   -- e.g. 'ballot': what to record once sent
    payload     TEXT NOT NULL,          -- JSON
    state       TEXT NOT NULL DEFAULT 'pending',  -- pending | sent | failed
    attempts    INTEGER NOT NULL DEFAULT 0,
    result      TEXT,                   -- event or room ID, or the last error
    created_at  INTEGER NOT NULL,
    sent_at     INTEGER
) STRICT;
CREATE INDEX outbox_pending ON outbox(state, id);

CREATE TABLE processed_events (
    event_id     TEXT PRIMARY KEY,
    room_id      TEXT NOT NULL,
    processed_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE failed_events (
    event_id  TEXT PRIMARY KEY,
    room_id   TEXT NOT NULL,
    ref       TEXT NOT NULL,            -- the reference shown to users and in the log
    error     TEXT NOT NULL,
    failed_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
