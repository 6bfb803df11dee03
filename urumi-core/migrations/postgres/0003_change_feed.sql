-- The durable change feed: one row per change of a store record (created, updated,
-- deleted), appended in the same transaction as the change. Appends take a
-- transaction-scoped advisory lock before drawing `seq`, so sequence order is commit
-- order: a reader that sees seq N has already been able to see every seq below N.
CREATE TABLE store_changes (
    seq    BIGSERIAL PRIMARY KEY,
    at     BIGINT NOT NULL,    -- microseconds since the Unix epoch
    tenant TEXT NOT NULL,
    name   TEXT NOT NULL,
    kind   TEXT NOT NULL,      -- created | updated | deleted
    store  TEXT NOT NULL       -- the record after the change (JSON); the last one for deleted
);
CREATE INDEX store_changes_tenant_seq ON store_changes (tenant, seq);
CREATE INDEX store_changes_at ON store_changes (at);
-- Every seq at or below this was purged (retention); older cursors are expired.
INSERT INTO urumi_meta (key, value) VALUES ('changes_purged_through', '0');
