-- urumi state schema, SQLite. Timestamps are INTEGER microseconds since the Unix epoch.
CREATE TABLE urumi_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO urumi_meta (key, value) VALUES ('owner', 'urumi');

CREATE TABLE stores (
    name                 TEXT PRIMARY KEY,
    tenant               TEXT NOT NULL,
    engine               TEXT NOT NULL,
    plan                 TEXT NOT NULL,
    status               TEXT NOT NULL,
    step                 TEXT NOT NULL,
    message              TEXT NOT NULL,
    namespace            TEXT NOT NULL,
    storefront_url       TEXT,
    admin_url            TEXT,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    ready_at             INTEGER,
    provisioning_seconds REAL,
    attempts             INTEGER NOT NULL,
    version              INTEGER NOT NULL,
    lease_owner          TEXT,
    lease_expires_at     INTEGER
);
CREATE INDEX stores_newest ON stores (created_at DESC, name DESC);
CREATE INDEX stores_tenant_newest ON stores (tenant, created_at DESC, name DESC);
CREATE INDEX stores_work ON stores (status, updated_at);

-- Every accepted creation, kept after its store is deleted: the hourly rate counts these.
CREATE TABLE store_creations (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    at     INTEGER NOT NULL
);
CREATE INDEX store_creations_tenant_at ON store_creations (tenant, at);

CREATE TABLE idempotency_keys (
    scope           TEXT NOT NULL,
    key             TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    response_status INTEGER,
    response_body   TEXT,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE audit_events (
    id        TEXT PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    tenant    TEXT,
    action    TEXT NOT NULL,
    store     TEXT,
    outcome   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    source_ip TEXT
);
CREATE INDEX audit_newest ON audit_events (at DESC, id DESC);
CREATE INDEX audit_store_newest ON audit_events (store, at DESC, id DESC);
CREATE INDEX audit_tenant_newest ON audit_events (tenant, at DESC, id DESC);
