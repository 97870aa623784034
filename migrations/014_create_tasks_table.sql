-- Task templates. The scheduler turns each active template into dated
-- task_assignments according to rule_type and the rule_type-specific
-- parameters in rules (JSONB, so new rule shapes need no migration).

CREATE TABLE IF NOT EXISTS tasks (
    id           UUID         PRIMARY KEY DEFAULT gen_random_uuid(),
    -- CASCADE: templates are household data and go with the household.
    household_id UUID         NOT NULL REFERENCES households (id) ON DELETE CASCADE,
    title        VARCHAR(200) NOT NULL,
    description  TEXT,
    points       INTEGER      NOT NULL DEFAULT 0,
    rule_type    VARCHAR(20)  NOT NULL,
    rules        JSONB        NOT NULL DEFAULT '{}'::jsonb,
    -- Retire templates by deactivating them: history keeps pointing at them.
    active       BOOLEAN      NOT NULL DEFAULT true,
    -- SET NULL: the task still belongs to the household after its author
    -- deletes their account.
    created_by   UUID         REFERENCES users (id) ON DELETE SET NULL,
    created_at   TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ  NOT NULL DEFAULT now(),
    CONSTRAINT tasks_title_not_blank_chk
        CHECK (char_length(btrim(title)) > 0),
    CONSTRAINT tasks_points_chk
        CHECK (points >= 0),
    CONSTRAINT tasks_rule_type_chk
        CHECK (rule_type IN ('daily', 'weekly', 'repeating', 'once')),
    -- The scheduler reads keys from rules, so arrays and scalars are invalid.
    CONSTRAINT tasks_rules_is_object_chk
        CHECK (jsonb_typeof(rules) = 'object'),
    -- Target for composite foreign keys so assignments cannot mix a task of
    -- one household with a child of another.
    CONSTRAINT tasks_id_household_key
        UNIQUE (id, household_id)
);

-- Foreign key index and "all tasks of a household" (admin view).
CREATE INDEX IF NOT EXISTS idx_tasks_household_id
    ON tasks (household_id);

-- The scheduler and the child view only ever read active templates.
CREATE INDEX IF NOT EXISTS idx_tasks_household_id_active
    ON tasks (household_id)
    WHERE active;

-- Foreign key index: keeps the SET NULL on user deletion cheap.
CREATE INDEX IF NOT EXISTS idx_tasks_created_by
    ON tasks (created_by);

DROP TRIGGER IF EXISTS trg_tasks_set_updated_at ON tasks;
CREATE TRIGGER trg_tasks_set_updated_at
    BEFORE UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

INSERT INTO schema_migrations (version, name)
VALUES ('014', 'create_tasks_table')
ON CONFLICT (version) DO NOTHING;
