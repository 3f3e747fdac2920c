-- Version 12: several groups in one bot (issue 26). What a group owns names it: its roster
-- (a person may be on several: one row each) and its requests, numbered per group (`#N` is
-- the `number`; `id` stays the bot-wide key every other table refers to). A database from
-- before holds one group, given the id "main" (the single-group layout's id); its request
-- numbers are its ids, so every `#N` and every frozen record stays as it was.
CREATE TABLE members_v12 (
    group_id    TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    stakeholder TEXT NOT NULL,
    region      TEXT NOT NULL,
    active      INTEGER NOT NULL DEFAULT 1,
    added_at    INTEGER NOT NULL,
    added_by    TEXT NOT NULL,
    tz          TEXT,
    removed_at  INTEGER,
    country     TEXT,
    PRIMARY KEY (group_id, user_id)
) STRICT;
INSERT INTO members_v12(group_id, user_id, stakeholder, region, active, added_at, added_by,
                        tz, removed_at, country)
    SELECT 'main', user_id, stakeholder, region, active, added_at, added_by, tz, removed_at,
           country
    FROM members;
DROP TABLE members;
ALTER TABLE members_v12 RENAME TO members;
CREATE INDEX members_user ON members(user_id);

ALTER TABLE requests ADD COLUMN group_id TEXT NOT NULL DEFAULT 'main';
ALTER TABLE requests ADD COLUMN number INTEGER;
UPDATE requests SET number = id;
CREATE UNIQUE INDEX requests_group_number ON requests(group_id, number);

-- The group a direct chat is about, once its member said (several groups: the bot asks).
ALTER TABLE dm_rooms ADD COLUMN group_id TEXT;

-- Each group keeps its own digest time.
UPDATE meta SET key = 'last_digest_at:main' WHERE key = 'last_digest_at';
