-- Append-only completion history for analytics and points. It must outlive
-- the assignment rows and task templates it came from, so those references
-- are nulled rather than cascaded. points_earned is a snapshot for that reason.

CREATE TABLE IF NOT EXISTS task_completions (
    id                 UUID        PRIMARY KEY DEFAULT gen_random_uuid(),
    task_assignment_id UUID,
    child_id           UUID        NOT NULL,
    household_id       UUID        NOT NULL,
    task_id            UUID,
    completed_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    points_earned      INTEGER     NOT NULL DEFAULT 0,
    note               TEXT,
    CONSTRAINT task_completions_points_earned_chk
        CHECK (points_earned >= 0),
    CONSTRAINT task_completions_note_not_blank_chk
        CHECK (note IS NULL OR char_length(btrim(note)) > 0),
    -- CASCADE: history is tenant data and is erased with the household.
    CONSTRAINT task_completions_household_id_fkey
        FOREIGN KEY (household_id) REFERENCES households (id) ON DELETE CASCADE,
    -- CASCADE: deleting a child profile erases the personal history of that child.
    CONSTRAINT task_completions_child_household_fkey
        FOREIGN KEY (child_id, household_id)
        REFERENCES children (id, household_id) ON DELETE CASCADE,
    -- SET NULL (task_assignment_id only): old assignments may be pruned while
    -- the completion record and its points stay. household_id is not nulled.
    CONSTRAINT task_completions_assignment_household_fkey
        FOREIGN KEY (task_assignment_id, household_id)
        REFERENCES task_assignments (id, household_id)
        ON DELETE SET NULL (task_assignment_id),
    -- SET NULL (task_id only): hard-deleting a template must not rewrite the
    -- points a child already earned.
    CONSTRAINT task_completions_task_household_fkey
        FOREIGN KEY (task_id, household_id)
        REFERENCES tasks (id, household_id)
        ON DELETE SET NULL (task_id),
    -- An assignment is completed at most once, so points cannot be double
    -- counted. Also serves as the index for that foreign key.
    CONSTRAINT task_completions_task_assignment_id_key
        UNIQUE (task_assignment_id)
);

-- Household foreign key and household analytics over a time range.
CREATE INDEX IF NOT EXISTS idx_task_completions_household_id_completed_at
    ON task_completions (household_id, completed_at);

-- Child foreign key and per-child history and streaks.
CREATE INDEX IF NOT EXISTS idx_task_completions_child_id_completed_at
    ON task_completions (child_id, completed_at);

-- Task foreign key and per-task statistics.
CREATE INDEX IF NOT EXISTS idx_task_completions_task_id
    ON task_completions (task_id);

INSERT INTO schema_migrations (version, name)
VALUES ('016', 'create_task_completions_table')
ON CONFLICT (version) DO NOTHING;
