-- Broken on purpose (molecule/failure): the index names a column that does not
-- exist, so the migration fails at its third statement, after the first two
-- have run inside its transaction.

CREATE TABLE IF NOT EXISTS task_comments (
    id         UUID        PRIMARY KEY DEFAULT gen_random_uuid(),
    task_id    UUID        NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    body       TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS idx_task_comments_task_id
    ON task_comments (task_id);

CREATE INDEX IF NOT EXISTS idx_task_comments_created_at
    ON task_comments (task_id, created);

INSERT INTO schema_migrations (version, name)
VALUES ('017', 'create_task_comments_table')
ON CONFLICT (version) DO NOTHING;
