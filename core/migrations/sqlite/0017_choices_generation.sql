-- A firm's minimisation choices join what moves the registry generation
-- (0016): a gateway keeps each firm's choices in memory under the generation
-- the request's token was resolved under (registry/generation_cache.rs), so
-- a changed choice, stored while the connector is on or off, through any
-- code path or instance, is read afresh on the next request.
CREATE TRIGGER grant_choices_added AFTER INSERT ON grant_choices
BEGIN UPDATE registry_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER grant_choices_changed AFTER UPDATE ON grant_choices
BEGIN UPDATE registry_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER grant_choices_deleted AFTER DELETE ON grant_choices
BEGIN UPDATE registry_generation SET n = n + 1 WHERE id = 1; END;
