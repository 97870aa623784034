-- Membership of users in households with a role, the basis of all
-- authorization checks (which households may this user see, may they edit).

CREATE TABLE IF NOT EXISTS household_members (
    id           UUID        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- CASCADE on both sides: a membership means nothing once either the
    -- household or the user is gone.
    household_id UUID        NOT NULL REFERENCES households (id) ON DELETE CASCADE,
    user_id      UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role         VARCHAR(20) NOT NULL DEFAULT 'member',
    joined_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT household_members_role_chk
        CHECK (role IN ('admin', 'parent', 'member')),
    -- Also serves as the index for household_id lookups (leading column).
    CONSTRAINT household_members_household_user_key
        UNIQUE (household_id, user_id)
);

-- "Which households does this user belong to" runs on every request.
CREATE INDEX IF NOT EXISTS idx_household_members_user_id
    ON household_members (user_id);

INSERT INTO schema_migrations (version, name)
VALUES ('012', 'create_household_members_table')
ON CONFLICT (version) DO NOTHING;
