-- The outbound log's chain is keyed (HMAC-SHA256 under a key derived from the
-- master key whose id is `mac_key`). Records written before carry '' and are
-- re-chained under the key once, at the next `serve` (or `audit rekey`), after
-- their plain SHA-256 chain has been verified; `audit verify` accepts no other.
ALTER TABLE outbound_log ADD COLUMN mac_key TEXT NOT NULL DEFAULT '';
CREATE INDEX outbound_log_unkeyed ON outbound_log(firm_id) WHERE mac_key = '';
