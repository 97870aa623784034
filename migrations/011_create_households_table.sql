-- Households are the tenant boundary: every child, task and history row
-- belongs to exactly one household, and deleting a household removes its data.

CREATE TABLE IF NOT EXISTS households (
    id         UUID         PRIMARY KEY DEFAULT gen_random_uuid(),
    name       VARCHAR(100) NOT NULL,
    -- SET NULL: the household is shared with other members and must survive
    -- its creator deleting their account. Ownership lives in household_members.
    created_by UUID         REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ  NOT NULL DEFAULT now(),
    CONSTRAINT households_name_not_blank_chk
        CHECK (char_length(btrim(name)) > 0)
);

-- Foreign key index: keeps the SET NULL on user deletion from scanning the table.
CREATE INDEX IF NOT EXISTS idx_households_created_by
    ON households (created_by);

DROP TRIGGER IF EXISTS trg_households_set_updated_at ON households;
CREATE TRIGGER trg_households_set_updated_at
    BEFORE UPDATE ON households
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

INSERT INTO schema_migrations (version, name)
VALUES ('011', 'create_households_table')
ON CONFLICT (version) DO NOTHING;
