-- Sender chains (docs/spec/envelope.md §11.4, signed-requests.md): each envelope's signed
-- sender sequence, header hash and previous-envelope hash, so the server refuses a re-used
-- (sender, sequence) and checks the links to the sender's stored neighbours. Rows stored before
-- this migration have sequence 0 and empty hashes and take part in no rule.
ALTER TABLE envelopes ADD COLUMN sender_sequence BIGINT NOT NULL DEFAULT 0;
ALTER TABLE envelopes ADD COLUMN header_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE envelopes ADD COLUMN previous TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX envelopes_by_sender_sequence
    ON envelopes (family, sender, sender_sequence) WHERE sender_sequence > 0;
