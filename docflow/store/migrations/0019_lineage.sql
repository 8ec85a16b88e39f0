-- Partition retention removes an archived document's asset events from Dagster's event log (the partitions
-- tab reads an asset's whole history); what they said stays here: per asset, the latest materialization's
-- run id, timestamp and data version when the document was archived. NULL: never archived since 0019.
ALTER TABLE docflow.documents ADD COLUMN IF NOT EXISTS lineage jsonb;
