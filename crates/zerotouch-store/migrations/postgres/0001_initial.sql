-- zerotouch store on PostgreSQL, schema version 1: the tables of migrations/sqlite/0001 in
-- PostgreSQL types. Times are milliseconds since the Unix epoch (BIGINT); unsigned 64-bit
-- values are stored by bit pattern. Columns ending in _sealed hold XChaCha20-Poly1305
-- ciphertexts under the data key (see docs/DATA-MODEL.md). Applied by PostgresStore inside one
-- transaction under an advisory lock, and recorded in schema_migrations.

CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE accounts (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- The store takes a network's id from the sequence before inserting it (OVERRIDING SYSTEM
-- VALUE): the sealed passphrase is bound to the id.
CREATE TABLE networks (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id        BIGINT NOT NULL REFERENCES accounts(id),
    ssid              BYTEA NOT NULL,
    passphrase_sealed BYTEA NOT NULL,
    security          BIGINT NOT NULL,
    bands             BIGINT NOT NULL,
    created_at        BIGINT NOT NULL
);
CREATE INDEX networks_by_account ON networks(account_id);

CREATE TABLE devices (
    key_id         BYTEA PRIMARY KEY,
    identity_kind  BIGINT NOT NULL,
    identity       BYTEA NOT NULL,
    device_type    BIGINT NOT NULL,
    serial         BIGINT NOT NULL,
    product_number TEXT NOT NULL,
    pin_sealed     BYTEA,
    secret_sealed  BYTEA,
    blocked        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     BIGINT NOT NULL
);

CREATE TABLE registrars (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            TEXT NOT NULL,
    credential_kind BIGINT NOT NULL,
    credential      BYTEA NOT NULL,
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT NOT NULL,
    UNIQUE (credential_kind, credential)
);

CREATE TABLE associations (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device       BYTEA NOT NULL REFERENCES devices(key_id),
    account_id   BIGINT NOT NULL REFERENCES accounts(id),
    registrar_id BIGINT NOT NULL REFERENCES registrars(id),
    since        BIGINT NOT NULL,
    UNIQUE (device, account_id)
);
CREATE INDEX associations_by_account ON associations(account_id);

-- Append-only: the trigger below refuses every UPDATE, DELETE and TRUNCATE. Appends are
-- serialised by the store (an advisory lock held to commit), so seq order is commit order and
-- a reader paging by seq never skips an entry committed later with a smaller seq.
CREATE TABLE association_audit (
    seq                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action               BIGINT NOT NULL,
    device               BYTEA NOT NULL,
    account_id           BIGINT NOT NULL,
    registrar_id         BIGINT NOT NULL,
    at                   BIGINT NOT NULL,
    label_fingerprint    TEXT,
    label_device_type    BIGINT,
    label_product_number TEXT,
    label_had_pin        BOOLEAN,
    previous_accounts    TEXT NOT NULL
);
CREATE INDEX association_audit_by_device ON association_audit(device);

CREATE FUNCTION association_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'association_audit is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- Statement-level, so even a change that matches no row is refused.
CREATE TRIGGER association_audit_no_update_or_delete
    BEFORE UPDATE OR DELETE ON association_audit
    FOR EACH STATEMENT EXECUTE FUNCTION association_audit_append_only();
CREATE TRIGGER association_audit_no_truncate
    BEFORE TRUNCATE ON association_audit
    FOR EACH STATEMENT EXECUTE FUNCTION association_audit_append_only();

CREATE TABLE server_keys (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id      BYTEA NOT NULL UNIQUE,
    role        BIGINT NOT NULL,
    public_key  BYTEA NOT NULL,
    state       BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    replacement BYTEA
);

CREATE TABLE key_map (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_type  BIGINT NOT NULL,
    first_serial BIGINT NOT NULL,
    last_serial  BIGINT NOT NULL,
    key_id       BYTEA NOT NULL REFERENCES server_keys(key_id)
);

CREATE TABLE sessions (
    id           BYTEA PRIMARY KEY,
    version      BIGINT NOT NULL,
    state_sealed BYTEA NOT NULL,
    expires_at   BIGINT NOT NULL
);

CREATE TABLE nonces (
    nonce      BYTEA PRIMARY KEY,
    session    BYTEA NOT NULL,
    expires_at BIGINT NOT NULL,
    used       BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE responses (
    session        BYTEA NOT NULL,
    seq            BIGINT NOT NULL,
    request_digest BYTEA NOT NULL,
    response       BYTEA NOT NULL,
    expires_at     BIGINT NOT NULL,
    PRIMARY KEY (session, seq)
);

CREATE TABLE counters (
    scope        TEXT NOT NULL,
    subject      BYTEA NOT NULL,
    window_start BIGINT NOT NULL,
    count        BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (scope, subject, window_start)
);

CREATE TABLE attempts (
    scope        TEXT NOT NULL,
    subject      BYTEA NOT NULL,
    failures     BIGINT NOT NULL,
    lockouts     BIGINT NOT NULL,
    locked_until BIGINT,
    PRIMARY KEY (scope, subject)
);

CREATE TABLE outcomes (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device     BYTEA NOT NULL,
    session    BYTEA NOT NULL,
    network_id BIGINT,
    kind       BIGINT NOT NULL,
    at         BIGINT NOT NULL
);
CREATE INDEX outcomes_by_device ON outcomes(device);
CREATE INDEX outcomes_by_at ON outcomes(at);

CREATE TABLE scan_reports (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device        BYTEA NOT NULL,
    session       BYTEA NOT NULL,
    report_sealed BYTEA NOT NULL,
    at            BIGINT NOT NULL
);
CREATE INDEX scan_reports_by_device ON scan_reports(device);
CREATE INDEX scan_reports_by_at ON scan_reports(at);

