-- A firm's minimisation choices join what moves the registry generation
-- (0017): a gateway keeps each firm's choices in memory under the generation
-- the request's token was resolved under (registry/generation_cache.rs), so
-- a changed choice, stored while the connector is on or off, through any
-- code path or instance, is read afresh on the next request.
CREATE TRIGGER grant_choices_changed AFTER INSERT OR UPDATE OR DELETE ON grant_choices
    FOR EACH STATEMENT EXECUTE FUNCTION bump_registry_generation();
