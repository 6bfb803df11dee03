-- Suspend/resume: a suspended store's workloads are stopped and its Ingress removed;
-- its volumes and credentials stay.
ALTER TABLE stores ADD COLUMN suspended BOOLEAN NOT NULL DEFAULT FALSE;
