-- scopegate registry (SQLite). Times are Unix milliseconds, UTC.
CREATE TABLE firms (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    data_url TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE grants (
    id TEXT PRIMARY KEY,
    firm_id TEXT NOT NULL REFERENCES firms(id),
    connector TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    schema_hash TEXT NOT NULL,
    contract_version TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (firm_id, connector)
);

CREATE TABLE consent_ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    firm_id TEXT NOT NULL REFERENCES firms(id),
    grant_id TEXT NOT NULL REFERENCES grants(id),
    connector TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('enable', 'disable')),
    actor TEXT NOT NULL,
    schema_hash TEXT NOT NULL,
    contract_version TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX consent_ledger_firm ON consent_ledger(firm_id, id);

CREATE TABLE credentials (
    id TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES grants(id),
    firm_id TEXT NOT NULL REFERENCES firms(id),
    client_id TEXT NOT NULL UNIQUE,
    secret_sha256 TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX credentials_grant ON credentials(grant_id);

CREATE TABLE access_tokens (
    token_sha256 TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES grants(id),
    credential_id TEXT NOT NULL REFERENCES credentials(id),
    firm_id TEXT NOT NULL REFERENCES firms(id),
    scopes TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX access_tokens_grant ON access_tokens(grant_id);
CREATE INDEX access_tokens_expiry ON access_tokens(expires_at);

CREATE TABLE outbound_log (
    firm_id TEXT NOT NULL REFERENCES firms(id),
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('send', 'result')),
    at INTEGER NOT NULL,
    grant_id TEXT NOT NULL,
    connector TEXT NOT NULL,
    direction TEXT NOT NULL,
    method TEXT NOT NULL,
    target TEXT NOT NULL,
    fields TEXT NOT NULL,
    record_ids TEXT NOT NULL,
    payload_sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    send_seq INTEGER,
    status INTEGER,
    latency_us INTEGER,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (firm_id, seq)
);
CREATE INDEX outbound_log_connector_time ON outbound_log(firm_id, connector, at);

CREATE TABLE outbound_chain_heads (
    firm_id TEXT PRIMARY KEY REFERENCES firms(id),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
