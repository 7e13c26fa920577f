-- zerotouch store, schema version 1.
-- Times are milliseconds since the Unix epoch. Columns ending in _sealed hold
-- XChaCha20-Poly1305 ciphertexts under the data key (see docs/DATA-MODEL.md).

CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE accounts (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE networks (
    id                INTEGER PRIMARY KEY,
    account_id        INTEGER NOT NULL REFERENCES accounts(id),
    ssid              BLOB NOT NULL,
    passphrase_sealed BLOB NOT NULL,
    security          INTEGER NOT NULL,
    bands             INTEGER NOT NULL,
    created_at        INTEGER NOT NULL
);
CREATE INDEX networks_by_account ON networks(account_id);

CREATE TABLE devices (
    key_id         BLOB PRIMARY KEY,
    identity_kind  INTEGER NOT NULL,
    identity       BLOB NOT NULL,
    device_type    INTEGER NOT NULL,
    serial         INTEGER NOT NULL,
    product_number TEXT NOT NULL,
    pin_sealed     BLOB,
    secret_sealed  BLOB,
    blocked        INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE registrars (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL,
    credential_kind INTEGER NOT NULL,
    credential      BLOB NOT NULL,
    disabled        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    UNIQUE (credential_kind, credential)
);

CREATE TABLE associations (
    id           INTEGER PRIMARY KEY,
    device       BLOB NOT NULL REFERENCES devices(key_id),
    account_id   INTEGER NOT NULL REFERENCES accounts(id),
    registrar_id INTEGER NOT NULL REFERENCES registrars(id),
    since        INTEGER NOT NULL,
    UNIQUE (device, account_id)
);
CREATE INDEX associations_by_account ON associations(account_id);

-- Append-only: the triggers below refuse every UPDATE and DELETE.
CREATE TABLE association_audit (
    seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
    action               INTEGER NOT NULL,
    device               BLOB NOT NULL,
    account_id           INTEGER NOT NULL,
    registrar_id         INTEGER NOT NULL,
    at                   INTEGER NOT NULL,
    label_fingerprint    TEXT,
    label_device_type    INTEGER,
    label_product_number TEXT,
    label_had_pin        INTEGER,
    previous_accounts    TEXT NOT NULL
);
CREATE INDEX association_audit_by_device ON association_audit(device);
CREATE TRIGGER association_audit_no_update BEFORE UPDATE ON association_audit
BEGIN SELECT RAISE(ABORT, 'association_audit is append-only'); END;
CREATE TRIGGER association_audit_no_delete BEFORE DELETE ON association_audit
BEGIN SELECT RAISE(ABORT, 'association_audit is append-only'); END;

CREATE TABLE server_keys (
    seq         INTEGER PRIMARY KEY,
    key_id      BLOB NOT NULL UNIQUE,
    role        INTEGER NOT NULL,
    public_key  BLOB NOT NULL,
    state       INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    replacement BLOB
);

CREATE TABLE key_map (
    seq          INTEGER PRIMARY KEY,
    device_type  INTEGER NOT NULL,
    first_serial INTEGER NOT NULL,
    last_serial  INTEGER NOT NULL,
    key_id       BLOB NOT NULL REFERENCES server_keys(key_id)
);

CREATE TABLE sessions (
    id           BLOB PRIMARY KEY,
    version      INTEGER NOT NULL,
    state_sealed BLOB NOT NULL,
    expires_at   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE nonces (
    nonce      BLOB PRIMARY KEY,
    session    BLOB NOT NULL,
    expires_at INTEGER NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE responses (
    session        BLOB NOT NULL,
    seq            INTEGER NOT NULL,
    request_digest BLOB NOT NULL,
    response       BLOB NOT NULL,
    expires_at     INTEGER NOT NULL,
    PRIMARY KEY (session, seq)
) WITHOUT ROWID;

CREATE TABLE counters (
    scope        TEXT NOT NULL,
    subject      BLOB NOT NULL,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (scope, subject, window_start)
) WITHOUT ROWID;

CREATE TABLE attempts (
    scope        TEXT NOT NULL,
    subject      BLOB NOT NULL,
    failures     INTEGER NOT NULL,
    lockouts     INTEGER NOT NULL,
    locked_until INTEGER,
    PRIMARY KEY (scope, subject)
) WITHOUT ROWID;

CREATE TABLE outcomes (
    seq        INTEGER PRIMARY KEY,
    device     BLOB NOT NULL,
    session    BLOB NOT NULL,
    network_id INTEGER,
    kind       INTEGER NOT NULL,
    at         INTEGER NOT NULL
);
CREATE INDEX outcomes_by_device ON outcomes(device);
CREATE INDEX outcomes_by_at ON outcomes(at);

CREATE TABLE scan_reports (
    seq           INTEGER PRIMARY KEY,
    device        BLOB NOT NULL,
    session       BLOB NOT NULL,
    report_sealed BLOB NOT NULL,
    at            INTEGER NOT NULL
);
CREATE INDEX scan_reports_by_device ON scan_reports(device);
CREATE INDEX scan_reports_by_at ON scan_reports(at);
