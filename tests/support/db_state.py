"""Reading a database's state for before/after comparisons: recorded versions, catalog, tables, rows."""

from __future__ import annotations

import psycopg2.sql


def recorded_versions(db) -> list[str]:
    return [v for (v,) in db.sql("SELECT version FROM schema_migrations ORDER BY version")]


def row_counts(cluster, dbname: str) -> dict[str, int]:
    """{table: row count} of every table in schema public of dbname."""
    tables = [t for (t,) in cluster.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", dbname=dbname)]
    return {t: cluster.sql(psycopg2.sql.SQL("SELECT count(*) FROM {}").format(psycopg2.sql.Identifier(t)), dbname=dbname)[0][0] for t in tables}


def public_tables(cluster, dbname: str) -> list[str]:
    return [t for (t,) in cluster.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", dbname=dbname)]


def catalog(db) -> list:
    """Every schema, relation, column, constraint and function outside the system
    schemas: compared before and after a run that must change nothing."""
    return db.sql(
        "SELECT 'nsp', nspname FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' "
        "UNION ALL SELECT 'rel', n.nspname || '.' || c.relname || ':' || c.relkind::text FROM pg_class c "
        " JOIN pg_namespace n ON n.oid = c.relnamespace "
        " WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' "
        "UNION ALL SELECT 'col', a.attrelid::regclass::text || '.' || a.attname FROM pg_attribute a "
        " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        " WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' AND a.attnum > 0 "
        "UNION ALL SELECT 'con', conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
        " WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' "
        "UNION ALL SELECT 'fn', p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        " WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' ORDER BY 1, 2"
    )


def catalog_snapshot(db) -> list:
    """Every relation, column, constraint and function of the database, for before/after checks
    of the module's end-to-end tests (catalog() above also lists schemas)."""
    return db.sql(
        "SELECT 'rel', c.relname || ':' || c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
        "UNION ALL SELECT 'col', attrelid::regclass::text || '.' || attname FROM pg_attribute a "
        " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND attnum > 0 "
        "UNION ALL SELECT 'con', conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
        " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "UNION ALL SELECT 'fn', p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
    )
