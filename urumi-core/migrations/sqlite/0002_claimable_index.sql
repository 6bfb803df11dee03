-- claim_next scans only stores that are owed work, oldest first.
CREATE INDEX stores_claimable ON stores (updated_at, name)
    WHERE status IN ('Pending', 'Provisioning', 'Deleting');
