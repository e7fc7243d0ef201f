-- A firm's termination (every grant off, logins disabled; its data kept for
-- the retention period, then purged) and what remains of a purged firm's
-- outbound log: a tombstone with its last seq and hash, MAC'ed with the log
-- key, so `audit verify` (and signed checkpoints) see a purge, not a deletion.
ALTER TABLE firms ADD COLUMN terminated_at INTEGER;
ALTER TABLE firms ADD COLUMN terminated_by TEXT;
-- When the firm's registry data was purged (its outbound log may be kept longer).
ALTER TABLE firms ADD COLUMN data_purged_at INTEGER;
CREATE TABLE outbound_tombstones (
    firm_id TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    last_hash TEXT NOT NULL,
    terminated_at INTEGER NOT NULL,
    purged_at INTEGER NOT NULL,
    purged_by TEXT NOT NULL,
    mac_key TEXT NOT NULL,
    mac TEXT NOT NULL
);
