-- A connector's own records, one namespace per grant (the Google Calendar
-- connector's connections, event mappings and sync leases live here now), and
-- single-use consent states parked while a browser visits a third party.
-- The connector-specific tables of 0002 and 0005 are dropped: their rows were
-- Google connections, which fee earners connect again after this upgrade.
CREATE TABLE connector_records (
    grant_id TEXT NOT NULL REFERENCES grants(id),
    record_key TEXT NOT NULL,
    firm_id TEXT NOT NULL,
    connector TEXT NOT NULL,
    value TEXT NOT NULL,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (grant_id, record_key)
);
CREATE INDEX connector_records_firm ON connector_records(firm_id);

CREATE TABLE connector_parked (
    state_sha256 TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES grants(id),
    firm_id TEXT NOT NULL,
    connector TEXT NOT NULL,
    principal TEXT NOT NULL,
    payload_sealed TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX connector_parked_expiry ON connector_parked(expires_at);

DROP TABLE google_events;
DROP TABLE google_connections;
DROP TABLE google_pending_consents;
DROP TABLE google_grant_secrets;
