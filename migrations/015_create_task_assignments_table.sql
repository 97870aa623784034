-- Dated task instances assigned to one child: what the child sees as the daily
-- to-do list. household_id is denormalized for tenant-scoped queries and is
-- kept consistent with the task and the child by composite foreign keys.

CREATE TABLE IF NOT EXISTS task_assignments (
    id           UUID        PRIMARY KEY DEFAULT gen_random_uuid(),
    task_id      UUID        NOT NULL,
    child_id     UUID        NOT NULL,
    household_id UUID        NOT NULL,
    date         DATE        NOT NULL,
    status       VARCHAR(20) NOT NULL DEFAULT 'pending',
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT task_assignments_status_chk
        CHECK (status IN ('pending', 'completed', 'overdue', 'skipped')),
    -- CASCADE: instances are derived from the household, nothing to keep.
    CONSTRAINT task_assignments_household_id_fkey
        FOREIGN KEY (household_id) REFERENCES households (id) ON DELETE CASCADE,
    -- CASCADE: an instance is generated from its template and is meaningless
    -- without it. Completed work survives in task_completions.
    CONSTRAINT task_assignments_task_household_fkey
        FOREIGN KEY (task_id, household_id)
        REFERENCES tasks (id, household_id) ON DELETE CASCADE,
    -- CASCADE: removing a child profile removes its open to-do items.
    CONSTRAINT task_assignments_child_household_fkey
        FOREIGN KEY (child_id, household_id)
        REFERENCES children (id, household_id) ON DELETE CASCADE,
    -- The scheduler may run repeatedly, this makes generation idempotent.
    -- Also serves as the index for the task foreign key (leading column).
    CONSTRAINT task_assignments_task_child_date_key
        UNIQUE (task_id, child_id, date),
    -- Target for the composite foreign key from task_completions.
    CONSTRAINT task_assignments_id_household_key
        UNIQUE (id, household_id)
);

-- Child foreign key and "this child, this day" (child dashboard).
CREATE INDEX IF NOT EXISTS idx_task_assignments_child_id_date
    ON task_assignments (child_id, date);

-- Household foreign key and "whole household, this day or week" (parent view).
CREATE INDEX IF NOT EXISTS idx_task_assignments_household_id_date
    ON task_assignments (household_id, date);

DROP TRIGGER IF EXISTS trg_task_assignments_set_updated_at ON task_assignments;
CREATE TRIGGER trg_task_assignments_set_updated_at
    BEFORE UPDATE ON task_assignments
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

INSERT INTO schema_migrations (version, name)
VALUES ('015', 'create_task_assignments_table')
ON CONFLICT (version) DO NOTHING;
