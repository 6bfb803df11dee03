-- Updating stores (a plan change in progress) are owed work too.
DROP INDEX stores_claimable;
CREATE INDEX stores_claimable ON stores (updated_at, name)
    WHERE status IN ('Pending', 'Provisioning', 'Updating', 'Deleting');
