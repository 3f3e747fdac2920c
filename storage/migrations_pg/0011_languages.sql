-- PostgreSQL version of storage/migrations/0011_languages.sql (same number, same table).

-- Version 11: each person's own language for what the bot tells them in direct messages
-- (`!cb language fr`, or chosen by an applicant at intake). Anyone may choose, member or
-- applicant, so it is keyed by the user ID alone; no row: the group's language.
CREATE TABLE languages (
    user_id TEXT PRIMARY KEY,
    language TEXT NOT NULL,
    set_at BIGINT NOT NULL
);
