-- The fix of molecule/failure's broken 017: the index names the right column.

CREATE TABLE IF NOT EXISTS task_comments (
    id         UUID        PRIMARY KEY DEFAULT gen_random_uuid(),
    task_id    UUID        NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    body       TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS idx_task_comments_task_id
    ON task_comments (task_id);

CREATE INDEX IF NOT EXISTS idx_task_comments_created_at
    ON task_comments (task_id, created_at);

INSERT INTO schema_migrations (version, name)
VALUES ('017', 'create_task_comments_table')
ON CONFLICT (version) DO NOTHING;
