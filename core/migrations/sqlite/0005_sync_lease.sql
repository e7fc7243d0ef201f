-- A lease per Google connection, so that when several gateway instances share
-- the registry only one of them syncs a given connection at a time (no double
-- calls, no racing token refreshes). Renewed while a pass runs; a crashed
-- instance's lease simply expires.
ALTER TABLE google_connections ADD COLUMN lease_owner TEXT;
ALTER TABLE google_connections ADD COLUMN lease_until INTEGER;
