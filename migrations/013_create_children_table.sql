-- Child profiles: children do not log in themselves, they are managed by the
-- adults of a household and receive tasks and points.

CREATE TABLE IF NOT EXISTS children (
    id             UUID         PRIMARY KEY DEFAULT gen_random_uuid(),
    -- CASCADE: a child profile exists only inside its household.
    household_id   UUID         NOT NULL REFERENCES households (id) ON DELETE CASCADE,
    name           VARCHAR(100) NOT NULL,
    -- Birth year rather than full date of birth: enough for age-appropriate
    -- tasks while storing less personal data.
    birth_year     SMALLINT,
    avatar_url     VARCHAR(500),
    points_balance INTEGER      NOT NULL DEFAULT 0,
    created_at     TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ  NOT NULL DEFAULT now(),
    CONSTRAINT children_name_not_blank_chk
        CHECK (char_length(btrim(name)) > 0),
    -- Fixed bounds because CHECK constraints must not depend on now()
    -- (dump and restore would re-evaluate them against a different clock).
    CONSTRAINT children_birth_year_chk
        CHECK (birth_year IS NULL OR birth_year BETWEEN 1900 AND 2100),
    CONSTRAINT children_avatar_url_not_blank_chk
        CHECK (avatar_url IS NULL OR char_length(btrim(avatar_url)) > 0),
    CONSTRAINT children_points_balance_chk
        CHECK (points_balance >= 0),
    -- Target for composite foreign keys so assignments and completions cannot
    -- reference a child of another household.
    CONSTRAINT children_id_household_key
        UNIQUE (id, household_id)
);

-- Foreign key index and "list children of a household".
CREATE INDEX IF NOT EXISTS idx_children_household_id
    ON children (household_id);

DROP TRIGGER IF EXISTS trg_children_set_updated_at ON children;
CREATE TRIGGER trg_children_set_updated_at
    BEFORE UPDATE ON children
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

INSERT INTO schema_migrations (version, name)
VALUES ('013', 'create_children_table')
ON CONFLICT (version) DO NOTHING;
