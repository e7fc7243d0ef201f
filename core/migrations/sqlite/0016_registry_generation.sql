-- A counter every change to a token, credential or grant moves (revoked,
-- switched off, re-consented, deleted), in the same transaction, by trigger,
-- whatever code path made the change. A gateway keeps resolved tokens in
-- memory only for as long as the counter it read with them stands, so a
-- switched-off grant's token is refused on its very next request, on every
-- instance (registry/token_cache.rs). New tokens and credentials (inserts)
-- leave it alone: nothing cached can be stale because of them.
CREATE TABLE registry_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n INTEGER NOT NULL
);
INSERT INTO registry_generation (id, n) VALUES (1, 0);

CREATE TRIGGER access_tokens_changed AFTER UPDATE ON access_tokens
BEGIN UPDATE registry_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER access_tokens_deleted AFTER DELETE ON access_tokens
BEGIN UPDATE registry_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER credentials_changed AFTER UPDATE ON credentials
BEGIN UPDATE registry_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER credentials_deleted AFTER DELETE ON credentials
BEGIN UPDATE registry_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER grants_changed AFTER UPDATE ON grants
BEGIN UPDATE registry_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER grants_deleted AFTER DELETE ON grants
BEGIN UPDATE registry_generation SET n = n + 1 WHERE id = 1; END;
