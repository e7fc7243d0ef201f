-- Which firm records each send carried, searchable: one row per (firm, record
-- id, send seq), written in the same transaction as the send record. The
-- privacy office's reports (which third parties received what about a person;
-- whose data left through a channel) read it instead of scanning the log.
CREATE TABLE outbound_record_ids (
    firm_id TEXT NOT NULL,
    record_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (firm_id, record_id, seq)
);
INSERT INTO outbound_record_ids (firm_id, record_id, seq)
    SELECT DISTINCT l.firm_id, j.value, l.seq
    FROM outbound_log l, json_each(l.record_ids) j
    WHERE l.kind = 'send' AND j.value <> '';
CREATE INDEX outbound_log_grant_at ON outbound_log(firm_id, grant_id, at);
