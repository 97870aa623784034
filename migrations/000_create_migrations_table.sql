-- Migration history table shared by the app and the Ansible postgresql_migrate
-- module. Its shape must stay exactly compatible with the app runner, so the
-- module-specific columns (checksum, applied_by, execution_ms) are added by the
-- module itself and are intentionally absent here.

CREATE TABLE IF NOT EXISTS schema_migrations (
    version    VARCHAR(10)  PRIMARY KEY,
    name       VARCHAR(255) NOT NULL,
    applied_at TIMESTAMPTZ  NOT NULL DEFAULT now()
);

-- Operators read history newest-first when diagnosing a deploy.
CREATE INDEX IF NOT EXISTS idx_schema_migrations_applied_at
    ON schema_migrations (applied_at);

INSERT INTO schema_migrations (version, name)
VALUES ('000', 'create_migrations_table')
ON CONFLICT (version) DO NOTHING;
