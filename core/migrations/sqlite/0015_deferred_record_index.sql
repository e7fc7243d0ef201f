-- The record-id index is written after the send, not in its transaction: the
-- writer commits records only, and indexes them when its queue is idle (a
-- report first indexes whatever is left). `outbound_index_marks` holds, per
-- firm, the seq up to which every send's record ids are in the index; every
-- send committed before this migration was indexed by the old writer, so the
-- mark starts at the firm's chain head. The index itself becomes one B-tree
-- (WITHOUT ROWID) instead of a table plus its primary-key index.
CREATE TABLE outbound_index_marks (
    firm_id TEXT PRIMARY KEY,
    indexed_seq INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO outbound_index_marks (firm_id, indexed_seq)
    SELECT firm_id, seq FROM outbound_chain_heads;

CREATE TABLE outbound_record_ids_0015 (
    firm_id TEXT NOT NULL,
    record_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (firm_id, record_id, seq)
) WITHOUT ROWID;
INSERT INTO outbound_record_ids_0015 (firm_id, record_id, seq)
    SELECT firm_id, record_id, seq FROM outbound_record_ids;
DROP TABLE outbound_record_ids;
ALTER TABLE outbound_record_ids_0015 RENAME TO outbound_record_ids;
