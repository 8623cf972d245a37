-- Soft deletion (THREATS T36): a guardian's deletion of another device's envelope only marks
-- the row; listings and downloads skip marked rows; the purge erases blob and row once
-- erase_at has passed; a restore clears the mark. deleted_by is a device id (lower-case hex).
ALTER TABLE envelopes ADD COLUMN deleted_by TEXT;
ALTER TABLE envelopes ADD COLUMN deleted_at BIGINT;
ALTER TABLE envelopes ADD COLUMN erase_at BIGINT;
CREATE INDEX envelopes_by_erase_at ON envelopes (erase_at);
CREATE INDEX envelopes_by_deleter ON envelopes (deleted_by, deleted_at);
