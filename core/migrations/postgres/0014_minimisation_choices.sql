-- Minimisation choices per firm (a connector's manifest offers variants, e.g.
-- the matter number instead of the matter name as a calendar event's title):
-- the firm's choice per connector, kept whether or not the connector is on.
-- The consent ledger records the choices consented to, the hash of schema
-- and choices together (the consented contract), a reason (an automatic
-- switch-off of an unused grant names it) and a new action, `choose`: a
-- changed choice on an enabled grant is a consent event.
CREATE TABLE grant_choices (
    firm_id TEXT NOT NULL REFERENCES firms(id),
    connector TEXT NOT NULL,
    choices TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (firm_id, connector)
);

ALTER TABLE consent_ledger DROP CONSTRAINT consent_ledger_action_check;
ALTER TABLE consent_ledger ADD CONSTRAINT consent_ledger_action_check
    CHECK (action IN ('enable', 'disable', 'choose'));
ALTER TABLE consent_ledger ADD COLUMN choices TEXT NOT NULL DEFAULT '{}';
ALTER TABLE consent_ledger ADD COLUMN contract_hash TEXT;
UPDATE consent_ledger SET contract_hash = schema_hash;
ALTER TABLE consent_ledger ALTER COLUMN contract_hash SET NOT NULL;
ALTER TABLE consent_ledger ADD COLUMN reason TEXT;

-- The result of a send, by the send's seq: the viewer shows one row per call.
CREATE INDEX outbound_log_result_of ON outbound_log(firm_id, send_seq) WHERE kind = 'result';
