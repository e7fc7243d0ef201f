-- A counter every change to a token, credential or grant moves (revoked,
-- switched off, re-consented, deleted), in the same transaction, by trigger,
-- whatever code path made the change. A gateway keeps resolved tokens in
-- memory only for as long as the counter it read with them stands, so a
-- switched-off grant's token is refused on its very next request, on every
-- instance (registry/token_cache.rs). New tokens and credentials (inserts)
-- leave it alone: nothing cached can be stale because of them.
CREATE TABLE registry_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n BIGINT NOT NULL
);
INSERT INTO registry_generation (id, n) VALUES (1, 0);

CREATE FUNCTION bump_registry_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE registry_generation SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER access_tokens_changed AFTER UPDATE OR DELETE ON access_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION bump_registry_generation();
CREATE TRIGGER credentials_changed AFTER UPDATE OR DELETE ON credentials
    FOR EACH STATEMENT EXECUTE FUNCTION bump_registry_generation();
CREATE TRIGGER grants_changed AFTER UPDATE OR DELETE ON grants
    FOR EACH STATEMENT EXECUTE FUNCTION bump_registry_generation();
