-- Version 5: the applicant's journey.

-- The application as the charter asks for it: individual or organisation (and who
-- represents it), country (ISO 3166-1 alpha-2), background (resources, roles, links), and
-- when the applicant affirmed the six principles (NULL: not yet).
ALTER TABLE requests ADD COLUMN kind TEXT;
ALTER TABLE requests ADD COLUMN representative TEXT;
ALTER TABLE requests ADD COLUMN country TEXT;
ALTER TABLE requests ADD COLUMN background TEXT;
ALTER TABLE requests ADD COLUMN affirmed_at INTEGER;

-- Members and the eligible snapshot know the country too (regions and developing-country
-- participation follow from it).
ALTER TABLE members ADD COLUMN country TEXT;
ALTER TABLE eligible ADD COLUMN country TEXT NOT NULL DEFAULT '';

-- Members' questions to the applicant, relayed by direct message, and the answers.
CREATE TABLE questions (
    id          INTEGER PRIMARY KEY,
    request_id  INTEGER NOT NULL REFERENCES requests(id),
    asked_by    TEXT NOT NULL,
    question    TEXT NOT NULL,
    asked_at    INTEGER NOT NULL,
    answer      TEXT,
    answered_at INTEGER
) STRICT;
CREATE INDEX questions_request ON questions(request_id, id);

-- The request card's event, edited in place when the request is edited; and every edit.
ALTER TABLE requests ADD COLUMN card_event_id TEXT;
CREATE TABLE request_edits (
    id         INTEGER PRIMARY KEY,
    request_id INTEGER NOT NULL REFERENCES requests(id),
    by         TEXT NOT NULL,
    changes    TEXT NOT NULL,        -- JSON: {field: new value}
    at         INTEGER NOT NULL
) STRICT;
CREATE INDEX request_edits_request ON request_edits(request_id, id);

-- A ballot whose live tally is out of date: edited by a periodic job, off the batch path.
ALTER TABLE requests ADD COLUMN tally_dirty INTEGER NOT NULL DEFAULT 0;
