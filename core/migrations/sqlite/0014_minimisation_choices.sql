-- Minimisation choices per firm (a connector's manifest offers variants, e.g.
-- the matter number instead of the matter name as a calendar event's title):
-- the firm's choice per connector, kept whether or not the connector is on.
-- The consent ledger records the choices consented to, the hash of schema
-- and choices together (the consented contract), a reason (an automatic
-- switch-off of an unused grant names it) and a new action, `choose`: a
-- changed choice on an enabled grant is a consent event. SQLite cannot widen
-- a CHECK, so the ledger is rebuilt with its rows and ids as they were.
CREATE TABLE grant_choices (
    firm_id TEXT NOT NULL REFERENCES firms(id),
    connector TEXT NOT NULL,
    choices TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (firm_id, connector)
);

CREATE TABLE consent_ledger_0014 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    firm_id TEXT NOT NULL REFERENCES firms(id),
    grant_id TEXT NOT NULL REFERENCES grants(id),
    connector TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('enable', 'disable', 'choose')),
    actor TEXT NOT NULL,
    schema_hash TEXT NOT NULL,
    contract_version TEXT NOT NULL,
    at INTEGER NOT NULL,
    choices TEXT NOT NULL DEFAULT '{}',
    contract_hash TEXT NOT NULL,
    reason TEXT
);
INSERT INTO consent_ledger_0014 (id, firm_id, grant_id, connector, action, actor, schema_hash, contract_version, at, choices, contract_hash)
    SELECT id, firm_id, grant_id, connector, action, actor, schema_hash, contract_version, at, '{}', schema_hash FROM consent_ledger;
DROP TABLE consent_ledger;
ALTER TABLE consent_ledger_0014 RENAME TO consent_ledger;
CREATE INDEX consent_ledger_firm ON consent_ledger(firm_id, id);

-- The result of a send, by the send's seq: the viewer shows one row per call.
CREATE INDEX outbound_log_result_of ON outbound_log(firm_id, send_seq) WHERE kind = 'result';
