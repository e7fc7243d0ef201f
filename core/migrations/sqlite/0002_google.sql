-- Google Calendar connector (SQLite): per-user consent, connections with
-- sealed refresh tokens, the per-grant event-id secret, event mappings and
-- durable sync jobs. Times are Unix milliseconds, UTC.
CREATE TABLE google_grant_secrets (
    grant_id TEXT PRIMARY KEY REFERENCES grants(id),
    secret_sealed TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE google_pending_consents (
    state_sha256 TEXT PRIMARY KEY,
    firm_id TEXT NOT NULL REFERENCES firms(id),
    grant_id TEXT NOT NULL REFERENCES grants(id),
    firm_user_id TEXT NOT NULL,
    verifier_sealed TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX google_pending_consents_expiry ON google_pending_consents(expires_at);

CREATE TABLE google_connections (
    id TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES grants(id),
    firm_id TEXT NOT NULL REFERENCES firms(id),
    firm_user_id TEXT NOT NULL,
    calendar_id TEXT NOT NULL,
    refresh_token_sealed TEXT,
    key_id TEXT,
    status TEXT NOT NULL CHECK (status IN ('active', 'needs_reconsent', 'disconnected')),
    connected_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    cursor INTEGER NOT NULL DEFAULT 0,
    last_sync_at INTEGER,
    last_error TEXT,
    events_count INTEGER NOT NULL DEFAULT 0,
    job_due_at INTEGER,
    job_attempts INTEGER NOT NULL DEFAULT 0,
    UNIQUE (firm_id, firm_user_id)
);
CREATE INDEX google_connections_due ON google_connections(status, job_due_at);

CREATE TABLE google_events (
    connection_id TEXT NOT NULL REFERENCES google_connections(id),
    diary_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    content_sha256 TEXT,
    PRIMARY KEY (connection_id, diary_id)
);
