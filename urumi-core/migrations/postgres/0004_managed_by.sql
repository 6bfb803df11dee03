-- Operator mode: the Kubernetes object (`Store <namespace>/<name>`) that manages a store;
-- NULL for stores created through the API.
ALTER TABLE stores ADD COLUMN managed_by TEXT;
