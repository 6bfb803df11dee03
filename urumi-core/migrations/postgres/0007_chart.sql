-- Chart versions: the chart (version, appVersion) a store's release was last installed
-- or upgraded with; NULL before its first release.
ALTER TABLE stores ADD COLUMN chart_version TEXT;
ALTER TABLE stores ADD COLUMN chart_app_version TEXT;
-- While an upgrade runs: the release revision to roll back to if it fails.
ALTER TABLE stores ADD COLUMN rollback_to BIGINT;
