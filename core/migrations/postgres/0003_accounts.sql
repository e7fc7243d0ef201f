-- Firm accounts for the settings page (PostgreSQL). Times are Unix milliseconds, UTC.
CREATE TABLE firm_users (
    id TEXT PRIMARY KEY,
    firm_id TEXT NOT NULL REFERENCES firms(id),
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'fee_earner', 'bookkeeper')),
    firm_user_id TEXT,
    password_hash TEXT,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT,
    UNIQUE (firm_id, email)
);

CREATE TABLE admin_sessions (
    id_sha256 TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES firm_users(id),
    firm_id TEXT NOT NULL REFERENCES firms(id),
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX admin_sessions_user ON admin_sessions(user_id);

CREATE TABLE handoff_nonces (
    nonce_sha256 TEXT PRIMARY KEY,
    firm_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX handoff_nonces_expiry ON handoff_nonces(expires_at);

-- The field list of every data contract a firm consented to, by schema hash,
-- so settings can show what changed when a newer contract needs re-consent.
CREATE TABLE contract_fields (
    schema_hash TEXT PRIMARY KEY,
    connector TEXT NOT NULL,
    contract_version TEXT NOT NULL,
    fields TEXT NOT NULL
);
