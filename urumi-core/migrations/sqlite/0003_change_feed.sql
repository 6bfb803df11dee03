-- The durable change feed: one row per change of a store record (created, updated,
-- deleted), appended in the same transaction as the change. `seq` is assigned by the
-- database and never reused (AUTOINCREMENT), so a cursor stays meaningful after a purge.
CREATE TABLE store_changes (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,   -- microseconds since the Unix epoch
    tenant TEXT NOT NULL,
    name   TEXT NOT NULL,
    kind   TEXT NOT NULL,      -- created | updated | deleted
    store  TEXT NOT NULL       -- the record after the change (JSON); the last one for deleted
);
CREATE INDEX store_changes_tenant_seq ON store_changes (tenant, seq);
CREATE INDEX store_changes_at ON store_changes (at);
-- Every seq at or below this was purged (retention); older cursors are expired.
INSERT INTO urumi_meta (key, value) VALUES ('changes_purged_through', '0');
