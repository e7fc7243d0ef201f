-- Tripwires. A decoy credential is a client id planted where a thief would
-- find it; only its id is kept (any use of it is an alert, so the secret
-- printed with it is never stored). A security event is an alert: a decoy
-- used, a valid token probing outside its grant, an id no grant handed out.
CREATE TABLE tripwires (
    id TEXT PRIMARY KEY,
    firm_id TEXT NOT NULL REFERENCES firms(id),
    label TEXT NOT NULL,
    client_id TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE INDEX tripwires_firm ON tripwires(firm_id);
CREATE TABLE security_events (
    id TEXT PRIMARY KEY,
    firm_id TEXT NOT NULL REFERENCES firms(id),
    kind TEXT NOT NULL,
    grant_id TEXT,
    connector TEXT,
    tripwire_id TEXT,
    source_ip TEXT,
    detail TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX security_events_firm_at ON security_events(firm_id, at, id);
