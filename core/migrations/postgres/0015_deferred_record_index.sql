-- The record-id index is written after the send, not in its transaction: the
-- writer commits records only, and indexes them when its queue is idle (a
-- report first indexes whatever is left). `outbound_index_marks` holds, per
-- firm, the seq up to which every send's record ids are in the index; every
-- send committed before this migration was indexed by the old writer, so the
-- mark starts at the firm's chain head.
CREATE TABLE outbound_index_marks (
    firm_id TEXT PRIMARY KEY,
    indexed_seq BIGINT NOT NULL
);
INSERT INTO outbound_index_marks (firm_id, indexed_seq)
    SELECT firm_id, seq FROM outbound_chain_heads;
