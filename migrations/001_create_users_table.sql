-- Authentication: accounts (password or OAuth login) and server-side sessions.
-- Registration failed in production because this table was missing, so every
-- other table depends on it. Also defines set_updated_at(), the shared trigger
-- function used by every table that carries updated_at.

CREATE OR REPLACE FUNCTION set_updated_at()
RETURNS trigger
LANGUAGE plpgsql
AS $$
    BEGIN
        NEW.updated_at := now();
        RETURN NEW;
    END;
$$;

CREATE TABLE IF NOT EXISTS users (
    id                UUID         PRIMARY KEY DEFAULT gen_random_uuid(),
    email             VARCHAR(255) NOT NULL,
    -- Nullable: accounts created through OAuth never get a local password.
    password_hash     VARCHAR(255),
    oauth_provider    VARCHAR(50),
    oauth_provider_id VARCHAR(255),
    display_name      VARCHAR(100),
    created_at        TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ  NOT NULL DEFAULT now(),
    CONSTRAINT users_email_format_chk
        CHECK (email = btrim(email) AND email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    CONSTRAINT users_password_hash_not_blank_chk
        CHECK (password_hash IS NULL OR char_length(password_hash) > 0),
    -- A half-filled OAuth identity could never be matched at login.
    CONSTRAINT users_oauth_pair_chk
        CHECK ((oauth_provider IS NULL) = (oauth_provider_id IS NULL)),
    CONSTRAINT users_oauth_provider_not_blank_chk
        CHECK (oauth_provider IS NULL OR char_length(btrim(oauth_provider)) > 0),
    -- Without either credential the account could never log in.
    CONSTRAINT users_has_credential_chk
        CHECK (password_hash IS NOT NULL OR oauth_provider IS NOT NULL),
    CONSTRAINT users_display_name_not_blank_chk
        CHECK (display_name IS NULL OR char_length(btrim(display_name)) > 0)
);

-- Case-insensitive uniqueness without citext. The app must look
-- users up by lower(email) so that this index is used.
CREATE UNIQUE INDEX IF NOT EXISTS users_email_lower_key
    ON users (lower(email));

-- One account per external identity, used by the OAuth callback lookup.
CREATE UNIQUE INDEX IF NOT EXISTS users_oauth_identity_key
    ON users (oauth_provider, oauth_provider_id)
    WHERE oauth_provider IS NOT NULL;

DROP TRIGGER IF EXISTS trg_users_set_updated_at ON users;
CREATE TRIGGER trg_users_set_updated_at
    BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE IF NOT EXISTS user_sessions (
    id         UUID         PRIMARY KEY DEFAULT gen_random_uuid(),
    -- CASCADE: a session is worthless once its account is gone, and keeping it
    -- would block account deletion.
    user_id    UUID         NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Only a hash is stored so a database leak does not leak live tokens.
    token_hash VARCHAR(255) NOT NULL UNIQUE,
    created_at TIMESTAMPTZ  NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ  NOT NULL,
    revoked_at TIMESTAMPTZ,
    CONSTRAINT user_sessions_expiry_after_creation_chk
        CHECK (expires_at > created_at),
    CONSTRAINT user_sessions_revoked_after_creation_chk
        CHECK (revoked_at IS NULL OR revoked_at >= created_at)
);

-- Covers the user_id foreign key and "list or revoke all sessions of a user".
CREATE INDEX IF NOT EXISTS idx_user_sessions_user_id_expires_at
    ON user_sessions (user_id, expires_at);

-- Periodic purge of expired sessions.
CREATE INDEX IF NOT EXISTS idx_user_sessions_expires_at
    ON user_sessions (expires_at);

INSERT INTO schema_migrations (version, name)
VALUES ('001', 'create_users_table')
ON CONFLICT (version) DO NOTHING;
