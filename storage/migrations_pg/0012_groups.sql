-- Version 12: several groups in one bot (issue 26); see the SQLite migration of the same
-- number for the reasoning. The roster's key becomes (group, user); requests are numbered
-- per group; a database from before holds the one group "main", numbered by its ids.
ALTER TABLE members ADD COLUMN group_id TEXT COLLATE "C" NOT NULL DEFAULT 'main';
ALTER TABLE members ALTER COLUMN group_id DROP DEFAULT;
ALTER TABLE members DROP CONSTRAINT members_pkey;
ALTER TABLE members ADD PRIMARY KEY (group_id, user_id);
CREATE INDEX members_user ON members(user_id);

ALTER TABLE requests ADD COLUMN group_id TEXT COLLATE "C" NOT NULL DEFAULT 'main';
ALTER TABLE requests ADD COLUMN number BIGINT;
UPDATE requests SET number = id;
CREATE UNIQUE INDEX requests_group_number ON requests(group_id, number);

ALTER TABLE dm_rooms ADD COLUMN group_id TEXT COLLATE "C";

UPDATE meta SET key = 'last_digest_at:main' WHERE key = 'last_digest_at';
