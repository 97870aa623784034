-- Comes after the broken 017 (molecule/failure): must not run while 017 fails.

ALTER TABLE task_comments
    ADD COLUMN IF NOT EXISTS edited_at TIMESTAMPTZ;

INSERT INTO schema_migrations (version, name)
VALUES ('018', 'add_task_comments_edited_at')
ON CONFLICT (version) DO NOTHING;
