-- PostgreSQL version of storage/migrations/0008_crypto_state.sql (same number, same tables
-- and columns). Differences: COLLATE "C" so text sorts byte-wise as in SQLite.

-- The bot's end-to-end state (its Olm account, Olm and Megolm sessions, members' devices,
-- encrypted rooms, key requests, device trust, cross-signing keys), one row per item, so that
-- it commits under the same transactions and fencing as everything else and a standby takes
-- over as the same device. `value` is sealed (AES-256-GCM, base64) under a key derived from
-- the key file beside the database: nothing in here is readable without that file.
CREATE TABLE crypto_state (
    device  TEXT COLLATE "C" NOT NULL,  -- user ID / device ID
    kind    TEXT COLLATE "C" NOT NULL,
    key     TEXT COLLATE "C" NOT NULL,
    value   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (device, kind, key)
);
