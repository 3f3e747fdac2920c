-- The bot's end-to-end state (its Olm account, Olm and Megolm sessions, members' devices,
-- encrypted rooms, key requests, device trust, cross-signing keys), one row per item, so that
-- it commits under the same transactions and fencing as everything else and a standby takes
-- over as the same device. `value` is sealed (AES-256-GCM, base64) under a key derived from
-- the key file beside the database: nothing in here is readable without that file.
CREATE TABLE crypto_state (
    device  TEXT NOT NULL,  -- user ID / device ID
    kind    TEXT NOT NULL,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (device, kind, key)
);
