-- One active settings account per practice user of a firm: otherwise a second
-- account linked to a partner's practice user could connect that partner's
-- diary to its own Google account.
CREATE UNIQUE INDEX firm_users_one_active_per_practice_user
    ON firm_users(firm_id, firm_user_id)
    WHERE disabled_at IS NULL AND firm_user_id IS NOT NULL;
