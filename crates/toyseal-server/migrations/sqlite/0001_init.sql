-- toyseal-server schema v1 (SQLite). Public keys, roster wire bytes, ids, sizes and times
-- only: no names, ages or profile fields exist. Ids are lower-case hex text.
CREATE TABLE families (
    family TEXT PRIMARY KEY NOT NULL,
    current_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE roster_versions (
    family TEXT NOT NULL REFERENCES families(family),
    version BIGINT NOT NULL,
    bytes BLOB NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (family, version)
);
-- One row per (family, device, version range): until_version NULL = in the current roster.
CREATE TABLE devices (
    family TEXT NOT NULL REFERENCES families(family),
    device_id TEXT NOT NULL,
    public_key BLOB NOT NULL,
    role TEXT NOT NULL,
    from_version BIGINT NOT NULL,
    until_version BIGINT,
    PRIMARY KEY (family, device_id, from_version)
);
CREATE INDEX devices_by_device ON devices (device_id, until_version);
CREATE TABLE envelopes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    family TEXT NOT NULL REFERENCES families(family),
    id TEXT NOT NULL,
    sender TEXT NOT NULL,
    size BIGINT NOT NULL,
    roster_version BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    blob_key TEXT NOT NULL,
    UNIQUE (family, id)
);
CREATE INDEX envelopes_by_family ON envelopes (family, seq);
-- The replay cache, shared by every instance on this database (T03).
CREATE TABLE nonces (
    device TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires BIGINT NOT NULL,
    PRIMARY KEY (device, nonce)
);
CREATE INDEX nonces_by_expiry ON nonces (expires);
