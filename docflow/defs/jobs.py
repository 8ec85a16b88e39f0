"""A job per common operation, and the reconciliation schedule.

`process_documents` (ingest: all five assets, launched by the sensor and `docflow run`) lives in assets.py.
The others are launched from the UI for one partition or a backfill of many, e.g. after a model change:
- `reembed_documents`: new chunks and vectors from the stored markdown and fields, once the stored fields
  pass the blocking `schema_valid` check (a schema may have been tightened since they were extracted);
- `reextract_documents`: fields again (schema or extractor changed), then embeddings, whose chunks carry
  the fields in their metadata;
- `reconcile_documents`: the `document_report`, hourly by `reconciliation_schedule`.
Asset checks of the selected assets run with them.
"""

import dagster as dg

reembed_documents = dg.define_asset_job(
    "reembed_documents",
    selection=dg.AssetSelection.assets("embeddings")
    | dg.AssetSelection.checks_for_assets("extracted_fields"),
    description="Re-embed documents: chunks and vectors again from the stored markdown and fields "
    "(the stored fields are checked first; invalid ones block the re-embedding).",
    tags={"docflow/operation": "re-embed"},
)

reextract_documents = dg.define_asset_job(
    "reextract_documents",
    selection=dg.AssetSelection.assets("extracted_fields", "embeddings"),
    description="Re-extract documents' fields (schema or extractor changed), then re-embed them.",
    tags={"docflow/operation": "re-extract"},
)

reconcile_documents = dg.define_asset_job(
    "reconcile_documents",
    selection=dg.AssetSelection.assets("document_report"),
    description="Rebuild the reconciliation report (stuck and failed documents, drift, timings).",
    tags={"docflow/operation": "reconcile"},
)

reconciliation_schedule = dg.ScheduleDefinition(
    name="reconciliation_schedule",
    job=reconcile_documents,
    cron_schedule="0 * * * *",
    description="Hourly reconciliation report.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

JOBS = [reembed_documents, reextract_documents, reconcile_documents]
SCHEDULES = [reconciliation_schedule]
